//! Go-compatible scalar parsing and heredoc marker recognition.

use super::super::heredoc::{HeredocWord, chomp_content, parse_heredoc_word};
use super::super::values::{
    parse_go_bool, parse_go_duration, parse_go_i32, parse_go_u32, parse_ram_size,
};

const SECOND: i128 = 1_000_000_000;

#[test]
fn durations_accepted_like_go() {
    let cases = [
        ("0", 0),
        ("+0", 0),
        ("-0", 0),
        ("1s", SECOND),
        ("1.5s", 3 * SECOND / 2),
        (".5s", SECOND / 2),
        ("1.s", SECOND),
        ("1h2m3s", 3723 * SECOND),
        ("10ns", 10),
        ("7us", 7_000),
        ("7\u{3bc}s", 7_000),
        ("3ms", 3_000_000),
        ("-2m", -120 * SECOND),
        ("+5m", 300 * SECOND),
        ("1.0000000001s", SECOND),
        ("2562047h47m16.854775807s", i64::MAX as i128),
    ];
    for (text, nanos) in cases {
        assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
    }
}

#[test]
fn durations_rejected_like_go() {
    let cases = [
        ("", "time: invalid duration \"\""),
        ("-", "time: invalid duration \"-\""),
        (".s", "time: invalid duration \".s\""),
        ("s", "time: invalid duration \"s\""),
        ("1", "time: missing unit in duration \"1\""),
        ("1s2", "time: missing unit in duration \"1s2\""),
        ("1sec", "time: unknown unit \"sec\" in duration \"1sec\""),
        ("1 s", "time: unknown unit \" s\" in duration \"1 s\""),
        (
            "9223372036854775808ns",
            "time: invalid duration \"9223372036854775808ns\"",
        ),
        ("3000000h", "time: invalid duration \"3000000h\""),
    ];
    for (text, message) in cases {
        assert_eq!(parse_go_duration(text), Err(message.to_string()), "{text}");
    }
}

#[test]
fn integers_and_booleans_like_go() {
    assert_eq!(parse_go_i32("+12"), Ok(12));
    assert_eq!(parse_go_i32("-3"), Ok(-3));
    assert!(parse_go_i32("").is_err());
    assert!(parse_go_i32("1_0").is_err());
    assert_eq!(parse_go_u32("777", 8), Some(511));
    assert_eq!(parse_go_u32("0o7", 8), None);
    assert_eq!(parse_go_u32("4294967295", 10), Some(u32::MAX));
    assert_eq!(parse_go_u32("", 10), None);
    for yes in ["1", "t", "T", "true", "TRUE", "True"] {
        assert_eq!(parse_go_bool(yes), Some(true), "{yes}");
    }
    for no in ["0", "f", "F", "false", "FALSE", "False"] {
        assert_eq!(parse_go_bool(no), Some(false), "{no}");
    }
    for neither in ["yes", "tRUE", "", " true"] {
        assert_eq!(parse_go_bool(neither), None, "{neither}");
    }
}

#[test]
fn ram_sizes_like_docker_units() {
    assert_eq!(parse_ram_size("1kib"), Some(1024));
    assert_eq!(parse_ram_size("1KB"), Some(1024));
    assert_eq!(parse_ram_size("0"), Some(0));
    assert_eq!(parse_ram_size("0.5k"), Some(512));
    for bad in ["", "k", "1kk", "1kbb", "1ki", "1bk", "1x", "inf", "1 2k"] {
        assert_eq!(parse_ram_size(bad), None, "{bad}");
    }
}

#[test]
fn heredoc_markers() {
    let word = |name: &str, expand, chomp| {
        Some(HeredocWord {
            name: name.into(),
            expand,
            chomp,
        })
    };
    assert_eq!(parse_heredoc_word("<<EOF"), word("EOF", true, false));
    assert_eq!(parse_heredoc_word("<<-EOF"), word("EOF", true, true));
    assert_eq!(parse_heredoc_word("3<<EOF"), word("EOF", true, false));
    assert_eq!(parse_heredoc_word("<<\"EOF\""), word("EOF", false, false));
    assert_eq!(parse_heredoc_word("<<'E'OF"), word("EOF", false, false));
    assert_eq!(parse_heredoc_word("<<E\\OF"), word("EOF", true, false));
    assert_eq!(parse_heredoc_word("<< EOF"), word("EOF", true, false));
    for not_a_marker in [
        "EOF",
        "<<",
        "<<-",
        "a<<EOF",
        "<<EOF cat",
        "<<\"EOF",
        "<<<EOF",
        "<<a<b",
    ] {
        assert_eq!(parse_heredoc_word(not_a_marker), None, "{not_a_marker}");
    }
}

#[test]
fn chomp_strips_leading_tabs_only() {
    assert_eq!(chomp_content("\t\ta\n  b\n\tc\td"), "a\n  b\nc\td");
    assert_eq!(chomp_content(""), "");
}

#[test]
fn odd_input_never_panics() {
    use super::super::{parse_device, parse_instruction, parse_mount};
    use super::node;
    let odd = [
        "",
        "\"",
        "\"\"",
        ",",
        ",,",
        "=",
        "é=ü",
        "µs",
        "1µ",
        "1.",
        ".",
        "-.",
        "+",
        "--",
        "<<",
        "<<-",
        "3<<",
        "<<\u{0}",
        "type=\u{1f600}",
        "\u{1f600}<<EOF",
        "a\"b\"",
        "\"a\"b",
        "\\",
        "9999999999999999999999h",
        "0.000000000000000000000001s",
        "1e309k",
        "target=/\n",
        "\r\n",
        "\"a\",\"",
        "ONBUILD",
        "onbuil",
        "onbuildé",
    ];
    let mut identity = |w: &str| Ok::<_, String>(w.to_string());
    for text in odd {
        let _ = parse_go_duration(text);
        let _ = parse_ram_size(text);
        let _ = parse_heredoc_word(text);
        let _ = parse_device(text);
        let _ = parse_mount(text, None);
        let _ = parse_mount(text, Some(&mut identity));
        let _ = chomp_content(text);
        for keyword in [
            "RUN",
            "COPY",
            "ADD",
            "FROM",
            "HEALTHCHECK",
            "ONBUILD",
            "ENV",
            "é",
        ] {
            let words = [text, text, text];
            let built = node(keyword)
                .flags(&[text])
                .args(&words)
                .original(text)
                .build();
            let _ = parse_instruction(&built);
            let json = node(keyword)
                .args(&[text])
                .json()
                .original(text)
                .at(1, 9, 1)
                .build();
            let _ = parse_instruction(&json);
        }
    }
}

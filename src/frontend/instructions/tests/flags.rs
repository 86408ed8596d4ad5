//! The flag parser on its own and flag errors reported through instructions.

use super::super::Instruction;
use super::super::flags::{FlagKind, FlagSet};
use super::Position;
use super::{node, parse_err, parse_ok, rejects};

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn copy_like() -> FlagSet {
    FlagSet::new()
        .with("link", FlagKind::Bool)
        .with("from", FlagKind::String)
        .with("exclude", FlagKind::List)
}

#[test]
fn bool_flag_spellings() {
    let set = copy_like();
    for (word, expected) in [
        ("--link", true),
        ("--link=true", true),
        ("--link=TRUE", true),
        ("--link=False", false),
        ("--link=false", false),
    ] {
        let parsed = set.parse(&words(&[word])).expect(word);
        assert_eq!(parsed.bool("link"), Some(expected), "{word}");
    }
    assert_eq!(set.parse(&[]).map(|p| p.bool("link")), Ok(None));
}

#[test]
fn string_flag_keeps_value_after_first_equals() {
    let parsed = copy_like().parse(&words(&["--from=a=b"])).expect("parse");
    assert_eq!(parsed.string("from"), Some("a=b"));
    assert!(parsed.is_used("from"));
    assert!(!parsed.is_used("link"));
}

#[test]
fn empty_string_value_is_given_but_not_non_empty() {
    let parsed = copy_like().parse(&words(&["--from="])).expect("parse");
    assert_eq!(parsed.string("from"), Some(""));
    assert_eq!(parsed.non_empty("from"), None);
}

#[test]
fn list_flag_collects_every_value_in_order() {
    let parsed = copy_like()
        .parse(&words(&["--exclude=a", "--link", "--exclude=b"]))
        .expect("parse");
    assert_eq!(parsed.list("exclude"), ["a", "b"]);
    assert_eq!(parsed.used(), ["exclude", "link"]);
}

#[test]
fn double_dash_ends_flags() {
    let parsed = copy_like()
        .parse(&words(&["--link", "--", "--bogus"]))
        .expect("parse");
    assert_eq!(parsed.used(), ["link"]);
}

#[test]
fn flag_errors_carry_the_word_index() {
    let error = copy_like()
        .parse(&words(&["--link", "--from=a", "--from=b"]))
        .unwrap_err();
    assert_eq!(error.index, 2);
    assert_eq!(error.message, "duplicate flag specified: --from");
}

#[test]
fn flag_error_messages() {
    let set = copy_like();
    let cases = [
        ("-link", "arg should start with -- : -link"),
        ("link", "arg should start with -- : link"),
        ("--lnk", "unknown flag: --lnk (did you mean link?)"),
        ("--zzzzzz", "unknown flag: --zzzzzz"),
        ("--link=", "missing a value on flag: --link"),
        (
            "--link=yes",
            "expecting boolean value for flag --link, not: yes",
        ),
        ("--from", "missing a value on flag: --from"),
        ("--exclude", "missing a value on flag: --exclude"),
    ];
    for (word, message) in cases {
        let error = set.parse(&words(&[word])).unwrap_err();
        assert_eq!(error.message, message, "{word}");
        assert_eq!(error.index, 0);
    }
}

#[test]
fn duplicate_bool_flag_is_rejected() {
    let error = copy_like()
        .parse(&words(&["--link", "--link=false"]))
        .unwrap_err();
    assert_eq!(error.message, "duplicate flag specified: --link");
}

#[test]
fn unknown_flag_points_at_the_flag_column() {
    let diagnostic = parse_err(
        node("COPY")
            .flags(&["--link", "--chwn=1"])
            .args(&["a", "b"]),
    );
    assert_eq!(
        diagnostic.message,
        "unknown flag: --chwn (did you mean chown?)"
    );
    // "COPY --link --chwn=1 a b": the bad flag starts at column 13.
    assert_eq!(diagnostic.position, Position::new(1, 13));
}

#[test]
fn flag_column_is_relative_to_an_indented_instruction() {
    let builder = node("run")
        .flags(&["--oops"])
        .args(&["true"])
        .original("  run --oops true");
    let diagnostic = parse_err(builder.at(4, 3, 1));
    assert_eq!(diagnostic.position, Position::new(4, 7));
    assert_eq!(diagnostic.end_line, 4);
}

#[test]
fn flag_column_finds_quoted_flags_by_name() {
    let builder = node("COPY")
        .flags(&["--from=a b", "--x"])
        .args(&["s", "d"])
        .original("COPY --from=\"a b\" --x s d");
    assert_eq!(parse_err(builder).position, Position::new(1, 19));
}

#[test]
fn flag_column_falls_back_to_start_on_continued_lines() {
    let diagnostic = parse_err(
        node("COPY")
            .flags(&["--nope"])
            .args(&["a", "b"])
            .at(2, 1, 3),
    );
    assert_eq!(diagnostic.position, Position::new(2, 1));
    assert_eq!(diagnostic.end_line, 4);
}

#[test]
fn flag_column_survives_heredoc_bodies() {
    let builder = node("RUN")
        .flags(&["--nope"])
        .args(&["<<EOF"])
        .heredoc("EOF", "a\nb\n", true, false);
    assert_eq!(parse_err(builder).position, Position::new(1, 5));
}

#[test]
fn non_flag_errors_point_at_the_instruction() {
    let diagnostic = parse_err(node("COPY").args(&["a"]).at(7, 2, 1));
    assert_eq!(diagnostic.position, Position::new(7, 2));
}

#[test]
fn stopsignal_and_arg_ignore_flags_like_buildkit() {
    let stop = parse_ok(node("STOPSIGNAL").flags(&["--anything"]).args(&["SIGTERM"]));
    assert!(matches!(stop, Instruction::StopSignal(_)));
    let arg = parse_ok(node("ARG").flags(&["--anything"]).args(&["A"]));
    assert!(matches!(arg, Instruction::Arg(_)));
}

#[test]
fn healthcheck_none_ignores_flags_like_buildkit() {
    let none = parse_ok(node("HEALTHCHECK").flags(&["--bogus"]).args(&["NONE"]));
    assert!(matches!(
        none,
        Instruction::Healthcheck(super::super::Healthcheck::None)
    ));
}

rejects! {
    env_has_no_flags: node("ENV").flags(&["--a"]).args(&["k", "v", "="]) => "unknown flag: --a";
    label_has_no_flags: node("LABEL").flags(&["--a"]).args(&["k", "v", "="]) => "unknown flag: --a";
    maintainer_has_no_flags: node("MAINTAINER").flags(&["--boo"]).args(&["joe@example.com"])
        => "unknown flag: --boo";
    workdir_has_no_flags: node("WORKDIR").flags(&["--a"]).args(&["/"]) => "unknown flag: --a";
    user_has_no_flags: node("USER").flags(&["--a"]).args(&["u"]) => "unknown flag: --a";
    volume_has_no_flags: node("VOLUME").flags(&["--a"]).args(&["/v"]) => "unknown flag: --a";
    expose_has_no_flags: node("EXPOSE").flags(&["--a"]).args(&["80"]) => "unknown flag: --a";
    cmd_has_no_flags: node("CMD").flags(&["--a"]).args(&["x"]) => "unknown flag: --a";
    entrypoint_has_no_flags: node("ENTRYPOINT").flags(&["--a"]).args(&["x"])
        => "unknown flag: --a";
    shell_has_no_flags: node("SHELL").flags(&["--a"]).args(&["sh"]).json() => "unknown flag: --a";
    onbuild_has_no_flags: node("ONBUILD").flags(&["--a"]).inner(node("RUN").args(&["x"]))
        => "unknown flag: --a";
    from_flag_typo: node("FROM").flags(&["--platfrom=linux"]).args(&["a"])
        => "unknown flag: --platfrom (did you mean platform?)";
    from_platform_needs_value: node("FROM").flags(&["--platform"]).args(&["a"])
        => "missing a value on flag: --platform";
    copy_rejects_add_only_flag: node("COPY").flags(&["--checksum=x"]).args(&["a", "b"])
        => "unknown flag: --checksum";
    add_rejects_copy_only_flag: node("ADD").flags(&["--from=x"]).args(&["a", "b"])
        => "unknown flag: --from";
    add_rejects_parents: node("ADD").flags(&["--parents"]).args(&["a", "b"])
        => "unknown flag: --parents";
    healthcheck_flag_typo: node("HEALTHCHECK").flags(&["--interva=1s"]).args(&["CMD", "x"])
        => "unknown flag: --interva (did you mean interval?)";
    run_flag_typo: node("RUN").flags(&["--mout=type=bind"]).args(&["x"])
        => "unknown flag: --mout (did you mean mount?)";
    run_duplicate_network: node("RUN").flags(&["--network=none", "--network=host"]).args(&["x"])
        => "duplicate flag specified: --network";
}

#[test]
fn run_option_errors_point_at_their_flag() {
    let flags = ["--network=none", "--mount=type=bind", "--mount=from=$X"];
    let diagnostic = parse_err(node("RUN").flags(&flags).args(&["x"]));
    assert_eq!(
        diagnostic.message,
        "'from' doesn't support variable expansion, define alias stage instead"
    );
    // "RUN --network=none --mount=type=bind --mount=from=$X x"
    assert_eq!(diagnostic.position, Position::new(1, 38));
    let diagnostic = parse_err(
        node("RUN")
            .flags(&["--device=a", "--security=root"])
            .args(&["x"]),
    );
    assert_eq!(diagnostic.position, Position::new(1, 16));
}

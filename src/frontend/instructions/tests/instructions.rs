//! Every instruction other than RUN: accepted shapes and BuildKit's error messages.

use std::time::Duration;

use super::super::{
    Add, Arg, Cmd, CommandLine, Copy, Entrypoint, Env, Expose, From, HealthCheck, Healthcheck,
    Instruction, KeyValue, Label, Maintainer, Onbuild, Shell, SourceHeredoc, StopSignal, User,
    Volume, Workdir,
};
use super::{check, node, parse_ok, rejects};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn pair(key: &str, value: &str, no_delimiter: bool) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        no_delimiter,
    }
}

fn copy_of(sources: &[&str], dest: &str) -> Copy {
    Copy {
        sources: strings(sources),
        heredocs: Vec::new(),
        dest: dest.into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        exclude: Vec::new(),
        parents: false,
    }
}

fn add_of(sources: &[&str], dest: &str) -> Add {
    Add {
        sources: strings(sources),
        heredocs: Vec::new(),
        dest: dest.into(),
        chown: None,
        chmod: None,
        link: false,
        exclude: Vec::new(),
        keep_git_dir: None,
        checksum: None,
        unpack: None,
    }
}

fn shell_form(text: &str) -> CommandLine {
    CommandLine {
        args: vec![text.into()],
        prepend_shell: true,
    }
}

fn health(builder: super::NodeBuilder) -> HealthCheck {
    match parse_ok(builder) {
        Instruction::Healthcheck(Healthcheck::Check(check)) => check,
        other => panic!("not a check: {other:?}"),
    }
}

#[test]
fn names_are_upper_case_keywords() {
    assert_eq!(parse_ok(node("from").args(&["a"])).name(), "FROM");
    assert_eq!(
        parse_ok(node("StopSignal").args(&["9"])).name(),
        "STOPSIGNAL"
    );
    assert_eq!(
        parse_ok(node("healthcheck").args(&["NONE"])).name(),
        "HEALTHCHECK"
    );
}

#[test]
fn from_plain_named_and_platform() {
    let plain = From {
        image: "alpine".into(),
        stage_name: None,
        platform: None,
    };
    check(node("FROM").args(&["alpine"]), Instruction::From(plain));
    let named = From {
        image: "alpine:3".into(),
        stage_name: Some("build-1_x.y".into()),
        platform: Some("$BUILDPLATFORM".into()),
    };
    let builder =
        node("FROM")
            .flags(&["--platform=$BUILDPLATFORM"])
            .args(&["alpine:3", "As", "Build-1_x.y"]);
    check(builder, Instruction::From(named));
}

#[test]
fn from_empty_platform_is_no_platform() {
    let from = From {
        image: "a".into(),
        stage_name: None,
        platform: None,
    };
    check(
        node("FROM").flags(&["--platform="]).args(&["a"]),
        Instruction::From(from),
    );
}

rejects! {
    from_without_image: node("FROM") => "FROM requires either one or three arguments";
    from_two_words: node("FROM").args(&["a", "AS"]) => "FROM requires either one or three arguments";
    from_three_words_without_as: node("FROM").args(&["a", "is", "b"])
        => "FROM requires either one or three arguments";
    from_four_words: node("FROM").args(&["a", "AS", "b", "c"])
        => "FROM requires either one or three arguments";
    from_stage_starting_with_digit: node("FROM").args(&["a", "AS", "1st"])
        => "invalid name for build stage: \"1st\", name can't start with a number or contain symbols";
    from_stage_with_symbol: node("FROM").args(&["a", "as", "Bad$Name"])
        => "invalid name for build stage: \"Bad$Name\", name can't start with a number or contain symbols";
    from_stage_name_checked_before_flags: node("FROM").flags(&["--bad"]).args(&["a", "as", "_x"])
        => "invalid name for build stage: \"_x\", name can't start with a number or contain symbols";
}

#[test]
fn env_and_label_keep_pairs_in_order() {
    let args = ["A", "\"1 2\"", "=", "B", "x", ""];
    let vars = vec![pair("A", "\"1 2\"", false), pair("B", "x", true)];
    check(
        node("ENV").args(&args),
        Instruction::Env(Env { vars: vars.clone() }),
    );
    check(
        node("label").args(&args),
        Instruction::Label(Label { labels: vars }),
    );
}

rejects! {
    env_without_args: node("ENV") => "ENV requires at least one argument";
    label_without_args: node("LABEL") => "LABEL requires at least one argument";
    env_partial_triple: node("ENV").args(&["a", "b"]) => "bad input to ENV, too many arguments";
    label_partial_triple: node("LABEL").args(&["a", "b", "=", "c"])
        => "bad input to LABEL, too many arguments";
    env_blank_name: node("ENV").args(&["", "v", "="]) => "ENV names can not be blank";
    label_blank_name: node("LABEL").args(&["k", "v", "=", "", "w", "="])
        => "LABEL names can not be blank";
}

#[test]
fn single_word_instructions() {
    let name = Maintainer {
        name: "Jo <jo@example.com>".into(),
    };
    check(
        node("MAINTAINER").args(&["Jo <jo@example.com>"]),
        Instruction::Maintainer(name),
    );
    check(
        node("WORKDIR").args(&["/app"]),
        Instruction::Workdir(Workdir {
            path: "/app".into(),
        }),
    );
    check(
        node("USER").args(&["app:app"]),
        Instruction::User(User {
            user: "app:app".into(),
        }),
    );
    let signal = StopSignal {
        signal: "SIGQUIT".into(),
    };
    check(
        node("STOPSIGNAL").args(&["SIGQUIT"]),
        Instruction::StopSignal(signal),
    );
}

rejects! {
    maintainer_without_arg: node("MAINTAINER") => "MAINTAINER requires exactly one argument";
    workdir_without_arg: node("WORKDIR") => "WORKDIR requires exactly one argument";
    user_without_arg: node("USER") => "USER requires exactly one argument";
    stopsignal_without_arg: node("STOPSIGNAL") => "STOPSIGNAL requires exactly one argument";
    workdir_two_args: node("WORKDIR").args(&["/a", "/b"]) => "WORKDIR requires exactly one argument";
    maintainer_arity_before_flags: node("MAINTAINER").flags(&["--x"])
        => "MAINTAINER requires exactly one argument";
}

#[test]
fn expose_sorts_ports_like_buildkit() {
    let ports = strings(&["443/tcp", "53/udp", "8080"]);
    let builder = node("EXPOSE").args(&["8080", "53/udp", "443/tcp"]);
    check(builder, Instruction::Expose(Expose { ports }));
}

#[test]
fn volume_trims_each_path() {
    let paths = strings(&["/data", "/logs"]);
    check(
        node("VOLUME").args(&[" /data ", "/logs"]).json(),
        Instruction::Volume(Volume { paths }),
    );
}

rejects! {
    expose_without_ports: node("EXPOSE") => "EXPOSE requires at least one argument";
    volume_without_paths: node("VOLUME") => "VOLUME requires at least one argument";
    volume_blank_path: node("VOLUME").args(&["/a", "  "]).json()
        => "VOLUME specified can not be an empty string";
}

#[test]
fn arg_names_and_defaults() {
    let args = vec![
        ("A".to_string(), None),
        ("B".to_string(), Some("x=y".to_string())),
        ("C".to_string(), Some(String::new())),
        ("D".to_string(), Some("\"q q\"".to_string())),
    ];
    check(
        node("ARG").args(&["A", "B=x=y", "C=", "D=\"q q\""]),
        Instruction::Arg(Arg { args }),
    );
}

rejects! {
    arg_without_names: node("ARG") => "ARG requires at least one argument";
    arg_blank_name: node("ARG").args(&["A", "=v"]) => "ARG names can not be blank";
}

#[test]
fn cmd_entrypoint_exec_and_shell_forms() {
    let exec = CommandLine {
        args: strings(&["echo", "a b"]),
        prepend_shell: false,
    };
    check(
        node("CMD").args(&["echo", "a b"]).json(),
        Instruction::Cmd(Cmd { command: exec }),
    );
    let shell = shell_form("echo $HOME");
    check(
        node("CMD").args(&["echo $HOME"]),
        Instruction::Cmd(Cmd {
            command: shell.clone(),
        }),
    );
    let entry = Entrypoint { command: shell };
    check(
        node("ENTRYPOINT").args(&["echo $HOME"]),
        Instruction::Entrypoint(entry),
    );
}

#[test]
fn empty_exec_forms_are_empty_lists() {
    let empty = CommandLine {
        args: Vec::new(),
        prepend_shell: false,
    };
    check(
        node("CMD").json(),
        Instruction::Cmd(Cmd {
            command: empty.clone(),
        }),
    );
    check(
        node("ENTRYPOINT").json(),
        Instruction::Entrypoint(Entrypoint { command: empty }),
    );
}

#[test]
fn shell_requires_json() {
    let shell = Shell {
        shell: strings(&["powershell", "-command"]),
    };
    check(
        node("SHELL").args(&["powershell", "-command"]).json(),
        Instruction::Shell(shell),
    );
}

rejects! {
    shell_in_shell_form: node("SHELL").args(&["bash -c"])
        => "SHELL requires the arguments to be in JSON form";
    shell_empty_json: node("SHELL").json() => "SHELL requires at least one argument";
    shell_empty: node("SHELL") => "SHELL requires at least one argument";
}

#[test]
fn copy_sources_dest_and_every_flag() {
    let flags = [
        "--from=build",
        "--chown=1:2",
        "--chmod=0755",
        "--link",
        "--exclude=*.md",
        "--exclude=.git",
        "--parents=true",
    ];
    let expected = Copy {
        from: Some("build".into()),
        chown: Some("1:2".into()),
        chmod: Some("0755".into()),
        link: true,
        exclude: strings(&["*.md", ".git"]),
        parents: true,
        ..copy_of(&["a", "b/"], "/dst/")
    };
    check(
        node("COPY").flags(&flags).args(&["a", "b/", "/dst/"]),
        Instruction::Copy(expected),
    );
}

#[test]
fn copy_empty_string_flags_are_unset() {
    let builder = node("COPY")
        .flags(&["--from=", "--chown=", "--chmod="])
        .args(&["a", "b"]);
    check(builder, Instruction::Copy(copy_of(&["a"], "b")));
}

#[test]
fn add_every_flag() {
    let flags = [
        "--chown=app",
        "--chmod=644",
        "--link=false",
        "--keep-git-dir=true",
        "--checksum=sha256:abc",
        "--unpack=false",
        "--exclude=x",
    ];
    let expected = Add {
        chown: Some("app".into()),
        chmod: Some("644".into()),
        keep_git_dir: Some(true),
        checksum: Some("sha256:abc".into()),
        unpack: Some(false),
        exclude: strings(&["x"]),
        ..add_of(&["https://x/y.tgz"], "/opt/")
    };
    check(
        node("ADD")
            .flags(&flags)
            .args(&["https://x/y.tgz", "/opt/"]),
        Instruction::Add(expected),
    );
}

#[test]
fn add_tristate_flags_default_to_none() {
    check(
        node("ADD").args(&["a", "b"]),
        Instruction::Add(add_of(&["a"], "b")),
    );
    let given = Add {
        unpack: Some(true),
        keep_git_dir: Some(true),
        ..add_of(&["a"], "b")
    };
    let builder = node("ADD")
        .flags(&["--unpack", "--keep-git-dir"])
        .args(&["a", "b"]);
    check(builder, Instruction::Add(given));
}

#[test]
fn copy_heredoc_sources() {
    let builder = node("COPY")
        .args(&["<<EOF1", "foo.txt", "<<-\"EOF2\"", "/dst"])
        .heredoc("EOF1", "one $X\n", true, false)
        .heredoc("EOF2", "\t\ttwo\n\tthree\n", false, true);
    let expected = Copy {
        heredocs: vec![
            SourceHeredoc {
                path: "EOF1".into(),
                content: "one $X\n".into(),
                expand: true,
            },
            SourceHeredoc {
                path: "EOF2".into(),
                content: "two\nthree\n".into(),
                expand: false,
            },
        ],
        ..copy_of(&["foo.txt"], "/dst")
    };
    check(builder, Instruction::Copy(expected));
}

#[test]
fn add_heredoc_source_with_quoted_delimiter() {
    let builder = node("ADD")
        .args(&["<<'EOF'", "/x"])
        .heredoc("EOF", "\"q\"\n", false, false);
    let heredoc = SourceHeredoc {
        path: "EOF".into(),
        content: "\"q\"\n".into(),
        expand: false,
    };
    let expected = Add {
        heredocs: vec![heredoc],
        ..add_of(&[], "/x")
    };
    check(builder, Instruction::Add(expected));
}

#[test]
fn json_heredoc_marker_without_body_is_an_empty_file() {
    let builder = node("COPY").args(&["<<EOF", "/x"]).json();
    let heredoc = SourceHeredoc {
        path: "EOF".into(),
        content: String::new(),
        expand: true,
    };
    check(
        builder,
        Instruction::Copy(Copy {
            heredocs: vec![heredoc],
            ..copy_of(&[], "/x")
        }),
    );
}

#[test]
fn heredoc_like_words_that_are_not_markers_stay_sources() {
    let builder = node("COPY").args(&["a<<b", "<<", "<<a<b", "/x"]);
    check(
        builder,
        Instruction::Copy(copy_of(&["a<<b", "<<", "<<a<b"], "/x")),
    );
}

rejects! {
    copy_one_arg: node("COPY").args(&["a"])
        => "COPY requires at least two arguments, but only one was provided. destination could not be determined";
    add_no_args: node("ADD")
        => "ADD requires at least two arguments, but only one was provided. destination could not be determined";
    copy_arity_before_flags: node("COPY").flags(&["--bad"]).args(&["a"])
        => "COPY requires at least two arguments, but only one was provided. destination could not be determined";
    copy_heredoc_destination: node("COPY").args(&["/foo", "<<EOF"]).heredoc("EOF", "", true, false)
        => "COPY cannot accept a heredoc as a destination";
    add_heredoc_destination: node("ADD").args(&["/foo", "3<<-EOF"])
        => "ADD cannot accept a heredoc as a destination";
    copy_flags_before_heredoc_check: node("COPY").flags(&["--x"]).args(&["a", "<<EOF"])
        => "unknown flag: --x";
}

#[test]
fn onbuild_keeps_trigger_text() {
    let builder = node("onbuild").inner(node("run").args(&["echo hi"]));
    let expected = Onbuild {
        trigger: "RUN".into(),
        expression: "run echo hi".into(),
    };
    check(
        builder.original("  onbuild  run echo hi"),
        Instruction::Onbuild(expected),
    );
}

#[test]
fn onbuild_appends_heredoc_bodies() {
    let builder = node("ONBUILD")
        .inner(node("COPY").args(&["<<EOF", "/x"]))
        .heredoc("EOF", "body\n", true, false)
        .original("ONBUILD COPY <<EOF /x");
    let expected = Onbuild {
        trigger: "COPY".into(),
        expression: "COPY <<EOF /x\nbody\nEOF".into(),
    };
    check(builder, Instruction::Onbuild(expected));
}

rejects! {
    onbuild_empty: node("ONBUILD") => "ONBUILD requires at least one argument";
    onbuild_onbuild: node("ONBUILD").inner(node("onbuild").inner(node("RUN").args(&["x"])))
        => "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed";
    onbuild_from: node("ONBUILD").inner(node("from").args(&["scratch"]))
        => "FROM isn't allowed as an ONBUILD trigger";
    onbuild_maintainer: node("ONBUILD").inner(node("Maintainer").args(&["me"]))
        => "MAINTAINER isn't allowed as an ONBUILD trigger";
}

#[test]
fn healthcheck_none() {
    check(
        node("HEALTHCHECK").args(&["none"]),
        Instruction::Healthcheck(Healthcheck::None),
    );
    assert_eq!(Healthcheck::None.test(), ["NONE"]);
}

#[test]
fn healthcheck_shell_form_defaults() {
    let check = health(node("HEALTHCHECK").args(&["cmd", "curl -f http://x/"]));
    assert_eq!(check.command, shell_form("curl -f http://x/"));
    assert_eq!(check.interval, Duration::ZERO);
    assert_eq!(check.retries, 0);
    assert_eq!(
        Healthcheck::Check(check).test(),
        ["CMD-SHELL", "curl -f http://x/"]
    );
}

#[test]
fn healthcheck_exec_form_and_every_flag() {
    let flags = [
        "--interval=1m30s",
        "--timeout=1.5s",
        "--start-period=2h",
        "--start-interval=250ms",
        "--retries=3",
    ];
    let check = health(
        node("HEALTHCHECK")
            .flags(&flags)
            .args(&["CMD", "/bin/check", "-q"])
            .json(),
    );
    assert_eq!(check.interval, Duration::from_secs(90));
    assert_eq!(check.timeout, Duration::from_millis(1500));
    assert_eq!(check.start_period, Duration::from_secs(7200));
    assert_eq!(check.start_interval, Duration::from_millis(250));
    assert_eq!(check.retries, 3);
    assert_eq!(
        Healthcheck::Check(check).test(),
        ["CMD", "/bin/check", "-q"]
    );
}

#[test]
fn healthcheck_zero_and_empty_durations_mean_default() {
    let flags = [
        "--interval=0",
        "--timeout=0s",
        "--start-period=",
        "--retries=",
    ];
    let check = health(node("HEALTHCHECK").flags(&flags).args(&["CMD", "x"]));
    assert_eq!(
        (check.interval, check.timeout, check.start_period),
        (Duration::ZERO, Duration::ZERO, Duration::ZERO)
    );
    assert_eq!(check.retries, 0);
}

#[test]
fn healthcheck_minimum_and_unicode_units() {
    let check = health(
        node("HEALTHCHECK")
            .flags(&["--interval=1ms", "--timeout=1500µs"])
            .args(&["CMD", "x"]),
    );
    assert_eq!(check.interval, Duration::from_millis(1));
    assert_eq!(check.timeout, Duration::from_micros(1500));
}

rejects! {
    healthcheck_empty: node("HEALTHCHECK") => "HEALTHCHECK requires at least one argument";
    healthcheck_none_with_args: node("HEALTHCHECK").args(&["NONE", "x"])
        => "HEALTHCHECK NONE takes no arguments";
    healthcheck_cmd_without_command: node("HEALTHCHECK").args(&["CMD"])
        => "missing command after HEALTHCHECK CMD";
    healthcheck_unknown_type: node("HEALTHCHECK").args(&["check", "x"])
        => "unknown type \"CHECK\" in HEALTHCHECK (try CMD)";
    healthcheck_flags_before_type: node("HEALTHCHECK").flags(&["--x"]).args(&["check", "x"])
        => "unknown flag: --x";
    healthcheck_too_short: node("HEALTHCHECK").flags(&["--interval=50ns"]).args(&["CMD", "x"])
        => "interval \"interval\" cannot be less than 1ms";
    healthcheck_negative: node("HEALTHCHECK").flags(&["--timeout=-1s"]).args(&["CMD", "x"])
        => "interval \"timeout\" cannot be less than 1ms";
    healthcheck_start_period_short: node("HEALTHCHECK").flags(&["--start-period=999us"]).args(&["CMD", "x"])
        => "interval \"start-period\" cannot be less than 1ms";
    healthcheck_start_interval_bad: node("HEALTHCHECK").flags(&["--start-interval=fast"]).args(&["CMD", "x"])
        => "time: invalid duration \"fast\"";
    healthcheck_missing_unit: node("HEALTHCHECK").flags(&["--interval=30"]).args(&["CMD", "x"])
        => "time: missing unit in duration \"30\"";
    healthcheck_unknown_unit: node("HEALTHCHECK").flags(&["--interval=3d"]).args(&["CMD", "x"])
        => "time: unknown unit \"d\" in duration \"3d\"";
    healthcheck_negative_retries: node("HEALTHCHECK").flags(&["--retries=-1"]).args(&["CMD", "x"])
        => "--retries cannot be negative (-1)";
    healthcheck_retries_not_number: node("HEALTHCHECK").flags(&["--retries=many"]).args(&["CMD", "x"])
        => "strconv.ParseInt: parsing \"many\": invalid syntax";
    healthcheck_retries_too_big: node("HEALTHCHECK").flags(&["--retries=2147483648"]).args(&["CMD", "x"])
        => "strconv.ParseInt: parsing \"2147483648\": value out of range";
    healthcheck_durations_before_retries: node("HEALTHCHECK").flags(&["--retries=-1", "--timeout=1"]).args(&["CMD", "x"])
        => "time: missing unit in duration \"1\"";
}

rejects! {
    unknown_instruction: node("FOO").args(&["bar"]) => "unknown instruction: FOO (did you mean FROM?)";
    unknown_instruction_lower: node("foo").args(&["bar"]) => "unknown instruction: foo (did you mean from?)";
    unknown_instruction_suggests: node("FORM").args(&["a"])
        => "unknown instruction: FORM (did you mean FROM?)";
    unknown_instruction_suggests_in_case: node("copyy").args(&["a", "b"])
        => "unknown instruction: copyy (did you mean copy?)";
}

rejects! {
    unknown_instruction_without_hint: node("XYZZYQ") => "unknown instruction: XYZZYQ";
}

#[test]
fn onbuild_keeps_original_that_does_not_start_with_keyword() {
    let builder = node("ONBUILD")
        .inner(node("RUN").args(&["x"]))
        .original("RUN x");
    let expected = Onbuild {
        trigger: "RUN".into(),
        expression: "RUN x".into(),
    };
    check(builder, Instruction::Onbuild(expected));
}

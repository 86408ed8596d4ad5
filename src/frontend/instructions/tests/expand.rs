//! `Instruction::expand` and `expand_heredocs`: which fields change and which stay as written.

use super::super::{CacheSharing, Instruction, KeyValue, Mount, MountType, SourceHeredoc};
use super::{NodeBuilder, expander, node, parse_ok};

const VARS: &[(&str, &str)] = &[
    ("A", "alpha"),
    ("P", "linux/arm64"),
    ("DIR", "/srv"),
    ("PORTS", "80 443/udp"),
    ("EMPTY", ""),
];

/// Parses `builder`, expands it with [`VARS`] and returns the result.
fn expanded(builder: NodeBuilder) -> Instruction {
    let mut instruction = parse_ok(builder);
    let mut expand = expander(VARS);
    instruction.expand(&mut expand).expect("expansion");
    instruction
}

fn expand_error(builder: NodeBuilder) -> String {
    let mut instruction = parse_ok(builder);
    let mut expand = expander(VARS);
    instruction
        .expand(&mut expand)
        .expect_err("expansion should fail")
}

/// Instructions whose fields must all stay exactly as parsed.
fn unchanged(builder: NodeBuilder) {
    let parsed = parse_ok(builder);
    let mut instruction = parsed.clone();
    let mut expand = expander(VARS);
    instruction.expand(&mut expand).expect("expansion");
    assert_eq!(instruction, parsed);
}

#[test]
fn from_expands_image_and_platform_not_stage_name() {
    let builder = node("FROM")
        .flags(&["--platform=$P"])
        .args(&["img:$A", "AS", "Base"]);
    let Instruction::From(from) = expanded(builder) else {
        panic!("not FROM")
    };
    assert_eq!(from.image, "img:alpha");
    assert_eq!(from.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(from.stage_name.as_deref(), Some("base"));
}

#[test]
fn env_and_label_expand_keys_and_values() {
    let args = ["K_$A", "\"v $A\"", "=", "plain", "$DIR", ""];
    let expected = vec![
        KeyValue {
            key: "K_alpha".into(),
            value: "v alpha".into(),
            no_delimiter: false,
        },
        KeyValue {
            key: "plain".into(),
            value: "/srv".into(),
            no_delimiter: true,
        },
    ];
    let Instruction::Env(env) = expanded(node("ENV").args(&args)) else {
        panic!("not ENV")
    };
    assert_eq!(env.vars, expected);
    let Instruction::Label(label) = expanded(node("LABEL").args(&args)) else {
        panic!("not LABEL")
    };
    assert_eq!(label.labels, expected);
}

#[test]
fn copy_expands_paths_and_ownership_but_not_from_or_exclude() {
    let flags = ["--from=stage", "--chown=$A", "--chmod=$A", "--exclude=$A"];
    let builder = node("COPY")
        .flags(&flags)
        .args(&["$DIR/a", "<<EOF", "$DIR/"])
        .heredoc("EOF", "$A\n", true, false);
    let Instruction::Copy(copy) = expanded(builder) else {
        panic!("not COPY")
    };
    assert_eq!(copy.sources, ["/srv/a"]);
    assert_eq!(copy.dest, "/srv/");
    assert_eq!(
        (copy.chown.as_deref(), copy.chmod.as_deref()),
        (Some("alpha"), Some("alpha"))
    );
    assert_eq!(copy.from.as_deref(), Some("stage"));
    assert_eq!(copy.exclude, ["$A"]);
    assert_eq!(
        copy.heredocs[0].content, "$A\n",
        "heredoc bodies wait for expand_heredocs"
    );
}

#[test]
fn add_expands_checksum_too() {
    let flags = [
        "--checksum=sha256:$A",
        "--chown=$A",
        "--exclude=$A",
        "--unpack",
    ];
    let builder = node("ADD")
        .flags(&flags)
        .args(&["https://h/$A.tgz", "$DIR"]);
    let Instruction::Add(add) = expanded(builder) else {
        panic!("not ADD")
    };
    assert_eq!(add.checksum.as_deref(), Some("sha256:alpha"));
    assert_eq!(add.chown.as_deref(), Some("alpha"));
    assert_eq!(add.chmod, None);
    assert_eq!(add.sources, ["https://h/alpha.tgz"]);
    assert_eq!(add.dest, "/srv");
    assert_eq!(add.exclude, ["$A"]);
    assert_eq!(add.unpack, Some(true));
}

#[test]
fn heredoc_contents_expand_only_when_unquoted() {
    let builder = node("COPY")
        .args(&["<<A", "<<'B'", "/x"])
        .heredoc("A", "\"$A\"\n", true, false)
        .heredoc("B", "$A\n", false, false);
    let mut instruction = parse_ok(builder);
    // A raw expander: substitutes but keeps quotes, as BuildKit does for file contents.
    let mut raw = |word: &str| Ok::<_, String>(word.replace("$A", "alpha"));
    instruction.expand_heredocs(&mut raw).expect("expansion");
    let Instruction::Copy(copy) = instruction else {
        panic!("not COPY")
    };
    let expected = vec![
        SourceHeredoc {
            path: "A".into(),
            content: "\"alpha\"\n".into(),
            expand: true,
        },
        SourceHeredoc {
            path: "B".into(),
            content: "$A\n".into(),
            expand: false,
        },
    ];
    assert_eq!(copy.heredocs, expected);
}

#[test]
fn expand_heredocs_leaves_other_instructions_alone() {
    let mut run = parse_ok(
        node("RUN")
            .args(&["<<EOF"])
            .heredoc("EOF", "$A\n", true, false),
    );
    let before = run.clone();
    let mut fail = |_: &str| Err::<String, _>("must not be called".to_string());
    assert_eq!(run.expand_heredocs(&mut fail), Ok(()));
    assert_eq!(run, before);
}

#[test]
fn single_value_instructions_expand() {
    let Instruction::Workdir(w) = expanded(node("WORKDIR").args(&["$DIR/app"])) else {
        panic!("not WORKDIR")
    };
    assert_eq!(w.path, "/srv/app");
    let Instruction::User(u) = expanded(node("USER").args(&["${A}:$A"])) else {
        panic!("not USER")
    };
    assert_eq!(u.user, "alpha:alpha");
    let Instruction::StopSignal(s) = expanded(node("STOPSIGNAL").args(&["SIG$A"])) else {
        panic!("not STOPSIGNAL")
    };
    assert_eq!(s.signal, "SIGalpha");
    let Instruction::Volume(v) = expanded(node("VOLUME").args(&["$DIR", "/x"])) else {
        panic!("not VOLUME")
    };
    assert_eq!(v.paths, ["/srv", "/x"]);
}

#[test]
fn arg_expands_defaults_not_names() {
    let Instruction::Arg(arg) = expanded(node("ARG").args(&["N_$A=$DIR", "M"])) else {
        panic!("not ARG")
    };
    assert_eq!(
        arg.args,
        vec![
            ("N_$A".to_string(), Some("/srv".to_string())),
            ("M".to_string(), None)
        ]
    );
}

#[test]
fn expose_expands_and_splits_ports() {
    let Instruction::Expose(e) = expanded(node("EXPOSE").args(&["$PORTS", "$EMPTY", "8080"]))
    else {
        panic!("not EXPOSE")
    };
    assert_eq!(e.ports, ["80", "443/udp", "8080"]);
}

#[test]
fn run_expansion_parses_mounts_and_keeps_the_command() {
    let flags = [
        "--mount=type=cache,target=$DIR/cache,id=$A,sharing=locked,uid=1",
        "--mount=type=secret,id=$A,env=TOKEN",
        "--network=none",
    ];
    let builder = node("RUN").flags(&flags).args(&["echo $A"]);
    let Instruction::Run(run) = expanded(builder) else {
        panic!("not RUN")
    };
    let cache = Mount {
        kind: MountType::Cache,
        target: Some("/srv/cache".into()),
        id: Some("alpha".into()),
        sharing: Some(CacheSharing::Locked),
        uid: Some(1),
        ..Mount::default()
    };
    let secret = Mount {
        kind: MountType::Secret,
        id: Some("alpha".into()),
        env: Some("TOKEN".into()),
        read_only: true,
        ..Mount::default()
    };
    assert_eq!(run.mounts, vec![cache, secret]);
    assert_eq!(run.command.args, ["echo $A"]);
    assert_eq!(run.mount_specs[0], flags[0].trim_start_matches("--mount="));
}

#[test]
fn run_expansion_reports_mount_errors() {
    let builder = node("RUN").flags(&["--mount=type=$A"]).args(&["x"]);
    assert_eq!(expand_error(builder), "unsupported mount type \"alpha\"");
    let builder = node("RUN")
        .flags(&["--mount=type=tmpfs,target=$BAD"])
        .args(&["x"]);
    assert_eq!(expand_error(builder), "cannot expand $BAD");
}

#[test]
fn expansion_errors_propagate() {
    assert_eq!(
        expand_error(node("WORKDIR").args(&["$BAD"])),
        "cannot expand $BAD"
    );
    assert_eq!(
        expand_error(node("ENV").args(&["k", "$BAD", "="])),
        "cannot expand $BAD"
    );
    assert_eq!(
        expand_error(node("COPY").flags(&["--chmod=$BAD"]).args(&["a", "b"])),
        "cannot expand $BAD"
    );
    assert_eq!(
        expand_error(node("ARG").args(&["a=$BAD"])),
        "cannot expand $BAD"
    );
}

#[test]
fn command_instructions_never_expand() {
    unchanged(node("CMD").args(&["echo $A"]));
    unchanged(node("ENTRYPOINT").args(&["$A", "$DIR"]).json());
    unchanged(node("SHELL").args(&["$A", "-c"]).json());
    unchanged(node("MAINTAINER").args(&["$A"]));
    unchanged(node("HEALTHCHECK").args(&["CMD", "check $A"]));
    unchanged(node("ONBUILD").inner(node("RUN").args(&["echo $A"])));
    unchanged(
        node("RUN")
            .args(&["echo $A"])
            .heredoc("EOF", "$A\n", true, false),
    );
}

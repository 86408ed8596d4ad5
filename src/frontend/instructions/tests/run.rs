//! RUN: command forms, heredocs, and the --mount/--network/--security/--device options.

use super::super::{
    CacheSharing, CommandLine, Device, Instruction, Mount, MountType, NetworkMode, Run, RunProgram,
    SecurityMode, parse_device, parse_mount,
};
use super::{expander, node, parse_ok, rejects};

fn run(builder: super::NodeBuilder) -> Run {
    match parse_ok(builder) {
        Instruction::Run(run) => run,
        other => panic!("not a RUN: {other:?}"),
    }
}

/// Parses a mount completely, with variables left alone.
fn mount(spec: &str) -> Result<Mount, String> {
    let mut identity = |word: &str| Ok(word.to_string());
    parse_mount(spec, Some(&mut identity))
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

#[test]
fn shell_and_exec_forms() {
    let shell = run(node("RUN").args(&["echo hi && ls"]));
    let expected = CommandLine {
        args: vec!["echo hi && ls".into()],
        prepend_shell: true,
    };
    assert_eq!(shell.command, expected);
    let exec = run(node("RUN").args(&["ls", "-l"]).json());
    assert_eq!(
        exec.command,
        CommandLine {
            args: vec!["ls".into(), "-l".into()],
            prepend_shell: false
        }
    );
    assert!(exec.mounts.is_empty() && exec.flags_used.is_empty());
    assert_eq!((exec.network, exec.security), (None, None));
}

#[test]
fn network_and_security_values() {
    for (value, mode) in [
        ("default", NetworkMode::Default),
        ("none", NetworkMode::None),
        ("host", NetworkMode::Host),
    ] {
        let flag = format!("--network={value}");
        assert_eq!(
            run(node("RUN").flags(&[&flag]).args(&["x"])).network,
            Some(mode)
        );
    }
    let insecure = run(node("RUN").flags(&["--security=insecure"]).args(&["x"]));
    assert_eq!(insecure.security, Some(SecurityMode::Insecure));
    let sandbox = run(node("RUN").flags(&["--security=sandbox"]).args(&["x"]));
    assert_eq!(sandbox.security, Some(SecurityMode::Sandbox));
}

#[test]
fn flags_used_in_first_use_order() {
    let flags = [
        "--network=none",
        "--mount=type=tmpfs,target=/t",
        "--mount=target=/u",
        "--device=a",
    ];
    let parsed = run(node("RUN").flags(&flags).args(&["x"]));
    assert_eq!(parsed.flags_used, ["network", "mount", "device"]);
    assert_eq!(parsed.mount_specs, ["type=tmpfs,target=/t", "target=/u"]);
}

#[test]
fn parse_time_mounts_only_know_from() {
    let flags = [
        "--mount=type=cache,from=builder,target=$DIR,mode=0700",
        "--mount=type=$T",
    ];
    let parsed = run(node("RUN").flags(&flags).args(&["x"]));
    let first = Mount {
        from: some("builder"),
        read_only: true,
        ..Mount::default()
    };
    assert_eq!(
        parsed.mounts,
        vec![
            first,
            Mount {
                read_only: true,
                ..Mount::default()
            }
        ]
    );
}

#[test]
fn parse_time_defers_invalid_values_until_expansion() {
    // BuildKit only validates these once variables are known.
    let parsed = run(node("RUN")
        .flags(&["--mount=type=nope,mode=z,bogus"])
        .args(&["x"]));
    assert_eq!(parsed.mounts.len(), 1);
}

#[test]
fn from_may_end_with_a_dollar() {
    let parsed = run(node("RUN").flags(&["--mount=from=cost$"]).args(&["x"]));
    assert_eq!(parsed.mounts[0].from.as_deref(), Some("cost$"));
}

rejects! {
    mount_from_variable: node("RUN").flags(&["--mount=from=$STAGE"]).args(&["x"])
        => "'from' doesn't support variable expansion, define alias stage instead";
    mount_from_variable_mixed_case_key: node("RUN").flags(&["--mount=FROM=a${B}"]).args(&["x"])
        => "'from' doesn't support variable expansion, define alias stage instead";
    mount_empty: node("RUN").flags(&["--mount="]).args(&["x"]) => "failed to parse csv mounts: EOF";
    mount_bare_quote: node("RUN").flags(&["--mount=target=a\"b"]).args(&["x"])
        => "failed to parse csv mounts: parse error on line 1, column 9: bare \" in non-quoted-field";
    mount_unclosed_quote: node("RUN").flags(&["--mount=\"target=a"]).args(&["x"])
        => "failed to parse csv mounts: parse error on line 1, column 2: extraneous or missing \" in quoted-field";
    network_invalid: node("RUN").flags(&["--network=bridge"]).args(&["x"])
        => "invalid network mode \"bridge\"";
    network_empty: node("RUN").flags(&["--network="]).args(&["x"]) => "invalid network mode \"\"";
    network_is_case_sensitive: node("RUN").flags(&["--network=HOST"]).args(&["x"])
        => "invalid network mode \"HOST\"";
    security_invalid: node("RUN").flags(&["--security=privileged"]).args(&["x"])
        => "security \"privileged\" is not valid";
    device_bad_field: node("RUN").flags(&["--device=a,b"]).args(&["x"])
        => "invalid field 'b' must be a key=value pair";
    devices_checked_before_mounts: node("RUN").flags(&["--mount=from=$X", "--device=a,b"]).args(&["x"])
        => "invalid field 'b' must be a key=value pair";
    mounts_checked_before_network: node("RUN").flags(&["--network=x", "--mount=from=$X"]).args(&["x"])
        => "'from' doesn't support variable expansion, define alias stage instead";
    network_checked_before_security: node("RUN").flags(&["--security=x", "--network=x"]).args(&["x"])
        => "invalid network mode \"x\"";
}

#[test]
fn bind_mount_defaults_and_aliases() {
    let expected = Mount {
        kind: MountType::Bind,
        from: some("build"),
        source: some("/out"),
        target: some("/in"),
        read_only: true,
        ..Mount::default()
    };
    assert_eq!(mount("from=build,src=/out,dst=/in"), Ok(expected.clone()));
    assert_eq!(
        mount("type=BIND,from=build,source=/out,destination=/in"),
        Ok(expected.clone())
    );
    assert_eq!(
        mount("Type=bind,From=build,Source=/out,Target=/in"),
        Ok(expected)
    );
}

#[test]
fn read_only_spellings() {
    let cases = [
        ("target=/a,rw", false),
        ("target=/a,readwrite", false),
        ("target=/a,rw=true", false),
        ("target=/a,readwrite=1", false),
        ("target=/a,rw=false", true),
        ("type=cache,target=/a,ro", true),
        ("type=cache,target=/a,readonly=T", true),
        ("type=cache,target=/a,readonly=false", false),
        ("type=cache,target=/a,ro=0", false),
        ("type=tmpfs,target=/a", false),
        ("type=cache,target=/a", false),
        ("type=ssh", true),
        ("type=secret,id=x", true),
    ];
    for (spec, read_only) in cases {
        assert_eq!(mount(spec).map(|m| m.read_only), Ok(read_only), "{spec}");
    }
}

#[test]
fn cache_mount_options() {
    let spec = "type=cache,target=/root/.cache,id=pip,sharing=LOCKED,mode=0755,uid=1000,gid=100";
    let expected = Mount {
        kind: MountType::Cache,
        target: some("/root/.cache"),
        id: some("pip"),
        sharing: Some(CacheSharing::Locked),
        mode: Some(0o755),
        uid: Some(1000),
        gid: Some(100),
        ..Mount::default()
    };
    assert_eq!(mount(spec), Ok(expected));
    assert_eq!(
        mount("type=cache,target=/c,sharing=shared").map(|m| m.sharing),
        Ok(Some(CacheSharing::Shared))
    );
    assert_eq!(
        mount("type=cache,target=/c,sharing=private").map(|m| m.sharing),
        Ok(Some(CacheSharing::Private))
    );
}

#[test]
fn tmpfs_sizes() {
    let cases = [
        ("64m", 64 << 20),
        ("1.5GiB", 3 << 29),
        ("100", 100),
        ("2 kb", 2048),
        ("10b", 10),
        ("1T", 1 << 40),
        ("1p", 1 << 50),
    ];
    for (size, bytes) in cases {
        let spec = format!("type=tmpfs,target=/t,size={size}");
        assert_eq!(
            mount(&spec).map(|m| m.size_limit),
            Ok(Some(bytes)),
            "{size}"
        );
    }
}

#[test]
fn secret_and_ssh_mounts() {
    let secret = Mount {
        kind: MountType::Secret,
        id: some("npmrc"),
        target: some("/root/.npmrc"),
        required: true,
        read_only: true,
        mode: Some(0o400),
        ..Mount::default()
    };
    assert_eq!(
        mount("type=secret,id=npmrc,target=/root/.npmrc,required,mode=0400"),
        Ok(secret)
    );
    let env = mount("type=secret,id=tok,env=TOKEN").map(|m| m.env);
    assert_eq!(env, Ok(some("TOKEN")));
    assert_eq!(mount("type=secret,src=a,env=").map(|m| m.env), Ok(some("")));
    let ssh = mount("type=ssh,id=github,required=false,uid=1").expect("ssh");
    assert_eq!(
        (ssh.kind, ssh.id, ssh.required, ssh.uid),
        (MountType::Ssh, some("github"), false, Some(1))
    );
    assert_eq!(
        mount("type=ssh,required=true").map(|m| m.required),
        Ok(true)
    );
}

#[test]
fn quoted_csv_fields() {
    let parsed = mount("\"target=/a,b\",\"source=x\"\"y\"").expect("quoted");
    assert_eq!((parsed.target, parsed.source), (some("/a,b"), some("x\"y")));
}

#[test]
fn mount_errors() {
    let cases = [
        ("type=volume", "unsupported mount type \"volume\""),
        (
            "type=bnd",
            "unsupported mount type \"bnd\" (did you mean bind?)",
        ),
        ("target=/a,ro=maybe", "invalid value for ro: maybe"),
        ("target=/a,readwrite=2", "invalid value for readwrite: 2"),
        (
            "target=/a,required",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "required,type=secret,id=a",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "type=secret,id=a,required=sure",
            "invalid value for required: sure",
        ),
        (
            "type=cache,required=true",
            "unexpected key 'required' for mount type 'cache'",
        ),
        (
            "type=cache,size=1m",
            "unexpected key 'size' for mount type 'cache'",
        ),
        ("type=tmpfs,size=lots", "invalid value for size: lots"),
        ("type=tmpfs,size=1q", "invalid value for size: 1q"),
        ("type=tmpfs,size=-1", "invalid value for size: -1"),
        (
            "type=cache,sharing=exclusive",
            "unsupported sharing value \"exclusive\"",
        ),
        (
            "type=cache,sharing=lockd",
            "unsupported sharing value \"lockd\" (did you mean locked?)",
        ),
        ("type=cache,mode=0800", "invalid value 0800 for mode"),
        ("type=cache,mode=+7", "invalid value +7 for mode"),
        ("type=cache,uid=-1", "invalid value -1 for uid"),
        (
            "type=cache,gid=4294967296",
            "invalid value 4294967296 for gid",
        ),
        (
            "target=/a,mode=0700",
            "mode not allowed for \"bind\" type mounts",
        ),
        (
            "type=tmpfs,uid=1",
            "uid not allowed for \"tmpfs\" type mounts",
        ),
        (
            "type=tmpfs,gid=1",
            "gid not allowed for \"tmpfs\" type mounts",
        ),
        (
            "target=/a,nonsense",
            "invalid field 'nonsense' must be a key=value pair",
        ),
        ("target=/a,", "invalid field '' must be a key=value pair"),
        (
            "target=/a,colour=red",
            "unexpected key 'colour' in 'colour=red'",
        ),
        (
            "target=/a,tagret=/b",
            "unexpected key 'tagret' in 'tagret=/b' (did you mean target?)",
        ),
        (
            "type=secret,id=a,from=b",
            "secret mount should not have a from",
        ),
        (
            "type=secret,id=a,sharing=shared",
            "secret mount should not define sharing",
        ),
        (
            "type=secret",
            "invalid secret mount. one of source, target required",
        ),
        (
            "type=secret,source=a,id=b",
            "both source and id can't be set",
        ),
        (
            "target=/a,sharing=locked",
            "invalid cache sharing set for bind mount",
        ),
        (
            "type=ssh,sharing=locked",
            "invalid cache sharing set for ssh mount",
        ),
    ];
    for (spec, message) in cases {
        assert_eq!(mount(spec), Err(message.to_string()), "{spec}");
    }
}

#[test]
fn expansion_errors_propagate_from_mounts() {
    let mut failing = expander(&[]);
    assert_eq!(
        parse_mount("target=$BAD", Some(&mut failing)),
        Err("cannot expand $BAD".into())
    );
}

#[test]
fn devices() {
    let device = |name: &str, required| Device {
        name: name.into(),
        required,
    };
    let cases = [
        ("vendor.com/gpu=all", device("vendor.com/gpu=all", false)),
        (
            "name=vendor.com/gpu=0,required",
            device("vendor.com/gpu=0", true),
        ),
        (
            "nvidia.com/gpu,required=true",
            device("nvidia.com/gpu", true),
        ),
        ("required=false,name=x", device("x", false)),
        ("REQUIRED,x", device("x", true)),
    ];
    for (spec, expected) in cases {
        assert_eq!(parse_device(spec), Ok(expected), "{spec}");
    }
    let parsed = run(node("RUN")
        .flags(&["--device=a", "--device=b,required"])
        .args(&["x"]));
    assert_eq!(parsed.devices, vec![device("a", false), device("b", true)]);
}

#[test]
fn device_errors() {
    let cases = [
        ("", "failed to parse csv devices: EOF"),
        ("a,name=b", "device name already set to a"),
        ("a,required=maybe", "invalid value for required: maybe"),
        ("a,colour=red", "unexpected key 'colour' in 'colour=red'"),
        (
            "a,nmae=b",
            "unexpected key 'nmae' in 'nmae=b' (did you mean name?)",
        ),
    ];
    for (spec, message) in cases {
        assert_eq!(parse_device(spec), Err(message.to_string()), "{spec}");
    }
}

#[test]
fn program_without_heredoc_is_the_command() {
    let parsed = run(node("RUN").args(&["ls", "/"]).json());
    assert_eq!(
        parsed.program(false),
        Ok(RunProgram::Command(parsed.command.clone()))
    );
}

#[test]
fn program_of_a_lone_heredoc_is_its_body() {
    let parsed =
        run(node("RUN")
            .args(&["<<-EOF"])
            .heredoc("EOF", "\tls /\n\twhoami\n", true, true));
    assert_eq!(parsed.heredocs[0].content, "\tls /\n\twhoami\n");
    let expected = CommandLine {
        args: vec!["ls /\nwhoami\n".into()],
        prepend_shell: true,
    };
    assert_eq!(parsed.program(false), Ok(RunProgram::Command(expected)));
}

#[test]
fn program_of_a_shebang_heredoc_is_a_script() {
    let body = "#!/usr/bin/env python3\nprint(1)\n";
    let parsed = run(node("RUN")
        .args(&["<<'PY'"])
        .heredoc("PY", body, false, false));
    let script = RunProgram::Script {
        name: "PY".into(),
        content: body.into(),
    };
    assert_eq!(parsed.program(false), Ok(script));
    let on_windows = CommandLine {
        args: vec![body.into()],
        prepend_shell: true,
    };
    assert_eq!(parsed.program(true), Ok(RunProgram::Command(on_windows)));
}

#[test]
fn program_of_a_compound_heredoc_is_reassembled() {
    let parsed = run(node("RUN")
        .args(&["<<A cat - && cat <<B"])
        .heredoc("A", "one\n", true, false)
        .heredoc("B", "two\n", true, false));
    let text = "<<A cat - && cat <<B\none\nA\ntwo\nB";
    let expected = CommandLine {
        args: vec![text.into()],
        prepend_shell: true,
    };
    assert_eq!(parsed.program(false), Ok(RunProgram::Command(expected)));
}

#[test]
fn program_rejects_heredocs_with_exec_form() {
    let mut parsed = run(node("RUN")
        .args(&["<<EOF"])
        .heredoc("EOF", "x\n", true, false));
    parsed.command.prepend_shell = false;
    assert_eq!(
        parsed.program(false),
        Err("parsing produced an invalid run command: [<<EOF]".into())
    );
}

//! Tests of the container backend's guard rails; steps themselves run in
//! `tests/sandbox_backends.rs`, which has the built binary as the helper.

use std::collections::BTreeMap;

use super::*;
use crate::sandbox::test_support::{busybox_layer, store};
use crate::sandbox::{EtcFiles, Network, RunSpec};

fn options(env: &[(&str, &str)], isolation: Isolation) -> SelectOptions {
    SelectOptions {
        isolation,
        protected: Vec::new(),
        env: Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// `decide` on its inputs: `Ok(line)` exactly, or an error containing the text.
fn check(marked: bool, explicit: bool, evidence: Option<&str>, expected: Result<&str, &str>) {
    let got = decide(marked, explicit, evidence);
    match (expected, &got) {
        (Ok(want), Ok(text)) => assert_eq!(text, want),
        (Err(want), Err(text)) => assert!(text.contains(want), "{text}"),
        _ => panic!("{marked} {explicit} {evidence:?}: got {got:?}, want {expected:?}"),
    }
}

#[test]
fn decision_needs_the_marker_and_a_container() {
    let docker = Some("`/.dockerenv` exists");
    check(
        true,
        false,
        docker,
        Ok("RIA_CONTAINER=1 in a container: `/.dockerenv` exists"),
    );
    check(
        true,
        true,
        Some("x"),
        Ok("RIA_CONTAINER=1 and --isolation container in a container: x"),
    );
    // `--isolation container` alone is not enough: a development container, or a machine
    // that is itself a container, would lose its root file system.
    check(
        false,
        true,
        Some("PID 1 has `container=podman`"),
        Err("`--isolation container` was given but RIA_CONTAINER=1 is not set"),
    );
    check(false, false, docker, Err("RIA_CONTAINER=1 is not set"));
    check(
        true,
        false,
        None,
        Err("would overwrite the host's root file system"),
    );
    check(false, true, None, Err("RIA_CONTAINER=1 is not set"));
}

#[test]
fn detect_refuses_without_the_marker_or_a_request() {
    let error = ContainerBackend::detect(&options(&[], Isolation::Auto)).expect_err("refused");
    assert!(error.contains("RIA_CONTAINER=1 is not set"), "{error}");
    let error = ContainerBackend::detect(&options(&[("RIA_CONTAINER", "yes")], Isolation::Auto))
        .expect_err("only `1` counts");
    assert!(error.contains("RIA_CONTAINER=1 is not set"), "{error}");
}

#[test]
fn the_real_root_is_refused_when_detection_fails() {
    let (_tmp, store) = store();
    for root in ["/", "/tmp/.."] {
        let refused =
            ContainerBackend::with_root(Path::new(root), &store, &options(&[], Isolation::Auto));
        let Err(error) = refused else {
            panic!("`{root}` was accepted");
        };
        assert!(matches!(error, SandboxError::Unavailable(_)), "{error}");
        assert!(error.to_string().contains("may not run here"), "{error}");
    }
}

#[test]
fn keep_paths_come_from_the_environment() {
    let default = keep_paths(&options(&[], Isolation::Auto));
    assert_eq!(default, [PathBuf::from("/ria")]);
    let listed = keep_paths(&options(
        &[("RIA_CONTAINER_KEEP", "/opt/ria::/usr/local/ria")],
        Isolation::Auto,
    ));
    assert_eq!(
        listed,
        [PathBuf::from("/opt/ria"), PathBuf::from("/usr/local/ria")]
    );
}

#[test]
fn network_none_fails_the_step_naming_the_backend() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let base = busybox_layer(&store);
    let mut backend = ContainerBackend::with_root(&root, &store, &options(&[], Isolation::Auto))
        .expect("backend");
    let spec = RunSpec {
        args: vec!["/bin/true".into()],
        env: Vec::new(),
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        network: Network::None,
        mounts: Vec::new(),
        etc: EtcFiles::default(),
        hostname: "build".into(),
    };
    let mut output = |_: &str| {};
    let view = crate::layer::index::FsView::new(vec![std::sync::Arc::clone(&base.index)]);
    let step = Step {
        store: &store,
        layers: std::slice::from_ref(&base),
        view: &view,
        spec: &spec,
        epoch: None,
        output: &mut output,
    };
    let error = backend.run(step).err().expect("must fail").to_string();
    assert!(error.contains("the container backend"), "{error}");
    assert!(error.contains("--network=none"), "{error}");
    assert!(
        root.join("bin/busybox").is_file(),
        "the stage was unpacked first"
    );
}

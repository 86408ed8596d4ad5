//! `build --push` as users run it: to registries with Basic and token auth, through a
//! proxy that injects faults, and an aborted push that must leave no tag.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::Registry;
use support::auth_registry::AuthRegistry;
use support::fault_proxy::{FaultConfig, FaultKind, FaultProxy};
use support::token_server::TokenOptions;

const SECRET: &str = "s3cr3t-Value-42";

/// A context whose image has one 9 MiB layer: three chunks of at most 4 MiB.
fn context(dir: &Path) {
    std::fs::create_dir_all(dir).expect("context dir");
    let mut state: u64 = 0x1234_5678_9abc_def0;
    let mut bytes = Vec::with_capacity(9 << 20);
    while bytes.len() < 9 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(dir.join("data.bin"), bytes).expect("data");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY data.bin /data.bin\n",
    )
    .expect("Dockerfile");
}

fn push(dir: &Path, reference: &str, username: Option<&str>, password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rust-image-action"));
    command
        .arg("build")
        .arg(dir.join("context"))
        .args(["--cache-dir"])
        .arg(dir.join("cache"))
        .args([
            "--source-date-epoch",
            "1700000000",
            "-t",
            reference,
            "--push",
        ]);
    if let Some(username) = username {
        command.args([
            "--username",
            username,
            "--password-env",
            "RIA_TEST_PASSWORD",
        ]);
    }
    if let Some(password) = password {
        command.env("RIA_TEST_PASSWORD", password);
    }
    command.output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn digest(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The digest skopeo sees for `reference`, with `creds` if given.
fn remote_digest(reference: &str, creds: Option<&str>) -> Option<String> {
    let mut skopeo = support::skopeo();
    skopeo.args(["inspect", "--tls-verify=false", "--raw"]);
    if let Some(creds) = creds {
        skopeo.args(["--creds", creds]);
    }
    let output = skopeo
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs");
    output.status.success().then(|| {
        let digest = rust_image_action::oci::digest::Digest::of(&output.stdout);
        digest.to_string()
    })
}

#[test]
fn pushes_with_basic_and_token_auth_and_never_shows_the_secret() {
    let work = tempfile::tempdir().expect("temp dir");
    context(&work.path().join("context"));

    let basic = AuthRegistry::start_basic("ci", SECRET);
    let reference = format!("{}/team/app:1", basic.addr());
    let refused = push(work.path(), &reference, Some("ci"), Some("wrong-password"));
    assert!(!refused.status.success(), "a wrong password must fail");
    let message = stderr(&refused);
    assert!(
        message.contains(basic.addr()),
        "the error names the registry: {message}"
    );
    assert!(
        message.contains("explicitly given"),
        "the error names the credential source: {message}"
    );
    assert!(
        !message.contains("wrong-password"),
        "the secret leaked: {message}"
    );
    let pushed = push(work.path(), &reference, Some("ci"), Some(SECRET));
    assert!(
        pushed.status.success(),
        "basic push failed: {}",
        stderr(&pushed)
    );
    assert!(!stderr(&pushed).contains(SECRET));
    assert_eq!(
        remote_digest(&reference, Some(&basic.creds())),
        Some(digest(&pushed))
    );

    let token = AuthRegistry::start_token(TokenOptions::new("ci", SECRET));
    assert!(
        token.challenge().starts_with("Bearer realm="),
        "{}",
        token.challenge()
    );
    let reference = format!("{}/team/app:1", token.addr());
    let anonymous = push(work.path(), &reference, None, None);
    assert!(
        !anonymous.status.success(),
        "an anonymous push must be refused"
    );
    let pushed = push(work.path(), &reference, Some("ci"), Some(SECRET));
    assert!(
        pushed.status.success(),
        "token push failed: {}",
        stderr(&pushed)
    );
    assert!(!stderr(&pushed).contains(SECRET));
    assert_eq!(
        remote_digest(&reference, Some(&token.creds())),
        Some(digest(&pushed))
    );
    let scopes: Vec<String> = token
        .token_server()
        .requests()
        .iter()
        .flat_map(|request| request.scopes.clone())
        .collect();
    assert!(
        scopes.iter().any(|s| s == "repository:team/app:pull,push"),
        "a push token was asked for the target: {scopes:?}"
    );
}

#[test]
fn pushes_complete_through_injected_faults() {
    // Upload URLs carry the registry's random session ids, so which requests fail varies
    // between runs; the faults seen across all runs must not be zero.
    let mut injected = 0;
    for (rate, seed) in [(0.1, 7), (0.1, 99), (0.1, 1234), (0.2, 3), (0.2, 42)] {
        let registry = Registry::start_open();
        let proxy = FaultProxy::start(registry.addr(), FaultConfig::new(rate, seed));
        let work = tempfile::tempdir().expect("temp dir");
        context(&work.path().join("context"));
        let reference = format!("{}/faulty/app:1", proxy.addr());
        let pushed = push(work.path(), &reference, None, None);
        let stats = proxy.stats();
        assert!(
            pushed.status.success(),
            "push at fault rate {rate} (seed {seed}) failed after {} faults: {}",
            stats.faults_total(),
            stderr(&pushed)
        );
        let direct = format!("{}/faulty/app:1", registry.addr());
        assert_eq!(
            remote_digest(&direct, None),
            Some(digest(&pushed)),
            "rate {rate}"
        );
        injected += stats.faults_total();
        report(&format!(
            "push at rate {rate} seed {seed}: completed, {} requests, faults {:?}",
            stats.requests, stats.faults
        ));
    }
    assert!(injected > 0, "no fault was injected in any run");
}

#[test]
fn a_push_that_fails_leaves_no_tag() {
    let registry = Registry::start_open();
    let mut config = FaultConfig::new(1.0, 1);
    config.kinds = vec![FaultKind::Reset, FaultKind::Status500];
    config.methods = vec!["PATCH".to_string(), "PUT".to_string()];
    config.max_faults_per_request = u32::MAX;
    let proxy = FaultProxy::start(registry.addr(), config);
    let work = tempfile::tempdir().expect("temp dir");
    context(&work.path().join("context"));
    let reference = format!("{}/broken/app:1", proxy.addr());
    let failed = push(work.path(), &reference, None, None);
    assert!(
        !failed.status.success(),
        "every upload failing must fail the push"
    );
    let message = stderr(&failed);
    assert!(
        message.contains("broken/app"),
        "the error names the repository: {message}"
    );
    let direct = format!("{}/broken/app:1", registry.addr());
    assert_eq!(
        remote_digest(&direct, None),
        None,
        "a failed push left a tag"
    );
}

#[test]
fn private_bases_are_pulled_with_docker_config_credentials() {
    use base64::Engine as _;
    let registry = AuthRegistry::start_basic("reader", SECRET);
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
    let built = Command::new(env!("CARGO_BIN_EXE_rust-image-action"))
        .arg("build")
        .arg(&site)
        .args(["-t", "site:1", "--oci-layout"])
        .arg(&layout)
        .arg("--cache-dir")
        .arg(work.path().join("cache-a"))
        .output()
        .expect("the binary runs");
    assert!(built.status.success(), "{}", stderr(&built));
    let base = format!("{}/private/site:1", registry.addr());
    support::run(support::skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &registry.creds(),
        &format!("oci:{}:1", layout.display()),
        &format!("docker://{base}"),
    ]));

    let context = work.path().join("context");
    std::fs::create_dir_all(&context).expect("context");
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nLABEL derived=yes\n"),
    )
    .expect("Dockerfile");
    let build_with = |docker_config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_rust-image-action"))
            .arg("build")
            .arg(&context)
            .arg("--cache-dir")
            .arg(work.path().join("cache-b"))
            .env("DOCKER_CONFIG", docker_config)
            .output()
            .expect("the binary runs")
    };
    let empty = work.path().join("no-login");
    std::fs::create_dir_all(&empty).expect("config dir");
    let refused = build_with(&empty);
    assert!(
        !refused.status.success(),
        "a private base needs credentials"
    );
    assert!(
        stderr(&refused).contains(registry.addr()),
        "{}",
        stderr(&refused)
    );

    let logged_in = work.path().join("logged-in");
    std::fs::create_dir_all(&logged_in).expect("config dir");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("reader:{SECRET}"));
    std::fs::write(
        logged_in.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.addr()
        ),
    )
    .expect("config.json");
    let pulled = build_with(&logged_in);
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert!(!stderr(&pulled).contains(SECRET), "the secret leaked");

    // The same through the token flow, as ghcr.io serves private images.
    let token = AuthRegistry::start_token(TokenOptions::new("reader", SECRET));
    let base = format!("{}/private/site:1", token.addr());
    support::run(support::skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &token.creds(),
        &format!("oci:{}:1", layout.display()),
        &format!("docker://{base}"),
    ]));
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nLABEL derived=yes\n"),
    )
    .expect("Dockerfile");
    assert!(
        !build_with(&empty).status.success(),
        "the token registry needs credentials"
    );
    std::fs::write(
        logged_in.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            token.addr()
        ),
    )
    .expect("config.json");
    let pulled = build_with(&logged_in);
    assert!(pulled.status.success(), "token pull: {}", stderr(&pulled));
    assert!(!stderr(&pulled).contains(SECRET), "the secret leaked");
}

#[test]
fn pulls_resume_and_retry_through_injected_faults() {
    let registry = Registry::start_open();
    let work = tempfile::tempdir().expect("temp dir");
    context(&work.path().join("context"));
    let direct = format!("{}/pulled/base:1", registry.addr());
    let pushed = push(work.path(), &direct, None, None);
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    for (rate, seed) in [(0.1, 11), (0.3, 5)] {
        let mut config = FaultConfig::new(rate, seed);
        config.methods = vec!["GET".to_string()];
        config.kinds = vec![
            FaultKind::TruncateResponse,
            FaultKind::Reset,
            FaultKind::Status503,
        ];
        let proxy = FaultProxy::start(registry.addr(), config);
        let context = work.path().join(format!("derived-{seed}"));
        std::fs::create_dir_all(&context).expect("context");
        std::fs::write(
            context.join("Dockerfile"),
            format!("FROM {}/pulled/base:1\nLABEL derived=yes\n", proxy.addr()),
        )
        .expect("Dockerfile");
        let tar = work.path().join(format!("derived-{seed}.tar"));
        let built = Command::new(env!("CARGO_BIN_EXE_rust-image-action"))
            .arg("build")
            .arg(&context)
            .arg("--cache-dir")
            .arg(work.path().join(format!("cache-{seed}")))
            .arg("--tar")
            .arg(&tar)
            .output()
            .expect("the binary runs");
        let stats = proxy.stats();
        assert!(
            built.status.success(),
            "pull at fault rate {rate} failed after {} faults: {}",
            stats.faults_total(),
            stderr(&built)
        );
        assert!(stats.faults_total() > 0, "no fault injected at rate {rate}");
        report(&format!(
            "pull at rate {rate} seed {seed}: completed, {} requests, faults {:?}",
            stats.requests, stats.faults
        ));
        let tree = support::image_tree::ImageTree::from_docker_archive(&tar).expect("archive");
        let data = tree.file("/data.bin").expect("the base's file");
        assert_eq!(data.size, 9 << 20, "the layer arrived whole");
    }
}

/// Prints a line for the test log (`cargo test -- --nocapture` shows it).
#[allow(
    clippy::print_stderr,
    reason = "the fault figures are the report of these tests"
)]
fn report(line: &str) {
    eprintln!("{line}");
}

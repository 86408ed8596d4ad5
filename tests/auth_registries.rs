//! Tests of the authenticating test registries, the token server and the fault proxy in
//! `tests/support`, driven by a real client (`skopeo`): the right credentials push and pull,
//! wrong or missing ones are refused, tokens signed by the test server are accepted by
//! Distribution, and copies through the fault proxy survive its faults while it counts them.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;

use serde_json::Value;
use support::auth_registry::AuthRegistry;
use support::fault_proxy::{FaultConfig, FaultKind, FaultProxy};
use support::token_server::{Presented, TokenOptions};
use support::{PushedImage, Registry, busybox_rootfs, push_rootfs_image, run, skopeo};
use tempfile::TempDir;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

/// An open registry holding `test/busybox:1`, the source of the copies.
fn source() -> (Registry, PushedImage, TempDir) {
    let rootfs = tempfile::tempdir().expect("rootfs directory");
    busybox_rootfs(rootfs.path());
    let registry = Registry::start_open();
    let image = push_rootfs_image(&registry, "test/busybox:1", rootfs.path());
    (registry, image, rootfs)
}

/// `skopeo copy` from the open source to `dest` with optional `--dest-creds`, not asserting.
fn copy_to(image: &PushedImage, dest: &str, creds: Option<&str>, retries: u32) -> Output {
    let mut command = skopeo();
    command.args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--retry-times",
        &retries.to_string(),
    ]);
    if let Some(creds) = creds {
        command.args(["--dest-creds", creds]);
    }
    command
        .arg(format!("docker://{}", image.reference))
        .arg(format!("docker://{dest}"));
    command.output().expect("skopeo starts")
}

/// `skopeo inspect --raw` of `reference` with optional `--creds`, not asserting.
fn inspect(reference: &str, creds: Option<&str>) -> Output {
    let mut command = skopeo();
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(creds) = creds {
        command.args(["--creds", creds]);
    }
    command.arg(format!("docker://{reference}"));
    command.output().expect("skopeo starts")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_refused(output: &Output, what: &str) {
    assert!(
        !output.status.success(),
        "{what} should have been refused; stdout:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let message = stderr(output).to_lowercase();
    assert!(
        message.contains("unauthorized")
            || message.contains("401")
            || message.contains("authentication required")
            || message.contains("denied"),
        "{what}: refused, but not for authentication:\n{message}"
    );
}

/// Pulls `reference` into an OCI layout with `skopeo copy` and checks the manifest served is
/// the source's, byte for byte.
fn assert_pulls_same(reference: &str, creds: Option<&str>, expected: &PushedImage) {
    let out = tempfile::tempdir().expect("layout directory");
    let mut command = skopeo();
    command.args(["copy", "--quiet", "--src-tls-verify=false"]);
    if let Some(creds) = creds {
        command.args(["--src-creds", creds]);
    }
    command
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:pulled", out.path().display()));
    run(&mut command);
    let raw = inspect(reference, creds);
    assert!(
        raw.status.success(),
        "inspect {reference}: {}",
        stderr(&raw)
    );
    assert_eq!(
        raw.stdout, expected.manifest,
        "manifest of {reference} differs from the source's"
    );
}

#[test]
fn basic_registry_lets_the_user_in_and_refuses_others() {
    let (_source, image, _rootfs) = source();
    let registry = AuthRegistry::start_basic(USER, PASSWORD);
    let challenge = registry.challenge();
    assert!(
        challenge.starts_with("Basic realm="),
        "challenge of the Basic registry: {challenge}"
    );
    let target = format!("{}/test/busybox:1", registry.addr());

    assert_refused(&copy_to(&image, &target, None, 0), "an anonymous push");
    assert_refused(
        &copy_to(&image, &target, Some(&format!("{USER}:wrong")), 0),
        "a push with a wrong password",
    );
    let pushed = copy_to(&image, &target, Some(&registry.creds()), 0);
    assert!(
        pushed.status.success(),
        "push with the right credentials: {}",
        stderr(&pushed)
    );

    assert_pulls_same(&target, Some(&registry.creds()), &image);
    assert_refused(&inspect(&target, None), "an anonymous pull");
    assert_refused(
        &inspect(&target, Some("mallory:guess")),
        "a pull by an unknown user",
    );
}

#[test]
fn token_registry_trusts_the_test_token_server() {
    let (_source, image, _rootfs) = source();
    let mut options = TokenOptions::new(USER, PASSWORD);
    options.public_repositories = vec!["test/public".to_string()];
    options.pull_only_repositories = vec!["test/readonly".to_string()];
    let registry = AuthRegistry::start_token(options);
    let server = registry.token_server();

    let challenge = registry.challenge();
    let expected = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        server.realm(),
        server.service()
    );
    assert!(
        challenge.starts_with(&expected),
        "challenge of the token registry: {challenge}, expected it to start with {expected}"
    );

    let target = format!("{}/test/busybox:1", registry.addr());
    assert_refused(
        &copy_to(&image, &target, Some(&format!("{USER}:wrong")), 0),
        "a push with a wrong password",
    );
    assert_refused(&copy_to(&image, &target, None, 0), "an anonymous push");
    server.clear_requests();

    // A real push: Distribution accepts the RS256 tokens and finds the key by its `kid`.
    let pushed = copy_to(&image, &target, Some(&registry.creds()), 0);
    assert!(
        pushed.status.success(),
        "push with the right credentials: {}",
        stderr(&pushed)
    );
    let requests = server.requests();
    let push_request = requests
        .iter()
        .find(|r| {
            r.scopes
                .iter()
                .any(|s| s == "repository:test/busybox:pull,push")
        })
        .unwrap_or_else(|| panic!("no token asked for a push scope: {requests:#?}"));
    assert!(
        push_request.had_credentials() && push_request.authenticated,
        "{push_request:#?}"
    );
    assert_eq!(push_request.status, 200);
    assert_eq!(push_request.service.as_deref(), Some("test-registry"));
    assert!(
        !format!("{requests:?}").contains(PASSWORD),
        "the token server recorded the password"
    );

    assert_pulls_same(&target, Some(&registry.creds()), &image);
    assert_refused(
        &inspect(&target, None),
        "an anonymous pull of a private repository",
    );

    // Public repositories: anyone pulls, only the user pushes.
    let public = format!("{}/test/public:1", registry.addr());
    assert_refused(
        &copy_to(&image, &public, None, 0),
        "an anonymous push to a public repository",
    );
    let pushed = copy_to(&image, &public, Some(&registry.creds()), 0);
    assert!(
        pushed.status.success(),
        "push to the public repository: {}",
        stderr(&pushed)
    );
    assert_pulls_same(&public, None, &image);
    let anonymous = server
        .requests()
        .into_iter()
        .rfind(|r| !r.had_credentials())
        .expect("an anonymous token request");
    assert_eq!(
        anonymous.granted,
        vec!["repository:test/public:pull".to_string()]
    );

    // A repository the user may only read.
    let readonly = format!("{}/test/readonly:1", registry.addr());
    assert_refused(
        &copy_to(&image, &readonly, Some(&registry.creds()), 0),
        "a push to a pull-only repository",
    );
}

#[test]
fn token_server_serves_identity_and_password_grants() {
    let (_source, image, _rootfs) = source();
    let registry = AuthRegistry::start_token(TokenOptions::new(USER, PASSWORD));
    let server = registry.token_server();
    let target = format!("{}/test/busybox:1", registry.addr());

    // An identity token (a refresh token) for the refresh-token grant, spoken by hand.
    let form = format!(
        "grant_type=refresh_token&service=test-registry&client_id=tests&\
         scope=repository%3Atest%2Fbusybox%3Apull%2Cpush&refresh_token={}",
        server.identity_token()
    );
    let (status, body) = post(server.addr(), &form);
    assert_eq!(status, 200, "refresh-token grant: {body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON answer");
    let token = answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let requests = server.requests();
    let last = requests.last().expect("the grant was recorded");
    assert_eq!(last.presented, Presented::RefreshToken, "{last:#?}");
    assert_eq!(
        last.granted,
        vec!["repository:test/busybox:pull,push".to_string()]
    );

    // Distribution takes that token: push with it as a registry token.
    let mut command = skopeo();
    command
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg("--dest-registry-token")
        .arg(&token)
        .arg(format!("docker://{}", image.reference))
        .arg(format!("docker://{target}"));
    let copied = command.output().expect("skopeo starts");
    assert!(
        copied.status.success(),
        "push with a token from the refresh-token grant: {}",
        stderr(&copied)
    );

    // The password grant, spoken by hand, answers an access token and a refresh token.
    let form = format!(
        "grant_type=password&service=test-registry&client_id=tests&access_type=offline&\
         scope=repository%3Atest%2Fbusybox%3Apull&username={USER}&password={}",
        PASSWORD.replace(' ', "+")
    );
    let (status, body) = post(server.addr(), &form);
    assert_eq!(status, 200, "password grant: {body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON answer");
    let token = answer["access_token"].as_str().expect("access_token");
    assert!(answer["refresh_token"].as_str().is_some(), "{answer}");
    let header: Value = serde_json::from_slice(
        &support::http_wire::base64_decode(token.split('.').next().expect("JWT header"))
            .expect("base64url header"),
    )
    .expect("JSON header");
    assert_eq!(header["kid"].as_str(), Some(server.key_id()));
    assert_eq!(server.key_id().len(), 59, "12 groups of 4 joined by `:`");

    let (status, body) = post(
        server.addr(),
        "grant_type=password&service=test-registry&username=alice&password=nope",
    );
    assert_eq!(status, 401, "wrong password grant: {body}");
}

/// A form `POST /token` to the token server at `addr`: status and body.
fn post(addr: &str, form: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("token server answers");
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Copies `image` to `dest` through a fault proxy, starting skopeo again (up to `attempts`
/// times) when it gives up: skopeo's own `--retry-times` does not treat every broken
/// connection as retryable. Returns the last run's output.
fn copy_through_faults(image: &PushedImage, dest: &str, attempts: u32) -> Output {
    let mut last = copy_to(image, dest, None, 8);
    for _ in 1..attempts {
        if last.status.success() {
            break;
        }
        last = copy_to(image, dest, None, 8);
    }
    last
}

fn layer_size(image: &PushedImage) -> u64 {
    let manifest: Value = serde_json::from_slice(&image.manifest).expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|layer| layer["size"].as_u64().expect("layer size"))
        .sum()
}

#[test]
fn fault_proxy_counts_and_survives_a_flaky_copy() {
    let (_source, image, _rootfs) = source();
    let target = Registry::start_open();
    let proxy = FaultProxy::start(target.addr(), FaultConfig::new(0.1, 7));
    let dest = format!("{}/test/flaky:1", proxy.addr());
    let copied = copy_through_faults(&image, &dest, 5);
    let stats = proxy.stats();
    assert!(
        copied.status.success(),
        "copy through the proxy at rate 0.1 failed even with retries: {}\nproxy: {stats:#?}",
        stderr(&copied)
    );
    proxy.set_config(FaultConfig::none());
    assert_pulls_same(&format!("{}/test/flaky:1", target.addr()), None, &image);
    assert!(stats.requests >= 4, "{stats:#?}");
    let sent = stats.bytes_upstream("PATCH") + stats.bytes_upstream("PUT");
    assert!(
        sent >= layer_size(&image),
        "the proxy counted {sent} body bytes, less than the layer's {}: {stats:#?}",
        layer_size(&image)
    );
}

#[test]
fn fault_proxy_injects_every_kind() {
    let (_source, image, _rootfs) = source();
    for kind in FaultKind::ALL {
        let target = Registry::start_open();
        let mut config = FaultConfig::new(1.0, 1);
        config.kinds = vec![kind];
        config.max_faults = Some(2);
        config.max_faults_per_request = 1;
        if kind == FaultKind::Reset {
            // Cut the blob upload itself.
            config.methods = vec!["PATCH".to_string(), "PUT".to_string()];
        }
        let proxy = FaultProxy::start(target.addr(), config);
        let dest = format!("{}/test/faulty:1", proxy.addr());
        let copied = copy_through_faults(&image, &dest, 4);
        let stats = proxy.stats();
        assert!(
            copied.status.success(),
            "copy through the proxy injecting {kind:?} failed: {}\nproxy: {stats:#?}",
            stderr(&copied)
        );
        assert!(
            stats.faults_of(kind) >= 1,
            "no {kind:?} was injected: {stats:#?}"
        );
        assert_eq!(stats.faults_total(), stats.faults_of(kind), "{stats:#?}");
        let hit: Vec<_> = stats.log.iter().filter(|r| r.fault.is_some()).collect();
        assert_eq!(hit.len() as u64, stats.faults_total(), "{stats:#?}");
        drop(proxy);
        assert_pulls_same(&format!("{}/test/faulty:1", target.addr()), None, &image);
    }
}

//! Finding credentials for a registry: explicit ones, Docker's `config.json` (credential
//! helpers, the credential store, `auths` entries), `GITHUB_TOKEN` for ghcr.io, else anonymous.
//!
//! Secrets are wrapped in [`Secret`] as soon as they are read so that no `Debug` or `Display`
//! of a credential, a source or an error can show them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::registry::auth::AuthError;

/// The `config.json` key Docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// How long a credential helper may take: helpers that prompt (a locked keychain) would
/// otherwise hang the build forever.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// A secret string: Debug and Display print `***`; `expose()` gives the value. Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value, for putting it on the wire. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How to authenticate to a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: anonymous tokens and requests.
    Anonymous,
    /// A user name and a password or personal access token.
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: Secret,
    },
    /// config.json `identitytoken`: an OAuth2 refresh token for the token endpoint.
    IdentityToken {
        /// The user name, if the config names one (not needed by the token endpoint).
        username: String,
        /// The refresh token.
        token: Secret,
    },
}

/// A credential and where it came from, for messages (never the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSource {
    /// The credential.
    pub credential: Credential,
    /// Where it came from, e.g. ``the `auths` entry `ghcr.io` in `/home/u/.docker/config.json` ``.
    pub origin: String,
}

impl CredentialSource {
    /// No credentials.
    pub fn anonymous() -> CredentialSource {
        CredentialSource {
            credential: Credential::Anonymous,
            origin: "no credentials".into(),
        }
    }
}

/// Explicit credentials given on the command line or by the Action.
#[derive(Clone, Debug)]
pub struct ExplicitCredentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: Secret,
}

/// The parts of Docker's `config.json` that concern credentials.
#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

/// One `auths` entry. Not `Debug`: it holds secrets as plain strings until they are wrapped.
#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a credential helper prints for `get`. Not `Debug` for the same reason.
#[derive(Deserialize)]
struct HelperResponse {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Picks credentials for `registry` (`host[:port]` as in `ImageRef::registry`; `docker.io` means
/// Docker Hub, whose config.json key is `https://index.docker.io/v1/`): explicit first, then
/// Docker's config.json (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`):
/// `credHelpers[registry]`, then `credsStore`, then `auths[registry]` (`auth` base64
/// user:password, `identitytoken`), then for `ghcr.io` the `GITHUB_TOKEN` environment
/// variable with `GITHUB_ACTOR` (or `x-access-token`) as user name, else anonymous.
/// `env` reads environment variables (injectable for tests); credential helpers are looked up
/// in `env("PATH")`. Explicit credentials with an empty password count as none, because the
/// Action passes empty inputs when the user gave none.
pub fn resolve_credentials(
    registry: &str,
    explicit: Option<ExplicitCredentials>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CredentialSource, AuthError> {
    if let Some(explicit) = explicit.filter(|e| !e.password.expose().is_empty()) {
        return Ok(CredentialSource {
            credential: Credential::Basic {
                username: explicit.username,
                password: explicit.password,
            },
            origin: "the explicitly given user name and password".into(),
        });
    }
    let wanted = normalize_key(registry);
    let server = server_url(registry);
    let search_path = env("PATH");
    if let Some(path) = config_path(env) {
        let config = read_config(&path)?;
        let shown = path.display();
        if let Some(helper) = find_entry(&config.cred_helpers, registry, &wanted) {
            let found = credential_from_helper_in(helper, &server, search_path.as_deref())?;
            if let Some(credential) = found {
                let origin = format!(
                    "credential helper `docker-credential-{helper}` (`credHelpers` in `{shown}`)"
                );
                return Ok(CredentialSource { credential, origin });
            }
        }
        if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            let found = credential_from_helper_in(store, &server, search_path.as_deref())?;
            if let Some(credential) = found {
                let origin = format!(
                    "credential helper `docker-credential-{store}` (`credsStore` in `{shown}`)"
                );
                return Ok(CredentialSource { credential, origin });
            }
        }
        if let Some((key, entry)) = find_auth(&config.auths, registry, &wanted)
            && let Some(credential) = entry_credential(entry, &path, key)?
        {
            let origin = format!("the `auths` entry `{key}` in `{shown}`");
            return Ok(CredentialSource { credential, origin });
        }
    }
    if wanted == "ghcr.io"
        && let Some(token) = env("GITHUB_TOKEN").filter(|t| !t.is_empty())
    {
        {
            let username = env("GITHUB_ACTOR")
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "x-access-token".into());
            return Ok(CredentialSource {
                credential: Credential::Basic {
                    username,
                    password: Secret::new(token),
                },
                origin: "the `GITHUB_TOKEN` environment variable".into(),
            });
        }
    }
    Ok(CredentialSource::anonymous())
}

/// Runs `docker-credential-<helper> get` with the server URL on stdin and parses its JSON.
/// The helper is looked up in the process's `PATH`.
pub fn credential_from_helper(helper: &str, server: &str) -> Result<Option<Credential>, AuthError> {
    credential_from_helper_in(helper, server, None)
}

/// Like [`credential_from_helper`], but looks the helper up in `search_path` (a `PATH`-style
/// list) when given, so that callers and tests choose the helpers without touching the
/// process environment.
pub fn credential_from_helper_in(
    helper: &str,
    server: &str,
    search_path: Option<&str>,
) -> Result<Option<Credential>, AuthError> {
    let name = format!("docker-credential-{helper}");
    let fail = |reason: String| AuthError::Helper {
        helper: name.clone(),
        reason,
    };
    // A helper name with a path separator would run an arbitrary program named by config.json.
    if helper.is_empty() || helper.contains('/') || helper.contains('\\') {
        return Err(fail("the helper name is not a plain program name".into()));
    }
    let program = match search_path {
        Some(dirs) => find_program(&name, dirs)
            .ok_or_else(|| fail(format!("`{name}` was not found in `PATH`")))?,
        None => PathBuf::from(&name),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not run `{}`: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin breaks the pipe; its exit status tells
        // the real story, so a write error is not reported here.
        let _ = stdin.write_all(format!("{server}\n").as_bytes());
    }
    let stdout = child.stdout.take().map(read_in_thread);
    let stderr = child.stderr.take().map(read_in_thread);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "no answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(format!("waiting for it failed: {e}"))),
        }
    };
    let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if !status.success() {
        // Helpers report "no credentials for this server" with a failure status and this
        // message on stdout; that is not an error, just nothing found.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "it failed ({status}){}",
            helper_message(&stderr, &stdout)
        )));
    }
    let response: HelperResponse = serde_json::from_str(stdout.trim())
        .map_err(|e| fail(format!("its output is not the expected JSON: {e}")))?;
    if response.secret.is_empty() {
        return Ok(None);
    }
    let secret = Secret::new(response.secret);
    // Docker's convention: the user name `<token>` marks the secret as an identity token.
    Ok(Some(if response.username == "<token>" {
        Credential::IdentityToken {
            username: String::new(),
            token: secret,
        }
    } else {
        Credential::Basic {
            username: response.username,
            password: secret,
        }
    }))
}

/// Reads a pipe to the end on a thread, so a chatty helper cannot block on a full pipe while
/// the caller waits for it to exit.
fn read_in_thread<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A short excerpt of what a failing helper said. Output that looks like JSON is left out: it
/// may be a credential the helper printed before failing.
fn helper_message(stderr: &str, stdout: &str) -> String {
    let text = [stderr.trim(), stdout.trim()]
        .into_iter()
        .find(|t| !t.is_empty() && !t.starts_with('{'))
        .unwrap_or("");
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return String::new();
    }
    let short: String = line.chars().take(200).collect();
    format!(": {short}")
}

/// The first `name` in the directories of `search_path` that is a file.
fn find_program(name: &str, search_path: &str) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    let home = env("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".docker").join("config.json"))
}

/// Reads config.json; a missing file is an empty config (most machines have none).
fn read_config(path: &Path) -> Result<DockerConfig, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DockerConfig::default()),
        Err(e) => {
            return Err(AuthError::ConfigRead {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    serde_json::from_str(&text).map_err(|e| AuthError::ConfigParse {
        path: path.to_path_buf(),
        source: e,
    })
}

/// The server URL given to credential helpers: Docker Hub's historical key, else the host.
fn server_url(registry: &str) -> String {
    if normalize_key(registry) == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Reduces a config.json key (`host`, `https://host`, `https://host/v1/`) to its host, with
/// Docker Hub's several names folded into `docker.io`.
fn normalize_key(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

/// The value for `registry` in a map keyed like config.json: an exact key first, then
/// Docker Hub's key, then any key naming the same host.
fn find_entry<'a>(
    map: &'a BTreeMap<String, String>,
    registry: &str,
    wanted: &str,
) -> Option<&'a str> {
    let exact = map.get(registry).or_else(|| {
        (wanted == "docker.io")
            .then(|| map.get(DOCKER_HUB_KEY))
            .flatten()
    });
    exact
        .or_else(|| {
            map.iter()
                .find(|(k, _)| normalize_key(k) == wanted)
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

/// Like [`find_entry`] for `auths`, also giving the key (for the origin); entries with no
/// credential in them (left by `docker login` with a credential store) are skipped.
fn find_auth<'a>(
    auths: &'a BTreeMap<String, AuthEntry>,
    registry: &str,
    wanted: &str,
) -> Option<(&'a str, &'a AuthEntry)> {
    let usable = |e: &AuthEntry| {
        [&e.auth, &e.identitytoken, &e.password]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()))
    };
    let mut keys: Vec<&String> = Vec::new();
    keys.extend(auths.get_key_value(registry).map(|(k, _)| k));
    if wanted == "docker.io" {
        keys.extend(auths.get_key_value(DOCKER_HUB_KEY).map(|(k, _)| k));
    }
    keys.extend(auths.keys().filter(|k| normalize_key(k) == wanted));
    keys.into_iter()
        .filter_map(|k| auths.get(k).map(|e| (k.as_str(), e)))
        .find(|(_, e)| usable(e))
}

/// The credential in an `auths` entry: an identity token wins over a password, as in Docker.
fn entry_credential(
    entry: &AuthEntry,
    path: &Path,
    key: &str,
) -> Result<Option<Credential>, AuthError> {
    let invalid = |reason: &str| AuthError::ConfigEntry {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let (mut username, mut password) = (entry.username.clone().unwrap_or_default(), None);
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| invalid("`auth` is not valid base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("`auth` is not UTF-8"))?;
        // Split at the first colon only: passwords and tokens may contain colons.
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| invalid("`auth` is not `user:password`"))?;
        username = user.to_string();
        password = Some(pass.to_string());
    } else if let Some(pass) = entry.password.as_deref().filter(|p| !p.is_empty()) {
        password = Some(pass.to_string());
    }
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken {
            username,
            token: Secret::new(token.to_string()),
        }));
    }
    Ok(password.map(|p| Credential::Basic {
        username,
        password: Secret::new(p),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const SECRET: &str = "hunter2:with:colons-S3CRET";

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// A temp dir with `config.json` holding `config`, and an env reading `vars` plus
    /// `DOCKER_CONFIG` pointing there and `PATH` at its `bin` directory.
    struct Fixture {
        dir: tempfile::TempDir,
        vars: HashMap<String, String>,
    }

    impl Fixture {
        fn new(config: &str) -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("config.json"), config).expect("write config");
            std::fs::create_dir(dir.path().join("bin")).expect("bin");
            let mut vars = HashMap::new();
            vars.insert("DOCKER_CONFIG".into(), dir.path().display().to_string());
            vars.insert("PATH".into(), dir.path().join("bin").display().to_string());
            Fixture { dir, vars }
        }

        /// Installs `docker-credential-test` that logs its stdin and runs `script`.
        fn helper(&self, script: &str) {
            let path = self.dir.path().join("bin/docker-credential-test");
            let log = self.dir.path().join("helper.log");
            let text = format!(
                "#!/bin/sh\nread server\necho \"$1 $server\" >> '{}'\n{script}\n",
                log.display()
            );
            std::fs::write(&path, text).expect("write helper");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }

        fn helper_log(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("helper.log")).unwrap_or_default()
        }

        fn resolve(&self, registry: &str) -> Result<CredentialSource, AuthError> {
            let vars = self.vars.clone();
            resolve_credentials(registry, None, &move |name| vars.get(name).cloned())
        }
    }

    fn basic(source: &CredentialSource) -> (&str, &str) {
        match &source.credential {
            Credential::Basic { username, password } => (username, password.expose()),
            other => panic!("expected basic, got {other:?}"),
        }
    }

    fn assert_clean(text: &str) {
        assert!(!text.contains("S3CRET"), "{text}");
    }

    #[test]
    fn auths_keys_in_all_spellings() {
        let auth = b64(&format!("alice:{SECRET}"));
        for key in [
            "ghcr.io",
            "https://ghcr.io",
            "https://ghcr.io/v1/",
            "http://GHCR.io/",
        ] {
            let fixture = Fixture::new(&format!(r#"{{"auths":{{"{key}":{{"auth":"{auth}"}}}}}}"#));
            let source = fixture.resolve("ghcr.io").expect("resolve");
            assert_eq!(basic(&source), ("alice", SECRET), "key {key}");
            assert!(
                source.origin.contains(&format!("`{key}`")),
                "{}",
                source.origin
            );
            assert_clean(&format!("{source:?}"));
        }
    }

    #[test]
    fn docker_hub_uses_its_historical_key() {
        let auth = b64("bob:pw-S3CRET");
        let fixture = Fixture::new(&format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{}}}}}}"#
        ));
        assert_eq!(
            basic(&fixture.resolve("docker.io").expect("hub")),
            ("bob", "pw-S3CRET")
        );
        // The empty `ghcr.io` entry holds nothing, so ghcr.io stays anonymous.
        let ghcr = fixture.resolve("ghcr.io").expect("ghcr");
        assert_eq!(ghcr.credential, Credential::Anonymous);
    }

    #[test]
    fn identity_token_with_username() {
        let fixture = Fixture::new(
            r#"{"auths":{"reg.example":{"username":"carol","identitytoken":"id-S3CRET"}}}"#,
        );
        let source = fixture.resolve("reg.example").expect("resolve");
        match &source.credential {
            Credential::IdentityToken { username, token } => {
                assert_eq!((username.as_str(), token.expose()), ("carol", "id-S3CRET"));
            }
            other => panic!("expected identity token, got {other:?}"),
        }
        assert_clean(&format!("{source:?}"));
    }

    #[test]
    fn explicit_wins_and_empty_explicit_is_ignored() {
        let fixture = Fixture::new(&format!(
            r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#,
            b64("c:d")
        ));
        let vars = fixture.vars.clone();
        let env = move |name: &str| vars.get(name).cloned();
        let explicit = ExplicitCredentials {
            username: "u".into(),
            password: Secret::new("p-S3CRET"),
        };
        let source = resolve_credentials("r.io", Some(explicit), &env).expect("explicit");
        assert_eq!(basic(&source), ("u", "p-S3CRET"));
        let empty = ExplicitCredentials {
            username: "u".into(),
            password: Secret::new(String::new()),
        };
        let source = resolve_credentials("r.io", Some(empty), &env).expect("config");
        assert_eq!(basic(&source), ("c", "d"));
    }

    #[test]
    fn github_token_for_ghcr_only() {
        let mut fixture = Fixture::new("{}");
        fixture
            .vars
            .insert("GITHUB_TOKEN".into(), "ghs_S3CRET".into());
        let source = fixture.resolve("ghcr.io").expect("ghcr");
        assert_eq!(basic(&source), ("x-access-token", "ghs_S3CRET"));
        assert!(source.origin.contains("GITHUB_TOKEN"));
        fixture.vars.insert("GITHUB_ACTOR".into(), "octocat".into());
        assert_eq!(
            basic(&fixture.resolve("ghcr.io").expect("ghcr")),
            ("octocat", "ghs_S3CRET")
        );
        assert_eq!(
            fixture.resolve("docker.io").expect("hub").credential,
            Credential::Anonymous
        );
    }

    #[test]
    fn no_config_means_anonymous_and_home_is_the_fallback() {
        let home = tempfile::tempdir().expect("home");
        let vars: HashMap<String, String> =
            [("HOME".to_string(), home.path().display().to_string())].into();
        let env = |name: &str| vars.get(name).cloned();
        let source = resolve_credentials("ghcr.io", None, &env).expect("none");
        assert_eq!(source.credential, Credential::Anonymous);
        std::fs::create_dir(home.path().join(".docker")).expect("mkdir");
        let config = format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#, b64("h:i"));
        std::fs::write(home.path().join(".docker/config.json"), config).expect("write");
        assert_eq!(
            basic(&resolve_credentials("ghcr.io", None, &env).expect("home")),
            ("h", "i")
        );
    }

    #[test]
    fn invalid_config_names_the_file() {
        let fixture = Fixture::new("{\"auths\": [");
        let error = fixture.resolve("ghcr.io").expect_err("invalid");
        assert!(matches!(error, AuthError::ConfigParse { .. }), "{error:?}");
        assert!(error.to_string().contains("config.json`"), "{error}");
        let fixture = Fixture::new(r#"{"auths":{"ghcr.io":{"auth":"!!notbase64-S3CRET"}}}"#);
        let error = fixture.resolve("ghcr.io").expect_err("bad base64");
        assert!(error.to_string().contains("`ghcr.io`") && error.to_string().contains("base64"));
        assert_clean(&format!("{error} {error:?}"));
        let fixture = Fixture::new(&format!(
            r#"{{"auths":{{"r":{{"auth":"{}"}}}}}}"#,
            b64("S3CRET")
        ));
        let error = fixture.resolve("r").expect_err("no colon");
        assert_clean(&format!("{error} {error:?}"));
        // A directory where the file should be cannot be read.
        let fixture = Fixture::new("{}");
        std::fs::remove_file(fixture.dir.path().join("config.json")).expect("rm");
        std::fs::create_dir(fixture.dir.path().join("config.json")).expect("mkdir");
        let error = fixture.resolve("r").expect_err("unreadable");
        assert!(matches!(error, AuthError::ConfigRead { .. }), "{error:?}");
    }

    #[test]
    fn credential_helpers_are_run_with_the_server_url() {
        let fixture = Fixture::new(
            r#"{"credHelpers":{"ghcr.io":"test"},"auths":{"ghcr.io":{"auth":"eDp5"}}}"#,
        );
        fixture.helper(&format!(
            r#"echo '{{"ServerURL":"ghcr.io","Username":"dave","Secret":"{SECRET}"}}'"#
        ));
        let source = fixture.resolve("ghcr.io").expect("helper");
        assert_eq!(basic(&source), ("dave", SECRET));
        assert!(
            source.origin.contains("docker-credential-test"),
            "{}",
            source.origin
        );
        assert!(source.origin.contains("credHelpers"), "{}", source.origin);
        assert_eq!(fixture.helper_log(), "get ghcr.io\n");
    }

    #[test]
    fn creds_store_for_docker_hub_and_identity_tokens() {
        let fixture = Fixture::new(r#"{"credsStore":"test"}"#);
        fixture.helper(r#"echo '{"ServerURL":"x","Username":"<token>","Secret":"tok-S3CRET"}'"#);
        let source = fixture.resolve("docker.io").expect("store");
        assert!(
            matches!(&source.credential, Credential::IdentityToken { token, .. } if token.expose() == "tok-S3CRET"),
            "{source:?}"
        );
        assert!(source.origin.contains("credsStore"), "{}", source.origin);
        assert_eq!(fixture.helper_log(), "get https://index.docker.io/v1/\n");
    }

    #[test]
    fn helper_without_credentials_falls_through_to_auths() {
        let fixture = Fixture::new(&format!(
            r#"{{"credsStore":"test","auths":{{"r.io":{{"auth":"{}"}}}}}}"#,
            b64("e:f")
        ));
        fixture.helper("echo 'credentials not found in native keychain'; exit 1");
        assert_eq!(
            basic(&fixture.resolve("r.io").expect("fallback")),
            ("e", "f")
        );
    }

    #[test]
    fn failing_helper_names_the_helper_not_the_secret() {
        let fixture = Fixture::new(r#"{"credsStore":"test"}"#);
        fixture.helper(&format!(
            "echo '{{\"Secret\":\"{SECRET}\"}}'; echo 'keychain locked' >&2; exit 3"
        ));
        let error = fixture.resolve("r.io").expect_err("failure");
        let text = format!("{error} {error:?}");
        assert!(
            text.contains("`docker-credential-test`") && text.contains("keychain locked"),
            "{text}"
        );
        assert_clean(&text);
        fixture.helper("echo 'not json'");
        let error = fixture.resolve("r.io").expect_err("bad output");
        assert!(
            error.to_string().contains("not the expected JSON"),
            "{error}"
        );
    }

    #[test]
    fn missing_or_suspicious_helper_is_an_error() {
        let fixture = Fixture::new(r#"{"credsStore":"absent"}"#);
        let error = fixture.resolve("r.io").expect_err("missing");
        assert!(
            error
                .to_string()
                .contains("`docker-credential-absent` was not found"),
            "{error}"
        );
        let fixture = Fixture::new(r#"{"credHelpers":{"r.io":"../evil"}}"#);
        let error = fixture.resolve("r.io").expect_err("path");
        assert!(
            error.to_string().contains("not a plain program name"),
            "{error}"
        );
    }

    #[test]
    fn key_normalization() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("registry-1.docker.io"), "docker.io");
        assert_eq!(normalize_key("localhost:5000"), "localhost:5000");
        assert_eq!(
            normalize_key("https://Reg.Example:443/v2/"),
            "reg.example:443"
        );
        assert_eq!(server_url("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_url("ghcr.io"), "ghcr.io");
    }
}

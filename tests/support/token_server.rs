//! A token server for the tests, on 127.0.0.1, speaking the Docker registry token protocol
//! that Distribution's `auth.token` (and ghcr.io) use: `GET /token?service=S&scope=...` with
//! optional Basic credentials, and the OAuth2 form `POST /token` with
//! `grant_type=password` or `grant_type=refresh_token` (identity tokens).
//!
//! At start it makes an RSA key and a self-signed certificate with `openssl`; the
//! certificate is the registry's `rootcertbundle`. Tokens are RS256 JWTs signed by
//! `openssl dgst -sha256 -sign` whose header names the key by its libtrust key ID, which is
//! how Distribution finds the verifying key among the bundle's certificates.
//!
//! The configured user gets every action asked for (only `pull` on repositories listed as
//! pull-only); anonymous requests get `pull` on repositories listed as public, nothing
//! else; wrong credentials get 401. Every request is recorded (never a password or token)
//! for assertions.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use super::http_wire::{
    Framing, Head, base32_encode, base64_decode, base64url_encode, form_decode, read_head,
    request_framing,
};
use super::tools::{require_tool, run};

/// How long a client connection may sit idle before the server drops it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the token server accepts and grants.
#[derive(Clone, Debug)]
pub struct TokenOptions {
    /// The one user that may log in.
    pub username: String,
    /// That user's password (also what `grant_type=password` checks).
    pub password: String,
    /// The `service` the tokens are for (the registry's `auth.token.service`).
    pub service: String,
    /// The `iss` claim (the registry's `auth.token.issuer`).
    pub issuer: String,
    /// Repositories anonymous clients may pull.
    pub public_repositories: Vec<String>,
    /// Repositories the user may pull but not push (to provoke "denied" answers).
    pub pull_only_repositories: Vec<String>,
    /// Seconds a token lives (`expires_in` and the `exp` claim).
    pub expires_in: u64,
    /// Answers `GET /token` with only a `token` field and no `expires_in`, as ghcr.io does,
    /// instead of `token`, `access_token`, `expires_in` and `issued_at` as Docker Hub does.
    pub ghcr_style: bool,
}

impl TokenOptions {
    /// Options for `username`/`password`, service `test-registry`, issuer
    /// `test-token-issuer`, no public repositories, tokens living 300 s.
    pub fn new(username: &str, password: &str) -> TokenOptions {
        TokenOptions {
            username: username.to_string(),
            password: password.to_string(),
            service: "test-registry".to_string(),
            issuer: "test-token-issuer".to_string(),
            public_repositories: Vec::new(),
            pull_only_repositories: Vec::new(),
            expires_in: 300,
            ghcr_style: false,
        }
    }
}

/// How a token request presented itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// No credentials: an anonymous request.
    Nothing,
    /// `Authorization: Basic` on a `GET`, for this user name.
    Basic { username: String },
    /// `grant_type=password` on a `POST`, for this user name.
    Password { username: String },
    /// `grant_type=refresh_token` on a `POST`.
    RefreshToken,
    /// Something else (an unknown grant type or authorization scheme).
    Other(String),
}

/// One request the token server answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path without the query (`/token`).
    pub path: String,
    /// The `service` parameter, if given.
    pub service: Option<String>,
    /// Every `scope` asked for, in order (repeated parameters, and space-separated ones in a
    /// form, are split).
    pub scopes: Vec<String>,
    /// What credentials came with it.
    pub presented: Presented,
    /// Whether they were accepted (false for anonymous requests).
    pub authenticated: bool,
    /// The status answered.
    pub status: u16,
    /// The granted access, as scopes (`repository:NAME:pull,push`); empty ones left out.
    pub granted: Vec<String>,
}

impl TokenRequest {
    /// Whether any credentials came with the request.
    pub fn had_credentials(&self) -> bool {
        self.presented != Presented::Nothing
    }
}

struct State {
    options: TokenOptions,
    requests: Vec<TokenRequest>,
    refresh_tokens: HashMap<String, String>,
    issued: u64,
    expired_claims: bool,
}

struct Shared {
    state: Mutex<State>,
    key: PathBuf,
    key_id: String,
    openssl: PathBuf,
    stopping: AtomicBool,
    connections: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running token server; stopped on drop.
pub struct TokenServer {
    shared: Arc<Shared>,
    addr: String,
    accept: Option<JoinHandle<()>>,
    dir: TempDir,
}

impl TokenServer {
    /// Makes the key and certificate and starts serving on a free loopback port.
    pub fn start(options: TokenOptions) -> TokenServer {
        let openssl = require_tool("openssl");
        let dir = tempfile::Builder::new()
            .prefix("token-server-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("failed to create the token server directory: {e}"));
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let public = dir.path().join("public.der");
        run(Command::new(&openssl)
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=rust-image-action test token issuer"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        run(Command::new(&openssl)
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public));
        let der = std::fs::read(&public)
            .unwrap_or_else(|e| panic!("failed to read `{}`: {e}", public.display()));
        let key_id = libtrust_key_id(&der);

        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("failed to bind the token server's port: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("failed to read the token server's address: {e}"))
            .to_string();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                options,
                requests: Vec::new(),
                refresh_tokens: HashMap::new(),
                issued: 0,
                expired_claims: false,
            }),
            key,
            key_id,
            openssl,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("token-server".to_string())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .unwrap_or_else(|e| panic!("failed to start the token server thread: {e}"));
        TokenServer {
            shared,
            addr,
            accept: Some(accept),
            dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The realm registries send clients to: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The `service` of the tokens.
    pub fn service(&self) -> String {
        self.shared.state().options.service.clone()
    }

    /// The `iss` of the tokens.
    pub fn issuer(&self) -> String {
        self.shared.state().options.issuer.clone()
    }

    /// The PEM certificate of the signing key (the registry's `rootcertbundle`).
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The libtrust key ID tokens carry as `kid`.
    pub fn key_id(&self) -> &str {
        &self.shared.key_id
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.state().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// Makes tokens issued from now on live `seconds` (both `expires_in` and `exp`).
    /// Distribution accepts a token up to 60 s past its `exp`; see [`Self::issue_expired`].
    pub fn set_expires_in(&self, seconds: u64) {
        self.shared.state().options.expires_in = seconds;
    }

    /// Makes tokens issued from now on carry an `exp` two minutes in the past (beyond
    /// Distribution's 60 s leeway) while still announcing the configured `expires_in`, so
    /// the registry refuses them with 401: for testing a client's retry with a new token.
    pub fn issue_expired(&self, expired: bool) {
        self.shared.state().expired_claims = expired;
    }

    /// Marks `repository` as pullable by anyone from now on.
    pub fn make_public(&self, repository: &str) {
        self.shared
            .state()
            .options
            .public_repositories
            .push(repository.to_string());
    }

    /// An identity token (OAuth2 refresh token) for the configured user, as `docker login`
    /// stores in config.json `identitytoken`; valid for `grant_type=refresh_token`.
    pub fn identity_token(&self) -> String {
        let mut state = self.shared.state();
        let user = state.options.username.clone();
        new_refresh_token(&mut state, &user)
    }

    /// A token signed by this server granting `access` (`(repository, actions)`) to
    /// `subject`, for tests that talk to the registry directly.
    pub fn sign_token(&self, subject: &str, access: &[(&str, &[&str])]) -> String {
        let grants: Vec<Grant> = access
            .iter()
            .map(|(name, actions)| Grant {
                kind: "repository".to_string(),
                name: name.to_string(),
                actions: actions.iter().map(|a| a.to_string()).collect(),
            })
            .collect();
        let (expires_in, expired, issuer, service, jti) = {
            let mut state = self.shared.state();
            state.issued += 1;
            (
                state.options.expires_in,
                state.expired_claims,
                state.options.issuer.clone(),
                state.options.service.clone(),
                state.issued,
            )
        };
        sign_jwt(
            &self.shared,
            &Claims {
                issuer,
                subject: subject.to_string(),
                audience: service,
                expires_in,
                expired,
                jti,
                grants,
            },
        )
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the blocking accept.
        TcpStream::connect(&self.addr).ok();
        if let Some(accept) = self.accept.take() {
            accept.join().ok();
        }
        let connections = std::mem::take(
            &mut *self
                .shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (stream, handle) in connections {
            stream.shutdown(Shutdown::Both).ok();
            handle.join().ok();
        }
    }
}

/// The libtrust key ID of a DER-encoded (SubjectPublicKeyInfo) public key: the first 240
/// bits of its SHA-256, base32, in twelve groups of four joined by `:`.
pub fn libtrust_key_id(public_key_der: &[u8]) -> String {
    let hash = Sha256::digest(public_key_der);
    let encoded = base32_encode(&hash[..30]);
    let groups: Vec<&str> = (0..12).map(|i| &encoded[i * 4..i * 4 + 4]).collect();
    groups.join(":")
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(handle_stream) = stream.try_clone() else {
            continue;
        };
        let conn_shared = Arc::clone(shared);
        let Ok(handle) = thread::Builder::new()
            .name("token-server-conn".to_string())
            .spawn(move || serve(handle_stream, &conn_shared))
        else {
            continue;
        };
        let mut connections = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
        // Finished connections are reaped as new ones arrive.
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *connections)
            .into_iter()
            .partition(|(_, h)| h.is_finished());
        for (_, h) in done {
            h.join().ok();
        }
        *connections = live;
        connections.push((stream, handle));
    }
}

/// Answers one request and closes the connection (`Connection: close`).
fn serve(stream: TcpStream, shared: &Shared) {
    stream.set_read_timeout(Some(IDLE_TIMEOUT)).ok();
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let Ok(Some(head)) = read_head(&mut reader) else {
        return;
    };
    let mut body = Vec::new();
    match request_framing(&head) {
        Framing::Length(n) => {
            if (&mut reader).take(n).read_to_end(&mut body).is_err() {
                return;
            }
        }
        Framing::Chunked => {
            let mut sink = Vec::new();
            if super::http_wire::copy_body(&mut reader, &mut sink, Framing::Chunked, None).is_err()
            {
                return;
            }
            body = dechunk(&sink);
        }
        Framing::Empty | Framing::UntilClose => {}
    }
    let (status, response) = answer(shared, &head, &body);
    let text = serde_json::to_vec(&response).unwrap_or_default();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    if status == 401 {
        out.push_str("WWW-Authenticate: Basic realm=\"test token server\"\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&text);
    writer.write_all(&bytes).ok();
    writer.flush().ok();
    writer.shutdown(Shutdown::Both).ok();
}

fn dechunk(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = wire;
    while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..pos]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        rest = &rest[pos + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
    out
}

fn error(code: &str, message: &str) -> Value {
    json!({ "errors": [{ "code": code, "message": message }] , "error": code, "error_description": message })
}

fn answer(shared: &Shared, head: &Head, body: &[u8]) -> (u16, Value) {
    let method = head.first_word().to_ascii_uppercase();
    let target = head.second_word().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params = form_decode(query);
    if method == "POST" {
        params.extend(form_decode(&String::from_utf8_lossy(body)));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|scope| !scope.is_empty())
        .collect();
    let service = param("service");
    let mut record = TokenRequest {
        method: method.clone(),
        path: path.to_string(),
        service: service.clone(),
        scopes: scopes.clone(),
        presented: Presented::Nothing,
        authenticated: false,
        status: 0,
        granted: Vec::new(),
    };
    let (status, response) = decide(shared, &method, path, head, &param, &mut record);
    record.status = status;
    shared.state().requests.push(record);
    (status, response)
}

fn decide(
    shared: &Shared,
    method: &str,
    path: &str,
    head: &Head,
    param: &dyn Fn(&str) -> Option<String>,
    record: &mut TokenRequest,
) -> (u16, Value) {
    if path != "/token" {
        return (404, error("NOT_FOUND", "the token endpoint is /token"));
    }
    let options = shared.state().options.clone();
    if let Some(service) = &record.service
        && *service != options.service
    {
        return (
            400,
            error(
                "invalid_request",
                &format!(
                    "unknown service {service:?}; this server issues tokens for {:?}",
                    options.service
                ),
            ),
        );
    }
    // Who is asking: `None` is anonymous; a wrong credential ends here with 401.
    let user: Option<String>;
    let mut refresh_token = None;
    match method {
        "GET" => match head.header("authorization") {
            None => user = None,
            Some(value) => {
                let Some(encoded) = value
                    .strip_prefix("Basic ")
                    .or_else(|| value.strip_prefix("basic "))
                else {
                    record.presented =
                        Presented::Other(value.split(' ').next().unwrap_or("").to_string());
                    return (
                        401,
                        error("UNAUTHORIZED", "only Basic authorization is understood"),
                    );
                };
                let decoded = base64_decode(encoded)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let (name, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
                record.presented = Presented::Basic {
                    username: name.to_string(),
                };
                if name != options.username || password != options.password {
                    return (401, error("UNAUTHORIZED", "wrong user name or password"));
                }
                user = Some(name.to_string());
            }
        },
        "POST" => match param("grant_type").as_deref() {
            Some("password") => {
                let name = param("username").unwrap_or_default();
                record.presented = Presented::Password {
                    username: name.clone(),
                };
                if name != options.username
                    || param("password").as_deref() != Some(&options.password)
                {
                    return (401, error("invalid_grant", "wrong user name or password"));
                }
                let mut state = shared.state();
                refresh_token = Some(new_refresh_token(&mut state, &name));
                user = Some(name);
            }
            Some("refresh_token") => {
                record.presented = Presented::RefreshToken;
                let given = param("refresh_token").unwrap_or_default();
                let owner = shared.state().refresh_tokens.get(&given).cloned();
                let Some(owner) = owner else {
                    return (401, error("invalid_grant", "unknown refresh token"));
                };
                refresh_token = Some(given);
                user = Some(owner);
            }
            other => {
                record.presented = Presented::Other(other.unwrap_or("").to_string());
                return (
                    400,
                    error(
                        "unsupported_grant_type",
                        "grant_type must be password or refresh_token",
                    ),
                );
            }
        },
        _ => return (404, error("NOT_FOUND", "only GET and POST are served")),
    }
    record.authenticated = user.is_some();

    let grants: Vec<Grant> = record
        .scopes
        .iter()
        .filter_map(|scope| grant(&options, user.as_deref(), scope))
        .collect();
    record.granted = grants
        .iter()
        .map(|g| format!("{}:{}:{}", g.kind, g.name, g.actions.join(",")))
        .collect();
    let (expired, jti) = {
        let mut state = shared.state();
        state.issued += 1;
        (state.expired_claims, state.issued)
    };
    let token = sign_jwt(
        shared,
        &Claims {
            issuer: options.issuer.clone(),
            subject: user.clone().unwrap_or_default(),
            audience: options.service.clone(),
            expires_in: options.expires_in,
            expired,
            jti,
            grants,
        },
    );
    let issued_at = rfc3339_now();
    let response = if method == "POST" {
        let mut response = json!({
            "access_token": token,
            "expires_in": options.expires_in,
            "issued_at": issued_at,
            "scope": record.scopes.join(" "),
        });
        if let Some(refresh) = refresh_token {
            response["refresh_token"] = json!(refresh);
        }
        response
    } else if options.ghcr_style {
        json!({ "token": token })
    } else {
        json!({
            "token": token,
            "access_token": token,
            "expires_in": options.expires_in,
            "issued_at": issued_at,
        })
    };
    (200, response)
}

struct Grant {
    kind: String,
    name: String,
    actions: Vec<String>,
}

/// What `user` (or an anonymous client) gets of `scope` (`TYPE:NAME:ACTIONS`).
fn grant(options: &TokenOptions, user: Option<&str>, scope: &str) -> Option<Grant> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let asked: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    let allowed: Vec<String> = match user {
        Some(_)
            if kind == "repository" && options.pull_only_repositories.iter().any(|r| r == name) =>
        {
            asked
                .iter()
                .filter(|a| **a == "pull")
                .map(|a| a.to_string())
                .collect()
        }
        Some(_) => asked.iter().map(|a| a.to_string()).collect(),
        None if kind == "repository" && options.public_repositories.iter().any(|r| r == name) => {
            asked
                .iter()
                .filter(|a| **a == "pull")
                .map(|a| a.to_string())
                .collect()
        }
        None => Vec::new(),
    };
    if allowed.is_empty() {
        return None;
    }
    Some(Grant {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: allowed,
    })
}

struct Claims {
    issuer: String,
    subject: String,
    audience: String,
    expires_in: u64,
    expired: bool,
    jti: u64,
    grants: Vec<Grant>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn sign_jwt(shared: &Shared, claims: &Claims) -> String {
    let now = unix_now();
    let exp = if claims.expired {
        now - 120
    } else {
        now + claims.expires_in as i64
    };
    let header = json!({ "typ": "JWT", "alg": "RS256", "kid": shared.key_id });
    let access: Vec<Value> = claims
        .grants
        .iter()
        .map(|g| json!({ "type": g.kind, "name": g.name, "actions": g.actions }))
        .collect();
    let payload = json!({
        "iss": claims.issuer,
        "sub": claims.subject,
        "aud": claims.audience,
        "exp": exp,
        "nbf": now - 1,
        "iat": now,
        "jti": format!("test-token-{}-{now}", claims.jti),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64url_encode(header.to_string().as_bytes()),
        base64url_encode(payload.to_string().as_bytes())
    );
    let mut child = Command::new(&shared.openssl)
        .args(["dgst", "-sha256", "-sign"])
        .arg(&shared.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start `openssl dgst` to sign a token: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(signing_input.as_bytes())
            .unwrap_or_else(|e| panic!("failed to feed `openssl dgst`: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("`openssl dgst` did not finish: {e}"));
    assert!(
        output.status.success() && !output.stdout.is_empty(),
        "`openssl dgst -sha256 -sign` failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    format!("{signing_input}.{}", base64url_encode(&output.stdout))
}

fn new_refresh_token(state: &mut State, user: &str) -> String {
    state.issued += 1;
    let seed = format!("{user}-{}-{:?}", state.issued, SystemTime::now());
    let token = format!("refresh-{}", hex(&Sha256::digest(seed.as_bytes())[..16]));
    state.refresh_tokens.insert(token.clone(), user.to_string());
    token
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The current UTC time as RFC 3339 (`2024-01-02T03:04:05Z`).
fn rfc3339_now() -> String {
    let secs = unix_now();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (the usual era/day-of-era arithmetic).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

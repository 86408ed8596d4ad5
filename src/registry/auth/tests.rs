//! Tests for the `WWW-Authenticate` parser, token lifetimes and the [`Authenticator`] against a
//! small HTTP server on 127.0.0.1 that plays registry and token server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::parse::days_since_epoch;
use super::*;

const USER: &str = "robot";
const PASSWORD: &str = "pa:ss-S3CRET-value";
const IDENTITY: &str = "refresh-S3CRET-token";

#[test]
fn token_lifetimes() {
    let now = Instant::now();
    let within = |at: Instant, low: u64, high: u64| {
        let d = at.saturating_duration_since(now);
        d >= Duration::from_millis(low) && d <= Duration::from_millis(high)
    };
    assert!(
        within(refresh_time(None, None), 49_000, 50_500),
        "default 60 s less 10 s"
    );
    assert!(within(refresh_time(Some(300), None), 289_000, 290_500));
    assert!(
        within(refresh_time(Some(4), None), 1_900, 2_100),
        "short tokens: half"
    );
    let issued = SystemTime::now() - Duration::from_secs(100);
    let stamp = rfc3339(issued);
    assert!(
        within(refresh_time(Some(300), Some(&stamp)), 188_000, 191_000),
        "{stamp}"
    );
    // A time in the future or beyond the lifetime is clock skew: ignored.
    let future = rfc3339(SystemTime::now() + Duration::from_secs(1000));
    assert!(within(
        refresh_time(Some(300), Some(&future)),
        289_000,
        290_500
    ));
    let ancient = rfc3339(SystemTime::now() - Duration::from_secs(1000));
    assert!(within(
        refresh_time(Some(300), Some(&ancient)),
        289_000,
        290_500
    ));
}

/// Formats a time as RFC 3339 by searching the day (tests only; avoids a date library).
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_secs() as i64;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let mut year = 1970;
    while days_since_epoch(year + 1, 1, 1) <= days {
        year += 1;
    }
    let mut month = 1;
    while month < 12 && days_since_epoch(year, month + 1, 1) <= days {
        month += 1;
    }
    let day = days - days_since_epoch(year, month, 1) + 1;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[test]
fn scopes_are_merged_and_formatted() {
    let scopes = normalize_scopes(&[Scope::pull("b/x"), Scope::pull("a/y"), Scope::push("b/x")]);
    assert_eq!(scopes, vec![Scope::pull("a/y"), Scope::push("b/x")]);
    assert_eq!(
        Scope::push("acme/app").to_string(),
        "repository:acme/app:pull,push"
    );
    assert_eq!(
        Scope::pull("acme/app").to_string(),
        "repository:acme/app:pull"
    );
}

/// One request the test server received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    authorization: Option<String>,
    form: Vec<(String, String)>,
}

impl Seen {
    fn values(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn form_value(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response: status, extra headers, body.
type Reply = (u16, Vec<(String, String)>, String);
type Handler = Arc<dyn Fn(&Seen, u16) -> Reply + Send + Sync>;

/// A sequential HTTP/1.1 server on 127.0.0.1 that records requests and closes every
/// connection (so each request is parsed on its own).
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(handler: impl Fn(&Seen, u16) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, handler): (_, Handler) = (seen.clone(), Arc::new(handler));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                log.lock().expect("log").push(request.clone());
                let (status, headers, body) = handler(&request, port);
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                let _ = stream.write_all(format!("{head}\r\n{body}").as_bytes());
            }
        });
        Server { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }

    fn authenticator(&self, registry: &str, credential: Credential) -> Authenticator {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let source = CredentialSource {
            credential,
            origin: "the test's `config.json`".into(),
        };
        Authenticator::new(
            http,
            format!("http://127.0.0.1:{}", self.port),
            registry.into(),
            source,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (mut length, mut authorization) = (0, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "authorization" => authorization = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Seen {
        method,
        path: path.to_string(),
        query: decode_form(query),
        authorization,
        form: decode_form(&String::from_utf8_lossy(&body)),
    })
}

fn decode_form(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("hex"));
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).expect("utf8")
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(n), decode(v))
        })
        .collect()
}

fn basic(user: &str, password: &str) -> String {
    basic_header(user, password)
}

fn bearer_challenge(port: u16) -> Vec<(String, String)> {
    let value = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\"");
    vec![("WWW-Authenticate".into(), value)]
}

/// A registry with a token server: tokens are `tok-N`; the registry accepts tokens with a
/// number of at least `first_good` and answers `repo_status` for accepted requests.
fn token_registry(expires_in: u64, first_good: usize, repo_status: u16) -> Server {
    let issued = Arc::new(Mutex::new(0usize));
    Server::start(move |req, port| {
        if req.path == "/token" {
            let identity_ok = req.method == "POST"
                && req.form_value("grant_type") == Some("refresh_token")
                && req.form_value("refresh_token") == Some(IDENTITY);
            let basic_ok =
                req.method == "GET" && req.authorization.as_deref() == Some(&basic(USER, PASSWORD));
            let anonymous = req.method == "GET" && req.authorization.is_none();
            if !(identity_ok || basic_ok || anonymous) {
                return (401, vec![], "incorrect username or password".into());
            }
            let mut n = issued.lock().expect("issued");
            *n += 1;
            let field = if identity_ok { "access_token" } else { "token" };
            return (
                200,
                vec![],
                format!("{{\"{field}\":\"tok-{n}\",\"expires_in\":{expires_in}}}"),
            );
        }
        if req.path == "/v2/" {
            return (401, bearer_challenge(port), String::new());
        }
        let accepted = req
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer tok-"))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= first_good);
        if accepted {
            (
                repo_status,
                vec![],
                "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no\"}]}".into(),
            )
        } else {
            (401, bearer_challenge(port), String::new())
        }
    })
}

fn basic_credential() -> Credential {
    Credential::Basic {
        username: USER.into(),
        password: Secret::new(PASSWORD),
    }
}

async fn get(auth: &Authenticator, server: &Server, scopes: &[Scope]) -> Result<u16, AuthError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = server.url("/v2/acme/app/manifests/latest");
    let make = move || http.get(&url);
    auth.send(scopes, &make).await.map(|r| r.status().as_u16())
}

#[tokio::test]
async fn bearer_token_is_reused_then_refreshed() {
    let server = token_registry(2, 1, 200);
    let auth = server.authenticator("127.0.0.1", basic_credential());
    let scopes = [Scope::push("acme/app")];
    assert_eq!(get(&auth, &server, &scopes).await.expect("first"), 200);
    assert_eq!(get(&auth, &server, &scopes).await.expect("second"), 200);
    assert_eq!(
        server.count("/token"),
        1,
        "token reused within its lifetime"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(get(&auth, &server, &scopes).await.expect("third"), 200);
    assert_eq!(
        server.count("/token"),
        2,
        "token refreshed after its lifetime"
    );
    assert_eq!(server.count("/v2/"), 1, "challenge learned once");
    let seen = server.seen();
    let token_request = seen
        .iter()
        .find(|s| s.path == "/token")
        .expect("token request");
    assert_eq!(
        token_request.values("scope"),
        vec!["repository:acme/app:pull,push"]
    );
    assert_eq!(token_request.values("service"), vec!["test-registry"]);
    assert_eq!(
        token_request.authorization.as_deref(),
        Some(basic(USER, PASSWORD).as_str())
    );
    // The probe comes first and carries no credentials.
    assert_eq!(seen[0].path, "/v2/");
    assert_eq!(seen[0].authorization, None);
    let last = seen.last().expect("requests");
    assert_eq!(last.authorization.as_deref(), Some("Bearer tok-2"));
}

#[tokio::test]
async fn push_and_mount_scopes_share_one_token_request() {
    let server = token_registry(300, 1, 201);
    let auth = server.authenticator("127.0.0.1", basic_credential());
    let scopes = [Scope::push("acme/app"), Scope::pull("library/base")];
    assert_eq!(get(&auth, &server, &scopes).await.expect("mount"), 201);
    let seen = server.seen();
    let tokens: Vec<&Seen> = seen.iter().filter(|s| s.path == "/token").collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].values("scope"),
        vec![
            "repository:acme/app:pull,push",
            "repository:library/base:pull"
        ]
    );
    // Another scope set needs its own token; the first stays cached.
    get(&auth, &server, &[Scope::pull("acme/app")])
        .await
        .expect("pull");
    get(&auth, &server, &scopes).await.expect("mount again");
    assert_eq!(server.count("/token"), 2);
}

#[tokio::test]
async fn basic_challenge_gets_credentials_directly() {
    let server = Server::start(|req, _| {
        let challenge = vec![("WWW-Authenticate".into(), "Basic realm=\"test\"".into())];
        if req.authorization.as_deref() == Some(basic(USER, PASSWORD).as_str()) {
            (200, vec![], String::new())
        } else {
            (401, challenge, String::new())
        }
    });
    let auth = server.authenticator("127.0.0.1", basic_credential());
    assert_eq!(
        get(&auth, &server, &[Scope::push("acme/app")])
            .await
            .expect("get"),
        200
    );
    assert_eq!(
        get(&auth, &server, &[Scope::push("acme/app")])
            .await
            .expect("get"),
        200
    );
    assert_eq!(server.count("/token"), 0);
    assert_eq!(server.seen().len(), 3, "probe, then each request once");
}

#[tokio::test]
async fn identity_token_uses_the_refresh_token_grant() {
    let server = token_registry(300, 1, 200);
    let credential = Credential::IdentityToken {
        username: USER.into(),
        token: Secret::new(IDENTITY),
    };
    let auth = server.authenticator("127.0.0.1", credential);
    let scopes = [Scope::push("acme/app"), Scope::pull("library/base")];
    assert_eq!(get(&auth, &server, &scopes).await.expect("get"), 200);
    let seen = server.seen();
    let token = seen
        .iter()
        .find(|s| s.path == "/token")
        .expect("token request");
    assert_eq!(token.method, "POST");
    assert_eq!(token.authorization, None);
    assert_eq!(token.form_value("grant_type"), Some("refresh_token"));
    assert_eq!(token.form_value("refresh_token"), Some(IDENTITY));
    assert_eq!(token.form_value("service"), Some("test-registry"));
    assert_eq!(token.form_value("client_id"), Some(CLIENT_ID));
    assert_eq!(
        token.form_value("scope"),
        Some("repository:acme/app:pull,push repository:library/base:pull")
    );
}

#[tokio::test]
async fn anonymous_token_for_public_pulls() {
    let server = token_registry(300, 1, 200);
    let auth = server.authenticator("127.0.0.1", Credential::Anonymous);
    assert_eq!(
        get(&auth, &server, &[Scope::pull("library/busybox")])
            .await
            .expect("get"),
        200
    );
    let seen = server.seen();
    let token = seen
        .iter()
        .find(|s| s.path == "/token")
        .expect("token request");
    assert_eq!(
        (token.method.as_str(), token.authorization.as_deref()),
        ("GET", None)
    );
    assert_eq!(
        token.values("scope"),
        vec!["repository:library/busybox:pull"]
    );
    assert!(token.values("account").is_empty());
}

#[tokio::test]
async fn retries_once_with_a_fresh_token_after_401() {
    let server = token_registry(300, 2, 200);
    let auth = server.authenticator("127.0.0.1", basic_credential());
    assert_eq!(
        get(&auth, &server, &[Scope::push("acme/app")])
            .await
            .expect("get"),
        200
    );
    assert_eq!(server.count("/token"), 2);
    assert_eq!(server.count("/v2/acme/app/manifests/latest"), 2);
}

#[tokio::test]
async fn unauthorized_after_the_retry_names_registry_and_origin() {
    let server = token_registry(300, usize::MAX, 200);
    let auth = server.authenticator("127.0.0.1", basic_credential());
    let error = get(&auth, &server, &[Scope::push("acme/app")])
        .await
        .expect_err("401");
    assert!(matches!(error, AuthError::Unauthorized { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("registry `127.0.0.1`"), "{text}");
    assert!(text.contains("\nhint: check the user name and token for 127.0.0.1 (credentials from the test's `config.json`)"), "{text}");
    assert_eq!(
        server.count("/v2/acme/app/manifests/latest"),
        2,
        "one retry only"
    );
    assert_error_no_secret(&error);
}

#[tokio::test]
async fn forbidden_hints_differ_for_ghcr() {
    let server = token_registry(300, 1, 403);
    let ghcr = server.authenticator("ghcr.io", basic_credential());
    let error = get(&ghcr, &server, &[Scope::push("acme/app")])
        .await
        .expect_err("403");
    let text = error.to_string();
    assert!(matches!(error, AuthError::Forbidden { .. }), "{error:?}");
    assert!(
        text.contains(&format!("\nhint: {GHCR_FORBIDDEN_HINT}")),
        "{text}"
    );
    assert!(
        text.contains("`ghcr.io/acme/app`") && text.contains("DENIED: no"),
        "{text}"
    );
    let other = server.authenticator("registry.example", basic_credential());
    let text = get(&other, &server, &[Scope::push("acme/app")])
        .await
        .expect_err("403")
        .to_string();
    assert!(
        text.ends_with(
            "\nhint: the credentials from the test's `config.json` may not push to acme/app"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn token_endpoint_failure_names_host_service_scopes_and_origin() {
    let server = token_registry(300, 1, 200);
    let credential = Credential::Basic {
        username: USER.into(),
        password: Secret::new("wrong"),
    };
    let auth = server.authenticator("127.0.0.1", credential);
    let error = get(&auth, &server, &[Scope::push("acme/app")])
        .await
        .expect_err("token");
    let AuthError::Token {
        ref realm_host,
        ref service,
        ref scopes,
        status,
        ..
    } = error
    else {
        panic!("unexpected {error:?}");
    };
    assert_eq!((&**realm_host, &**service), ("127.0.0.1", "test-registry"));
    assert_eq!(
        (&**scopes, status),
        ("repository:acme/app:pull,push", Some(401))
    );
    let text = error.to_string();
    assert!(
        text.contains("credentials from the test's `config.json`"),
        "{text}"
    );
    assert!(
        text.contains("\nhint: check the user name and token"),
        "{text}"
    );
    assert!(
        text.contains(": HTTP status 401 Unauthorized: incorrect username or password"),
        "{text}"
    );
    assert_error_no_secret(&error);
}

#[tokio::test]
async fn server_text_echoing_the_secret_is_redacted() {
    // The token server answers with the password in its error body; the error must not.
    let server = Server::start(|req, port| match req.path.as_str() {
        "/token" => (403, vec![], format!("denied for {PASSWORD}")),
        _ => (401, bearer_challenge(port), String::new()),
    });
    let auth = server.authenticator("127.0.0.1", basic_credential());
    let error = get(&auth, &server, &[Scope::push("acme/app")])
        .await
        .expect_err("token");
    assert!(error.to_string().contains("denied for ***"), "{error}");
    assert_error_no_secret(&error);
    assert_no_secret(&auth);
}

#[tokio::test]
async fn registry_without_auth_gets_no_header() {
    let server = Server::start(|_, _| (200, vec![], String::new()));
    let auth = server.authenticator("127.0.0.1", basic_credential());
    assert_eq!(
        get(&auth, &server, &[Scope::pull("a/b")])
            .await
            .expect("get"),
        200
    );
    assert!(server.seen().iter().all(|s| s.authorization.is_none()));
}

#[tokio::test]
async fn malformed_challenge_is_an_error() {
    let server = Server::start(|_, _| {
        (
            401,
            vec![("WWW-Authenticate".into(), "Bearer realm=\"open".into())],
            String::new(),
        )
    });
    let auth = server.authenticator("127.0.0.1", Credential::Anonymous);
    let error = get(&auth, &server, &[Scope::pull("a/b")])
        .await
        .expect_err("challenge");
    assert!(matches!(error, AuthError::Challenge { .. }), "{error:?}");
    assert!(error.to_string().contains("unterminated"), "{error}");
}

/// Asserts that no formatting of `error` or of its sources shows a secret.
fn assert_error_no_secret(error: &AuthError) {
    assert_no_secret(error);
    let mut current: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = current {
        assert_no_secret(&e.to_string());
        current = e.source();
    }
}

/// Asserts that neither `{:?}` nor `{}` of `value` (nor its error sources) shows a secret.
fn assert_no_secret<T: std::fmt::Debug>(value: &T) {
    let text = format!("{value:?}");
    for secret in [PASSWORD, IDENTITY, "S3CRET"] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[test]
fn no_secret_in_any_formatting() {
    let secret = Secret::new(PASSWORD);
    assert_eq!(
        (format!("{secret}"), format!("{secret:?}")),
        ("***".into(), "***".into())
    );
    assert_eq!(secret.expose(), PASSWORD);
    let identity = Credential::IdentityToken {
        username: USER.into(),
        token: Secret::new(IDENTITY),
    };
    let source = CredentialSource {
        credential: basic_credential(),
        origin: "o".into(),
    };
    assert_no_secret(&basic_credential());
    assert_no_secret(&identity);
    assert_no_secret(&source);
    assert_no_secret(&ExplicitCredentials {
        username: USER.into(),
        password: secret,
    });
    let errors = [
        AuthError::Helper {
            helper: "docker-credential-x".into(),
            reason: "failed".into(),
        },
        AuthError::Unauthorized {
            registry: "r".into(),
            target: "r/a".into(),
            credentials: "credentials from o".into(),
            detail: String::new(),
            hint: "h".into(),
        },
        AuthError::BadHeader {
            registry: "r".into(),
            credentials: "no credentials".into(),
        },
    ];
    for error in errors {
        assert_error_no_secret(&error);
    }
}

//! Registry authentication: the `WWW-Authenticate` challenge (RFC 7235), Basic credentials,
//! and bearer tokens from the registry's token server (the Distribution token protocol, with
//! the OAuth2 refresh-token grant for identity tokens), cached per scope set until they expire.
//!
//! Nothing here logs or formats header values or secrets: errors name the registry, the
//! token server's host, the scopes and where the credential came from, never its value.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{StatusCode, Url};

mod parse;

use parse::{Challenge, choose_challenge, parse_rfc3339, parse_www_authenticate};
use serde::Deserialize;

pub use crate::registry::credentials::{
    Credential, CredentialSource, ExplicitCredentials, Secret, credential_from_helper,
    credential_from_helper_in, resolve_credentials,
};

/// Token lifetime when the token server gives none (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// How long before expiry a token is replaced, so it does not expire in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(10);
/// The `client_id` sent with refresh-token grants; the spec only asks that it names the client.
const CLIENT_ID: &str = "rust-image-action";
/// The hint for a 403 from ghcr.io, where the usual cause is the workflow's token permissions.
pub(crate) const GHCR_FORBIDDEN_HINT: &str = "the workflow needs `permissions: packages: write`, or the \
    package must grant this repository access in its settings (Package settings → Manage \
    Actions access)";

/// What a token is asked for: `repository:<name>:pull` or `repository:<name>:pull,push`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// Repository path inside the registry.
    pub repository: String,
    /// Whether push access is needed as well as pull.
    pub push: bool,
}

impl Scope {
    /// Pull access to `repository`.
    pub fn pull(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            push: false,
        }
    }

    /// Pull and push access to `repository`.
    pub fn push(repository: &str) -> Scope {
        Scope {
            repository: repository.to_string(),
            push: true,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let actions = if self.push { "pull,push" } else { "pull" };
        write!(f, "repository:{}:{actions}", self.repository)
    }
}

/// Why authenticating to a registry failed. Messages name the registry, the operation and
/// where the credential came from (never its value); a `hint:` line says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Docker's config.json exists but cannot be read.
    #[error("failed to read the docker config `{}`", path.display())]
    ConfigRead {
        /// The config file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Docker's config.json is not valid JSON or has unexpected types.
    #[error("the docker config `{}` is not valid", path.display())]
    ConfigParse {
        /// The config file.
        path: std::path::PathBuf,
        /// The JSON error (positions only, no content).
        #[source]
        source: serde_json::Error,
    },
    /// An `auths` entry in config.json cannot be decoded.
    #[error("the `auths` entry `{key}` in the docker config `{}` is invalid: {reason}", path.display())]
    ConfigEntry {
        /// The config file.
        path: std::path::PathBuf,
        /// The entry's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `docker-credential-*` helper could not be run or failed.
    #[error("credential helper `{helper}` failed: {reason}")]
    Helper {
        /// The helper program's name.
        helper: String,
        /// What went wrong (never its secret output).
        reason: String,
    },
    /// The registry's `WWW-Authenticate` header cannot be used.
    #[error(
        "registry `{registry}` sent an unusable `WWW-Authenticate` header `{header}`: {reason}"
    )]
    Challenge {
        /// Registry host.
        registry: String,
        /// The header (shortened).
        header: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A request to the registry could not be sent or its response not read.
    #[error("failed to {operation} at registry `{registry}`")]
    Request {
        /// Registry host.
        registry: String,
        /// What was being done.
        operation: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The token server did not give a token.
    #[error(
        "failed to get a token from `{realm_host}` for service `{service}` and scopes `{scopes}` \
         ({credentials}): {problem}{}",
        hint_line(hint.as_deref())
    )]
    Token {
        /// The token server's host (from the challenge's realm).
        realm_host: Box<str>,
        /// The challenge's service (empty when none).
        service: Box<str>,
        /// The scopes asked for, space-separated.
        scopes: Box<str>,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// ``credentials from ORIGIN`` or ``no credentials``.
        credentials: Box<str>,
        /// What went wrong, with the server's error message if any.
        problem: Box<str>,
        /// What the user can do about it.
        hint: Option<String>,
        /// The HTTP client's error, when the request itself failed.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// A credential or token cannot be put in an `Authorization` header.
    #[error(
        "the authorization for registry `{registry}` ({credentials}) has characters not allowed \
         in an HTTP header"
    )]
    BadHeader {
        /// Registry host.
        registry: String,
        /// ``credentials from ORIGIN`` or ``no credentials``.
        credentials: String,
    },
    /// The registry answered 401 even after a fresh token.
    #[error(
        "registry `{registry}` did not accept the request for `{target}` (HTTP 401, \
         {credentials}){detail}{}",
        hint_line(Some(hint))
    )]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// What the request was for: the scopes, or the registry itself.
        target: String,
        /// ``credentials from ORIGIN`` or ``no credentials``.
        credentials: String,
        /// The registry's error message, if any, as `: CODE: message`.
        detail: String,
        /// What the user can do about it.
        hint: String,
    },
    /// The registry answered 403: the credential is valid but lacks access.
    #[error(
        "registry `{registry}` denied access to `{target}` (HTTP 403, {credentials}){detail}{}",
        hint_line(Some(hint))
    )]
    Forbidden {
        /// Registry host.
        registry: String,
        /// What the request was for: the scopes, or the registry itself.
        target: String,
        /// ``credentials from ORIGIN`` or ``no credentials``.
        credentials: String,
        /// The registry's error message, if any, as `: CODE: message`.
        detail: String,
        /// What the user can do about it.
        hint: String,
    },
}

/// `\nhint: …` for an optional hint.
fn hint_line(hint: Option<&str>) -> String {
    hint.map(|h| format!("\nhint: {h}")).unwrap_or_default()
}

/// A bearer token and when to stop using it.
struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

/// The token server's answer. Not `Debug`: it holds the token as a plain string.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    issued_at: Option<String>,
}

/// Authenticates requests to one registry: learns its challenge from `GET /v2/` (up front,
/// as ghcr.io needs), answers `Basic` challenges with the credential, `Bearer` challenges
/// with tokens from the realm (GET with Basic auth for Basic credentials, POST form with
/// grant_type=refresh_token for identity tokens, anonymous GET otherwise) for the exact
/// scopes asked (several scopes in one request, e.g. a push scope for the target and a pull
/// scope for a mount source), caches tokens per scope set until they expire
/// (`expires_in`, default 60 s, refreshed 10 s early), and retries a request once after a
/// 401 with a fresh token.
pub struct Authenticator {
    http: reqwest::Client,
    base_url: String,
    registry: String,
    source: CredentialSource,
    /// The learned challenge; the lock is held during the `GET /v2/` probe so that it runs
    /// once however many requests start together.
    challenge: tokio::sync::Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<Vec<Scope>, CachedToken>>,
    /// Serializes token requests, so concurrent requests for one scope set share one token.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("base_url", &self.base_url)
            .field("registry", &self.registry)
            .field("origin", &self.source.origin)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator for `registry` at `base_url` (`https://host` or `http://host:port`).
    pub fn new(
        http: reqwest::Client,
        base_url: String,
        registry: String,
        credential: CredentialSource,
    ) -> Authenticator {
        Authenticator {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            registry,
            source: credential,
            challenge: tokio::sync::Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Where the credential came from, for error messages.
    pub fn origin(&self) -> &str {
        &self.source.origin
    }

    /// Sends the request `make` builds (called again for the retry after a 401), authorized
    /// for `scopes`. A final 401 or 403 becomes [`AuthError::Unauthorized`] or
    /// [`AuthError::Forbidden`]; every other response is returned as it is.
    pub async fn send(
        &self,
        scopes: &[Scope],
        make: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<reqwest::Response, AuthError> {
        let scopes = normalize_scopes(scopes);
        let challenge = self.challenge().await?;
        let (authorization, used) = self.authorize(&challenge, &scopes, None).await?;
        let response = self.execute(make, authorization).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.check_forbidden(response, &scopes).await;
        }
        // The 401's own challenge may differ from the one `/v2/` gave (a registry that only
        // protects some repositories answers `/v2/` with 200).
        let retry_challenge = match response.headers().get(WWW_AUTHENTICATE) {
            Some(value) => self.parse_challenge(value.to_str().unwrap_or(""))?,
            None => challenge.clone(),
        };
        let worth_retrying =
            retry_challenge != challenge || matches!(retry_challenge, Challenge::Bearer { .. });
        if !worth_retrying {
            return Err(self.unauthorized(response, &scopes).await);
        }
        if retry_challenge != challenge {
            *self.challenge.lock().await = Some(retry_challenge.clone());
            self.lock_tokens().clear();
        }
        let (authorization, _) = self
            .authorize(&retry_challenge, &scopes, used.as_ref())
            .await?;
        let response = self.execute(make, authorization).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(response, &scopes).await);
        }
        self.check_forbidden(response, &scopes).await
    }

    /// The registry's challenge, learned with one unauthenticated `GET /v2/`: ghcr.io
    /// answers requests carrying credentials it was not asked for with DENIED and no
    /// challenge, so the challenge must be known before the first real request.
    async fn challenge(&self) -> Result<Challenge, AuthError> {
        let mut learned = self.challenge.lock().await;
        if let Some(challenge) = learned.as_ref() {
            return Ok(challenge.clone());
        }
        let url = format!("{}/v2/", self.base_url);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| AuthError::Request {
                registry: self.registry.clone(),
                operation: "check the API version (`GET /v2/`)".into(),
                source,
            })?;
        let challenge = match response.headers().get(WWW_AUTHENTICATE) {
            Some(value) if response.status() == StatusCode::UNAUTHORIZED => {
                self.parse_challenge(value.to_str().unwrap_or(""))?
            }
            _ => Challenge::None,
        };
        *learned = Some(challenge.clone());
        Ok(challenge)
    }

    fn parse_challenge(&self, header: &str) -> Result<Challenge, AuthError> {
        parse_www_authenticate(header)
            .and_then(|c| choose_challenge(&c))
            .map_err(|reason| AuthError::Challenge {
                registry: self.registry.clone(),
                header: header.chars().take(300).collect(),
                reason,
            })
    }

    /// What to put in the `Authorization` header for `challenge`, and the bearer token used
    /// (to avoid being handed the same rejected token on the retry).
    async fn authorize(
        &self,
        challenge: &Challenge,
        scopes: &[Scope],
        rejected: Option<&Secret>,
    ) -> Result<(Option<String>, Option<Secret>), AuthError> {
        match challenge {
            Challenge::None => Ok((None, None)),
            Challenge::Basic => match &self.source.credential {
                Credential::Basic { username, password } => {
                    Ok((Some(basic_header(username, password.expose())), None))
                }
                // An identity token is only good at a token server; anonymous has nothing.
                Credential::IdentityToken { .. } | Credential::Anonymous => Ok((None, None)),
            },
            Challenge::Bearer { realm, service } => {
                let token = self
                    .token(realm, service.as_deref(), scopes, rejected)
                    .await?;
                Ok((Some(format!("Bearer {}", token.expose())), Some(token)))
            }
        }
    }

    async fn execute(
        &self,
        make: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
        authorization: Option<String>,
    ) -> Result<reqwest::Response, AuthError> {
        let mut request = make();
        if let Some(value) = authorization {
            let mut value = reqwest::header::HeaderValue::try_from(value).map_err(|_| {
                AuthError::BadHeader {
                    registry: self.registry.clone(),
                    credentials: self.credentials_phrase(),
                }
            })?;
            // Marked sensitive so that no Debug of the request shows it.
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        request.send().await.map_err(|source| AuthError::Request {
            registry: self.registry.clone(),
            operation: "send a request".into(),
            source,
        })
    }

    /// A cached token for `scopes` that is still fresh and not `rejected`, else a new one.
    async fn token(
        &self,
        realm: &Url,
        service: Option<&str>,
        scopes: &[Scope],
        rejected: Option<&Secret>,
    ) -> Result<Secret, AuthError> {
        if let Some(token) = self.cached(scopes, rejected) {
            return Ok(token);
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched it while this one waited.
        if let Some(token) = self.cached(scopes, rejected) {
            return Ok(token);
        }
        let (token, refresh_at) = self.fetch_token(realm, service, scopes).await?;
        self.lock_tokens().insert(
            scopes.to_vec(),
            CachedToken {
                token: token.clone(),
                refresh_at,
            },
        );
        Ok(token)
    }

    fn cached(&self, scopes: &[Scope], rejected: Option<&Secret>) -> Option<Secret> {
        let tokens = self.lock_tokens();
        let cached = tokens.get(scopes)?;
        let fresh = Instant::now() < cached.refresh_at;
        (fresh && rejected != Some(&cached.token)).then(|| cached.token.clone())
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<Scope>, CachedToken>> {
        // A panic while holding the lock cannot leave the map inconsistent; keep using it.
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn fetch_token(
        &self,
        realm: &Url,
        service: Option<&str>,
        scopes: &[Scope],
    ) -> Result<(Secret, Instant), AuthError> {
        let scope_strings: Vec<String> = scopes.iter().map(Scope::to_string).collect();
        let fail = |status: Option<u16>, problem: String, source: Option<reqwest::Error>| {
            let hint = match status {
                Some(401) => Some(self.unauthorized_hint()),
                Some(403) => Some(self.forbidden_hint(scopes)),
                _ => None,
            };
            AuthError::Token {
                realm_host: realm.host_str().unwrap_or("").into(),
                service: service.unwrap_or("").into(),
                scopes: scope_strings.join(" ").into(),
                status,
                credentials: self.credentials_phrase().into(),
                problem: self.redact(&problem).into(),
                hint,
                source,
            }
        };
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        let request = match &self.source.credential {
            Credential::IdentityToken { token, .. } => {
                // OAuth2 refresh-token grant: the scope list is space-separated in one field.
                let joined = scope_strings.join(" ");
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.expose()),
                    ("client_id", CLIENT_ID),
                ];
                form.extend(query.iter().copied());
                if !joined.is_empty() {
                    form.push(("scope", &joined));
                }
                self.http.post(realm.clone()).form(&form)
            }
            Credential::Basic { username, password } => {
                query.push(("account", username));
                query.extend(scope_strings.iter().map(|s| ("scope", s.as_str())));
                self.http
                    .get(realm.clone())
                    .query(&query)
                    .basic_auth(username, Some(password.expose()))
            }
            Credential::Anonymous => {
                query.extend(scope_strings.iter().map(|s| ("scope", s.as_str())));
                self.http.get(realm.clone()).query(&query)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| fail(None, "the request failed".into(), Some(e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            fail(
                Some(status.as_u16()),
                "reading the response failed".into(),
                Some(e),
            )
        })?;
        if !status.is_success() {
            let detail = error_detail(&body);
            return Err(fail(
                Some(status.as_u16()),
                format!("HTTP status {status}{detail}"),
                None,
            ));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            fail(
                Some(status.as_u16()),
                format!("the response is not a token: {e}"),
                None,
            )
        })?;
        let token = [parsed.token, parsed.access_token]
            .into_iter()
            .flatten()
            .find(|t| !t.is_empty())
            .ok_or_else(|| {
                fail(
                    Some(status.as_u16()),
                    "the response has no `token`".into(),
                    None,
                )
            })?;
        let refresh_at = refresh_time(parsed.expires_in, parsed.issued_at.as_deref());
        Ok((Secret::new(token), refresh_at))
    }

    /// Turns a 403 into [`AuthError::Forbidden`]; other responses pass through.
    async fn check_forbidden(
        &self,
        response: reqwest::Response,
        scopes: &[Scope],
    ) -> Result<reqwest::Response, AuthError> {
        if response.status() != StatusCode::FORBIDDEN {
            return Ok(response);
        }
        let detail = self.response_detail(response).await;
        Err(AuthError::Forbidden {
            registry: self.registry.clone(),
            target: self.target(scopes),
            credentials: self.credentials_phrase(),
            detail,
            hint: self.forbidden_hint(scopes),
        })
    }

    async fn unauthorized(&self, response: reqwest::Response, scopes: &[Scope]) -> AuthError {
        let detail = self.response_detail(response).await;
        AuthError::Unauthorized {
            registry: self.registry.clone(),
            target: self.target(scopes),
            credentials: self.credentials_phrase(),
            detail,
            hint: self.unauthorized_hint(),
        }
    }

    async fn response_detail(&self, response: reqwest::Response) -> String {
        let body = response.bytes().await.unwrap_or_default();
        self.redact(&error_detail(&body))
    }

    /// What the request was for: `registry/repository` of the scopes, else the registry.
    fn target(&self, scopes: &[Scope]) -> String {
        let names: Vec<String> = scopes
            .iter()
            .map(|s| format!("{}/{}", self.registry, s.repository))
            .collect();
        if names.is_empty() {
            self.registry.clone()
        } else {
            names.join("`, `")
        }
    }

    fn credentials_phrase(&self) -> String {
        match self.source.credential {
            Credential::Anonymous => "no credentials".into(),
            _ => format!("credentials from {}", self.source.origin),
        }
    }

    fn unauthorized_hint(&self) -> String {
        match self.source.credential {
            Credential::Anonymous => format!(
                "the repository may be private or missing: log in with `docker login {}` or \
                 give a user name and token",
                self.registry
            ),
            // ghcr.io hands a workflow token without `packages: write` a token without the
            // push scope, and the push is then refused as unauthorized.
            _ if self.registry.eq_ignore_ascii_case("ghcr.io") => format!(
                "check the user name and token for ghcr.io (credentials from {}); {}",
                self.source.origin, GHCR_FORBIDDEN_HINT
            ),
            _ => format!(
                "check the user name and token for {} (credentials from {})",
                self.registry, self.source.origin
            ),
        }
    }

    fn forbidden_hint(&self, scopes: &[Scope]) -> String {
        if matches!(self.source.credential, Credential::Anonymous) {
            return self.unauthorized_hint();
        }
        if self.registry.eq_ignore_ascii_case("ghcr.io") {
            return GHCR_FORBIDDEN_HINT.into();
        }
        let (verb, scope) = match scopes.iter().find(|s| s.push) {
            Some(scope) => ("push to", Some(scope)),
            None => ("pull from", scopes.first()),
        };
        let repository = scope
            .map(|s| s.repository.as_str())
            .unwrap_or("this registry");
        format!(
            "the credentials from {} may not {verb} {repository}",
            self.source.origin
        )
    }

    /// Removes the credential's secret from server-provided text before it goes in an error:
    /// some servers echo request parameters back.
    fn redact(&self, text: &str) -> String {
        let secret = match &self.source.credential {
            Credential::Anonymous => return text.to_string(),
            Credential::Basic { password, .. } => password.expose(),
            Credential::IdentityToken { token, .. } => token.expose(),
        };
        if secret.is_empty() {
            text.to_string()
        } else {
            text.replace(secret, "***")
        }
    }
}

/// `Basic base64(user:password)`.
fn basic_header(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// Sorts scopes and merges those for one repository (push wins), so that the same access
/// asked in different words shares a cached token.
fn normalize_scopes(scopes: &[Scope]) -> Vec<Scope> {
    let mut merged: BTreeMap<&str, bool> = BTreeMap::new();
    for scope in scopes {
        *merged.entry(scope.repository.as_str()).or_default() |= scope.push;
    }
    merged
        .into_iter()
        .map(|(repository, push)| Scope {
            repository: repository.into(),
            push,
        })
        .collect()
}

/// The registry's error message from an error body (`{"errors":[{"code","message"}]}`, or
/// the start of a text body), as `: CODE: message`, or empty.
fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Errors>(body) {
        Ok(parsed) => parsed
            .errors
            .iter()
            .map(|e| [e.code.as_str(), e.message.as_str()].join(": "))
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(body)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    };
    let text: String = text.trim().chars().take(300).collect();
    if text.is_empty() {
        text
    } else {
        format!(": {text}")
    }
}

/// When to replace a token: its lifetime (`expires_in`, default 60 s) counted from
/// `issued_at` when that is a plausible past time (clocks disagree, so a time in the future
/// or older than the lifetime is ignored), less a margin of 10 s, or half the lifetime for
/// short-lived tokens so they are used at all.
fn refresh_time(expires_in: Option<u64>, issued_at: Option<&str>) -> Instant {
    let lifetime = match expires_in {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds),
        _ => DEFAULT_TOKEN_LIFETIME,
    };
    let age = issued_at
        .and_then(parse_rfc3339)
        .and_then(|issued| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_secs_f64();
            let age = now - issued;
            (0.0..lifetime.as_secs_f64())
                .contains(&age)
                .then(|| Duration::from_secs_f64(age))
        })
        .unwrap_or_default();
    let remaining = lifetime - age;
    let margin = REFRESH_MARGIN.min(lifetime / 2);
    Instant::now() + remaining.saturating_sub(margin)
}

#[cfg(test)]
mod tests;

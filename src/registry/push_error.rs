//! Why pushing an image failed. Every variant names the registry, the repository and the
//! operation (`upload blob sha256:… to ghcr.io/acme/app`); request failures also name where
//! the credential came from (never its value) and end with a `hint:` line where the user can
//! act. [`RegistryError`] wraps it as `RegistryError::Push`.

use crate::oci::digest::Digest;
use crate::registry::RegistryError;
use crate::registry::auth::AuthError;
use crate::store::StoreError;

/// The cause of a failed request, kept apart so the message can say what the registry did.
#[derive(Debug, thiserror::Error)]
pub enum RequestFailure {
    /// The registry answered with an unexpected status.
    #[error("the registry answered {status}{}", excerpt(body))]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (registries explain errors there as JSON).
        body: String,
    },
    /// The request could not be sent or its answer not read (network, TLS, reset).
    #[error("the request failed")]
    Send(#[source] Box<AuthError>),
    /// The answer lacked something the protocol requires.
    #[error("{0}")]
    Protocol(String),
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A request to the registry failed, after the retries it was allowed.
    #[error(
        "failed to {operation} to `{registry}/{repository}` (credentials: {origin}): \
         {source}{}",
        hint_line(hint.as_deref())
    )]
    Request {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// What was being done, naming the object (`upload blob sha256:…`).
        operation: String,
        /// Where the credential came from.
        origin: String,
        /// What the user can do about it, if anything (boxed, like the cause, to keep
        /// `Result`s small).
        hint: Option<Box<str>>,
        /// What went wrong.
        #[source]
        source: Box<RequestFailure>,
    },
    /// The registry reports a digest other than the one pushed.
    #[error(
        "failed to {operation} to `{registry}/{repository}`: the registry reports digest \
         `{actual}`, expected `{expected}`"
    )]
    DigestMismatch {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// What was being done.
        operation: String,
        /// The digest of what was sent.
        expected: Digest,
        /// What the registry's `Docker-Content-Digest` header says.
        actual: Box<str>,
    },
    /// Reading what is to be pushed from the local store failed.
    #[error("failed to {operation} to `{registry}/{repository}`: reading the local store failed")]
    Store {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// What was being done.
        operation: String,
        /// The store's error (boxed: its size is the store's business).
        #[source]
        source: Box<StoreError>,
    },
    /// What is to be pushed is not a consistent image in the local store.
    #[error("failed to {operation} to `{registry}/{repository}`: {reason}")]
    Invalid {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// What was being done.
        operation: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be set up (CA certificates, TLS).
    #[error("failed to set up the HTTP client for pushing: {reason}")]
    Client {
        /// What failed, naming the file when a CA certificate could not be used.
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The runtime for a blocking push could not be started.
    #[error("failed to start the async runtime to push to `{registry}/{repository}`")]
    Runtime {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// The runtime's error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking push was started on a thread that already runs an async runtime.
    #[error(
        "cannot push to `{registry}/{repository}` with `push_image_blocking` inside an async \
         runtime\nhint: call `push_image(...).await` there instead"
    )]
    NestedRuntime {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
    },
}

impl From<PushError> for RegistryError {
    fn from(error: PushError) -> RegistryError {
        // Boxed inside `RegistryError` so the pull paths' `Result`s do not grow.
        RegistryError::Push(Box::new(error))
    }
}

fn hint_line(hint: Option<&str>) -> String {
    hint.map(|hint| format!("\nhint: {hint}"))
        .unwrap_or_default()
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    // Registries can answer with whole HTML pages; the start says enough.
    let short: String = body.chars().take(300).collect();
    format!(": {short}")
}

/// What the user can do about status `status` from `registry`.
pub(crate) fn hint_for_status(status: u16, registry: &str, repository: &str) -> Option<String> {
    match status {
        // ghcr.io hands a workflow token without `packages: write` a pull-only token,
        // which the push then fails with.
        401 | 403 if registry == "ghcr.io" => Some(super::auth::GHCR_FORBIDDEN_HINT.to_string()),
        401 => Some(format!(
            "the registry refused the credentials: check the user name and token allow pushing \
             to `{repository}`"
        )),
        403 => Some(format!(
            "the credentials may not push to `{repository}`; check their permissions"
        )),
        404 => Some(format!(
            "check the repository name: registry `{registry}` may not have or allow \
             `{repository}`"
        )),
        429 => Some("the registry is rate limiting; wait and try again".to_string()),
        500..=599 => {
            Some("the registry kept failing; it may be overloaded: try again later".to_string())
        }
        _ => None,
    }
}

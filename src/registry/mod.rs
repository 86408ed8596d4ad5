//! The registry client: image references and pulling images from OCI distribution registries
//! into the local [`Store`](crate::store::Store).
//!
//! Only anonymous pulls exist so far; pushing and credentials come later and will share
//! [`RegistryError`].

pub mod auth;
pub mod credentials;
pub mod endpoints;
pub mod pull;
pub mod push;
pub mod push_error;
pub mod reference;
pub mod upload;

pub use auth::{AuthError, Authenticator, Scope};
pub use credentials::{
    Credential, CredentialSource, ExplicitCredentials, Secret, credential_from_helper,
    credential_from_helper_in, resolve_credentials,
};
pub use pull::{
    LayerFetch, PullOptions, PulledImage, fetch_blobs, fetch_blobs_blocking, pull_image,
    pull_image_blocking,
};
pub use push::{
    PushBlob, PushOptions, PushReport, base_url, http_client, push_image, push_image_blocking,
};
pub use push_error::PushError;
pub use reference::{ImageRef, ReferenceError};

use oci_client::errors::{OciDistributionError, OciErrorCode};

use crate::oci::digest::Digest;
use crate::store::StoreError;

/// Why talking to a registry failed. Every variant names the registry and repository; where
/// the user can do something about it, the message ends with a `hint:` line.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Pushing an image failed.
    #[error(transparent)]
    Push(#[from] Box<push_error::PushError>),
    /// A request to the registry failed (network, HTTP status, protocol).
    #[error(
        "failed to {operation} of repository `{repository}` from registry `{registry}`{}",
        hint_line(hint.as_deref())
    )]
    Request {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// What was being done, naming the object (``fetch manifest `latest` ``).
        operation: String,
        /// What the user can do about it, if anything.
        hint: Option<String>,
        /// The client's error (boxed: it is large and errors are rare).
        #[source]
        source: Box<OciDistributionError>,
    },
    /// The download of a blob broke off or its content was not what the manifest promised.
    #[error("failed to {operation} of repository `{repository}` from registry `{registry}`")]
    Transfer {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// What was being done, naming the blob.
        operation: String,
        /// The I/O or verification error.
        #[source]
        source: std::io::Error,
    },
    /// A blob's length differs from the size its descriptor gives.
    #[error(
        "blob `{digest}` of repository `{repository}` from registry `{registry}` has {actual} \
         bytes or more, its descriptor says {expected}"
    )]
    SizeMismatch {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// The blob.
        digest: Digest,
        /// The size in the descriptor.
        expected: u64,
        /// The bytes received (so far, when the download was stopped for being too long).
        actual: u64,
    },
    /// The image index has no manifest for the requested platform.
    #[error(
        "the image index of repository `{repository}` from registry `{registry}` has no \
         manifest for platform `{platform}`; it has {}\nhint: pick one of these platforms",
        list_platforms(available)
    )]
    NoMatchingPlatform {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// The platform asked for.
        platform: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// The manifest fetched for a pinned digest has another digest.
    #[error(
        "manifest of repository `{repository}` from registry `{registry}` has digest \
         `{actual}`, not the pinned `{expected}`"
    )]
    DigestMismatch {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// The digest the reference or index pins.
        expected: Digest,
        /// The digest of the content received.
        actual: Digest,
    },
    /// A manifest, index or config could not be understood.
    #[error(
        "invalid {what} `{digest}` of repository `{repository}` from registry `{registry}`: \
         {reason}"
    )]
    Invalid {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// Which kind of document it is.
        what: Document,
        /// The blob.
        digest: Digest,
        /// What is wrong with it.
        reason: String,
        /// The JSON error, when it did not parse.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// Reading or writing the local store failed.
    #[error("failed to store {what} of repository `{repository}` from registry `{registry}`")]
    Store {
        /// Registry host.
        registry: String,
        /// Repository inside the registry.
        repository: String,
        /// What was being stored, naming it.
        what: String,
        /// The store's error (boxed: its size is the store's business).
        #[source]
        source: Box<StoreError>,
    },
    /// The HTTP client could not be set up.
    #[error("failed to set up the registry client for registry `{registry}`")]
    Client {
        /// Registry host.
        registry: String,
        /// The client's error.
        #[source]
        source: Box<OciDistributionError>,
    },
    /// Extra CA certificates could not be read.
    #[error("failed to read CA certificates `{}`", path.display())]
    Certificates {
        /// The file.
        path: std::path::PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The runtime for a blocking pull could not be started.
    #[error("failed to start the async runtime to pull `{reference}`")]
    Runtime {
        /// The reference being pulled.
        reference: String,
        /// The runtime's error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking pull was started on a thread that already runs an async runtime.
    #[error(
        "cannot pull `{reference}` with `pull_image_blocking` inside an async runtime\nhint: \
         call `pull_image(...).await` there instead"
    )]
    NestedRuntime {
        /// The reference being pulled.
        reference: String,
    },
}

/// The JSON documents a pull reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    /// An image manifest (or a manifest not yet known to be one or the other).
    Manifest,
    /// An image index or manifest list.
    Index,
    /// An image config.
    Config,
}

impl std::fmt::Display for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Document::Manifest => "manifest",
            Document::Index => "image index",
            Document::Config => "image config",
        })
    }
}

fn hint_line(hint: Option<&str>) -> String {
    hint.map(|hint| format!("\nhint: {hint}"))
        .unwrap_or_default()
}

fn list_platforms(available: &[String]) -> String {
    if available.is_empty() {
        return "no entry naming a platform".to_string();
    }
    let quoted: Vec<String> = available.iter().map(|p| format!("`{p}`")).collect();
    quoted.join(", ")
}

/// Whether the registry said that what was asked for does not exist.
pub(crate) fn is_not_found(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::NameUnknown | OciErrorCode::ManifestUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code: 404, .. }
        | OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

/// What the user can do about a failed request, judged from the registry's answer.
pub(crate) fn hint_for(
    error: &OciDistributionError,
    registry: &str,
    repository: &str,
    reference: &str,
    plain_http: bool,
) -> Option<String> {
    const PRIVATE: &str = "the image may be private; credentials are not supported for pulls \
                           yet (some registries also answer this way for names they do not have)";
    let unknown_name = || {
        Some(format!(
            "check the name: registry `{registry}` has no repository `{repository}`"
        ))
    };
    let unknown_manifest = || {
        Some(format!(
            "check the tag or digest: repository `{repository}` has no manifest `{reference}`"
        ))
    };
    match error {
        OciDistributionError::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code)?;
            match code {
                OciErrorCode::NameUnknown => unknown_name(),
                OciErrorCode::ManifestUnknown | OciErrorCode::NotFound => unknown_manifest(),
                OciErrorCode::Unauthorized | OciErrorCode::Denied => Some(PRIVATE.to_string()),
                OciErrorCode::Toomanyrequests => {
                    Some("the registry is rate limiting pulls; wait and try again".to_string())
                }
                _ => None,
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Some(PRIVATE.to_string()),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => Some(PRIVATE.to_string()),
        OciDistributionError::ServerError { code: 404, .. }
        | OciDistributionError::ImageManifestNotFoundError(_) => unknown_manifest(),
        OciDistributionError::ServerError { code: 429, .. } => {
            Some("the registry is rate limiting pulls; wait and try again".to_string())
        }
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
            if plain_http {
                Some(format!(
                    "check that registry `{registry}` is running and reachable"
                ))
            } else {
                Some(format!(
                    "check that registry `{registry}` is reachable; if it serves plain HTTP, \
                     list it in the insecure registries"
                ))
            }
        }
        _ => None,
    }
}

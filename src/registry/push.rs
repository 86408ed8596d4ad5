//! Pushing an image from the local [`Store`] to a registry over the OCI distribution API.
//!
//! Order matters for the people pulling: every blob goes first (several at once, bounded),
//! then the manifest by digest, and only then the tags, so a tag never points at an image
//! the registry cannot serve, and a push that fails half-way moves no tag. How one blob gets
//! there (probe, mount, single `PUT` or resumable chunks) is in [`super::upload`].

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::oci::digest::Digest;
use crate::oci::{Descriptor, Index, Manifest, media_types};
use crate::registry::RegistryError;
use crate::registry::auth::Authenticator;
use crate::registry::push_error::PushError;
use crate::registry::reference::ImageRef;
use crate::registry::upload::{Outcome, Remote, push_blob};
use crate::store::Store;

/// How long connecting to a registry may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a registry may stay silent on an open connection; no total timeout is set, since
/// a large blob on a slow link legitimately takes long.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// How a push behaves.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Registries (`host[:port]` or `host`) spoken to over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// How many blobs are sent at once.
    pub max_concurrent_blobs: usize,
    /// The largest `PATCH` body; ghcr.io refuses chunks over 4 MiB, so never set it larger.
    pub chunk_size: usize,
    /// Blobs up to this size go in a single `PUT`.
    pub monolithic_limit: u64,
    /// How often one request is retried after connection errors, 5xx and 429.
    pub max_retries: u32,
    /// A PEM file of extra CA certificates to trust (besides `SSL_CERT_FILE`).
    pub extra_ca: Option<std::path::PathBuf>,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            insecure_registries: Vec::new(),
            max_concurrent_blobs: 4,
            chunk_size: 4 * 1024 * 1024,
            monolithic_limit: 4 * 1024 * 1024,
            max_retries: 8,
            extra_ca: None,
        }
    }
}

/// A blob to push and, when known, a repository of the same registry that already has it
/// (a base image's repository): the push tries a cross-repository mount first.
#[derive(Clone, Debug)]
pub struct PushBlob {
    /// The blob.
    pub descriptor: Descriptor,
    /// A repository of the target registry holding the blob, to mount it from.
    pub mount_from: Option<String>,
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    /// The digest of the pushed manifest.
    pub manifest_digest: Digest,
    /// The tags written, in order.
    pub tags: Vec<String>,
    /// HTTP requests sent to the registry for the push (retries included; an
    /// authenticator's own `/v2/` and token requests are not).
    pub requests: u64,
    /// Blob bytes sent (0 when the registry had everything).
    pub blob_bytes_sent: u64,
    /// Blobs the repository already had.
    pub blobs_existing: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
}

/// Pushes the image `manifest` (in `store`, with its config and `blobs`) to `target`'s
/// repository: every blob (HEAD first; mount when `mount_from` is set, falling back to an
/// upload when the registry answers 202; upload streamed from the store in chunks of at most
/// `chunk_size`, a single PUT for small blobs, a broken chunked upload resumed from the offset
/// the registry reports with `GET` on the upload URL), bounded concurrency; then the
/// manifest by digest; then each tag. If anything fails before the manifest is in place, no
/// tag is written. Memory stays bounded whatever the blob sizes.
///
/// The blobs pushed are those the manifest references (for an index, those of each child
/// manifest, which go before the index) plus any further ones in `blobs`; `blobs` mainly says
/// where to mount from. `tags` empty means `target`'s own tag, if it has one.
pub async fn push_image(
    store: &Store,
    manifest: &Descriptor,
    blobs: &[PushBlob],
    target: &ImageRef,
    tags: &[String],
    auth: &Authenticator,
    options: &PushOptions,
) -> Result<PushReport, RegistryError> {
    push(store, manifest, blobs, target, tags, auth, options)
        .await
        .map_err(RegistryError::from)
}

/// [`push_image`] on a runtime of its own, for callers without one.
pub fn push_image_blocking(
    store: &Store,
    manifest: &Descriptor,
    blobs: &[PushBlob],
    target: &ImageRef,
    tags: &[String],
    auth: &Authenticator,
    options: &PushOptions,
) -> Result<PushReport, RegistryError> {
    // Blocking inside a runtime would panic in tokio; say what to do instead.
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(PushError::NestedRuntime {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
        }
        .into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| PushError::Runtime {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            source,
        })?;
    runtime.block_on(push_image(
        store, manifest, blobs, target, tags, auth, options,
    ))
}

/// The reqwest client push and auth share (timeouts, CA certificates, rustls).
pub fn http_client(options: &PushOptions) -> Result<reqwest::Client, RegistryError> {
    client(options).map_err(RegistryError::from)
}

fn client(options: &PushOptions) -> Result<reqwest::Client, PushError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("rust-image-action/", env!("CARGO_PKG_VERSION")));
    let env_ca = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    for path in env_ca.iter().chain(options.extra_ca.iter()) {
        for certificate in read_certificates(path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| PushError::Client {
        reason: "the TLS configuration was refused".to_string(),
        source: Some(Box::new(e)),
    })
}

fn read_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, PushError> {
    let pem = std::fs::read(path).map_err(|e| PushError::Client {
        reason: format!("cannot read CA certificates `{}`", path.display()),
        source: Some(Box::new(e)),
    })?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| PushError::Client {
        reason: format!("`{}` holds no valid PEM certificates", path.display()),
        source: Some(Box::new(e)),
    })
}

/// `http://` for loopback registries and `insecure_registries`, else `https://`.
pub fn base_url(registry: &str, insecure: &[String]) -> String {
    if let Some((host, plain)) = super::endpoints::endpoint(registry) {
        let scheme = if plain { "http" } else { "https" };
        return format!("{scheme}://{host}");
    }
    // The rule is the pull's; an `ImageRef` carries it.
    let probe = ImageRef {
        registry: registry.to_string(),
        repository: String::new(),
        tag: None,
        digest: None,
    };
    let scheme = if probe.plain_http(insecure) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{registry}")
}

/// What goes to the registry, in order: blobs, child manifests, the manifest itself.
struct Plan {
    blobs: Vec<PushBlob>,
    children: Vec<(Descriptor, Bytes)>,
    manifest: Bytes,
}

async fn push(
    store: &Store,
    manifest: &Descriptor,
    blobs: &[PushBlob],
    target: &ImageRef,
    tags: &[String],
    auth: &Authenticator,
    options: &PushOptions,
) -> Result<PushReport, PushError> {
    let http = client(options)?;
    let base = base_url(&target.registry, &options.insecure_registries);
    let remote = Remote::new(
        http,
        auth,
        &base,
        &target.registry,
        &target.repository,
        options,
    )?;
    let plan = plan(&remote, store, manifest, blobs)?;

    let mut report = PushReport {
        manifest_digest: manifest.digest,
        tags: Vec::new(),
        requests: 0,
        blob_bytes_sent: 0,
        blobs_existing: 0,
        blobs_mounted: 0,
        blobs_uploaded: 0,
    };
    // `try_collect` stops at the first error and drops the uploads still running, so a
    // failed blob ends the push before any manifest or tag is written.
    // The futures are built up front (they do nothing until polled): mapping inside the
    // stream would make the push future lose `Send` to a higher-ranked closure lifetime.
    let uploads: Vec<_> = plan
        .blobs
        .iter()
        .map(|blob| push_blob(&remote, store, blob))
        .collect();
    let outcomes: Vec<Outcome> = futures_util::stream::iter(uploads)
        .buffer_unordered(options.max_concurrent_blobs.max(1))
        .try_collect()
        .await?;
    for outcome in outcomes {
        match outcome {
            Outcome::Existing => report.blobs_existing += 1,
            Outcome::Mounted => report.blobs_mounted += 1,
            Outcome::Uploaded => report.blobs_uploaded += 1,
        }
    }

    for (child, bytes) in &plan.children {
        put_manifest(&remote, child, &child.digest.to_string(), bytes).await?;
    }
    put_manifest(
        &remote,
        manifest,
        &manifest.digest.to_string(),
        &plan.manifest,
    )
    .await?;
    let tags: Vec<String> = if tags.is_empty() {
        target.tag.iter().cloned().collect()
    } else {
        tags.to_vec()
    };
    for tag in &tags {
        put_manifest(&remote, manifest, tag, &plan.manifest).await?;
        report.tags.push(tag.clone());
    }
    report.requests = remote.requests();
    report.blob_bytes_sent = remote.bytes_sent();
    Ok(report)
}

/// Reads the manifest (and an index's children) from the store and lists the blobs to push,
/// each once, with the mount source `blobs` gives for it.
fn plan(
    remote: &Remote<'_>,
    store: &Store,
    manifest: &Descriptor,
    blobs: &[PushBlob],
) -> Result<Plan, PushError> {
    let mount_from: HashMap<Digest, &str> = blobs
        .iter()
        .filter_map(|b| Some((b.descriptor.digest, b.mount_from.as_deref()?)))
        .collect();
    let top = read_document(remote, store, manifest)?;
    let mut images = Vec::new();
    let mut children = Vec::new();
    if media_types::is_index(&manifest.media_type) {
        let index = Index::from_slice(&top)
            .map_err(|e| invalid(remote, manifest, format!("not a valid image index: {e}")))?;
        for child in index.manifests {
            let bytes = read_document(remote, store, &child)?;
            images.push(parse_manifest(remote, &child, &bytes)?);
            children.push((child, bytes));
        }
    } else if media_types::is_manifest(&manifest.media_type) {
        images.push(parse_manifest(remote, manifest, &top)?);
    } else {
        return Err(invalid(
            remote,
            manifest,
            format!(
                "media type `{}` is not an image manifest or index",
                manifest.media_type
            ),
        ));
    }

    let mut seen = HashSet::new();
    let mut list = Vec::new();
    let referenced = images
        .iter()
        .flat_map(|m| std::iter::once(&m.config).chain(&m.layers))
        .chain(blobs.iter().map(|b| &b.descriptor));
    for descriptor in referenced {
        if seen.insert(descriptor.digest) {
            list.push(PushBlob {
                descriptor: descriptor.clone(),
                mount_from: mount_from.get(&descriptor.digest).map(|s| s.to_string()),
            });
        }
    }
    Ok(Plan {
        blobs: list,
        children,
        manifest: top,
    })
}

/// Reads a manifest or index from the store, checking it is what its descriptor says.
fn read_document(
    remote: &Remote<'_>,
    store: &Store,
    descriptor: &Descriptor,
) -> Result<Bytes, PushError> {
    let bytes = store
        .read_blob(&descriptor.digest)
        .map_err(|e| PushError::Store {
            registry: remote.registry.clone(),
            repository: remote.repository.clone(),
            operation: format!("push manifest {}", descriptor.digest),
            source: Box::new(e),
        })?;
    let actual = Digest::of(&bytes);
    if actual != descriptor.digest || bytes.len() as u64 != descriptor.size {
        return Err(invalid(
            remote,
            descriptor,
            format!(
                "the stored document has digest `{actual}` and {} bytes, its descriptor says \
                 {} bytes",
                bytes.len(),
                descriptor.size
            ),
        ));
    }
    Ok(Bytes::from(bytes))
}

fn parse_manifest(
    remote: &Remote<'_>,
    descriptor: &Descriptor,
    bytes: &[u8],
) -> Result<Manifest, PushError> {
    Manifest::from_slice(bytes).map_err(|e| {
        invalid(
            remote,
            descriptor,
            format!("not a valid image manifest: {e}"),
        )
    })
}

fn invalid(remote: &Remote<'_>, descriptor: &Descriptor, reason: String) -> PushError {
    PushError::Invalid {
        registry: remote.registry.clone(),
        repository: remote.repository.clone(),
        operation: format!("push manifest {}", descriptor.digest),
        reason,
    }
}

/// `PUT /v2/<name>/manifests/<reference>` with the manifest's own media type.
async fn put_manifest(
    remote: &Remote<'_>,
    descriptor: &Descriptor,
    reference: &str,
    bytes: &Bytes,
) -> Result<(), PushError> {
    let operation = if reference.starts_with("sha256:") {
        format!("push manifest {reference}")
    } else {
        format!("tag manifest {} as `{reference}`", descriptor.digest)
    };
    let url = remote.url(&format!("manifests/{reference}"))?;
    let http = remote.http().clone();
    let make = || {
        http.put(url.clone())
            .header(CONTENT_TYPE, descriptor.media_type.as_str())
            .body(bytes.clone())
    };
    let response = remote
        .send(&operation, &[remote.push_scope()], &make)
        .await?;
    if !matches!(
        response.status(),
        StatusCode::CREATED | StatusCode::OK | StatusCode::ACCEPTED
    ) {
        return Err(remote.status_error(&operation, response).await);
    }
    remote.check_digest(&operation, response.headers(), &descriptor.digest)
}

#[cfg(test)]
mod tests;

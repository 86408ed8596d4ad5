//! Pulling an image for one platform into the store: manifest (through an index when the
//! reference names a multi-platform image), config and layers, each verified against its
//! digest while it streams to disk.

use std::io::Write;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Document, ImageRef, RegistryError, hint_for, is_not_found};
use crate::oci::digest::Digest;
use crate::oci::{Descriptor, ImageConfig, Index, Manifest, media_types};
use crate::platform::Platform;
use crate::store::{BlobWriter, Store};

/// How a pull talks to registries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullOptions {
    /// Registries (`host:port` or `host`) spoken to over plain HTTP, besides the loopback ones.
    pub insecure_registries: Vec<String>,
    /// How many layers download at the same time.
    pub max_concurrent_layers: usize,
    /// What happens to layer blobs.
    pub layers: LayerFetch,
    /// Credentials for the registry; anonymous when absent.
    pub credentials: Option<crate::registry::CredentialSource>,
    /// A PEM file of extra CA certificates (`--registry-ca`); `SSL_CERT_FILE` is added too.
    pub extra_ca: Option<std::path::PathBuf>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            insecure_registries: Vec::new(),
            max_concurrent_layers: 3,
            layers: LayerFetch::Store,
            credentials: None,
            extra_ca: None,
        }
    }
}

/// What a pull does with layer blobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayerFetch {
    /// Download every layer into the store.
    #[default]
    Store,
    /// Read each layer once as it streams by and keep only its header index (verified
    /// against the digest); the blob is fetched later only if something needs its bytes.
    /// A build that only adds layers on top of a base then never writes the base.
    IndexOnly,
}

/// An image pulled into the store: its platform manifest, config and layers are all present.
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// The reference that was pulled.
    pub reference: ImageRef,
    /// The platform manifest (not the index), stored in the store.
    pub manifest: Descriptor,
    /// The parsed platform manifest.
    pub manifest_body: Manifest,
    /// The parsed image config.
    pub config: ImageConfig,
    /// The config blob.
    pub config_descriptor: Descriptor,
    /// The layer blobs, lowest first.
    pub layers: Vec<Descriptor>,
}

/// Manifest media types asked for; the registry answers with whichever it stores.
const ACCEPTED_MANIFESTS: [&str; 4] = [
    media_types::OCI_INDEX,
    media_types::DOCKER_MANIFEST_LIST,
    media_types::OCI_MANIFEST,
    media_types::DOCKER_MANIFEST,
];

/// Indexes may point at indexes; real images nest at most once, the bound stops loops.
const MAX_INDEX_DEPTH: usize = 4;

/// Configs are read into memory to parse them; a larger one is not a real config.
const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// How many existing tags a "no such tag" hint shows.
const TAGS_SHOWN: usize = 10;

/// Chunks buffered between the download and the disk writer, bounding memory per blob.
const CHANNEL_DEPTH: usize = 16;

/// How often a blob download is started again (after an error or a break) before failing.
const MAX_ATTEMPTS: u32 = 6;

/// Failures worth another try: the network, a cut-off body, a server error, a rate
/// limit. Answers such as "not found" or "unauthorized" are final.
fn is_transient(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        _ => false,
    }
}

/// Exponential backoff with jitter: about 200 ms, 400 ms, ... capped at 5 s.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

/// Pulls `reference` for `platform` into `store` and returns what was pulled.
///
/// Blobs already in the store are not downloaded again; a by-digest reference whose manifest
/// is in the store needs no network at all. Tags are always resolved against the registry.
pub async fn pull_image(
    store: &Store,
    reference: &ImageRef,
    platform: &Platform,
    options: &PullOptions,
) -> Result<PulledImage, RegistryError> {
    let puller = Puller::new(reference, options)?;
    puller
        .pull(
            store,
            platform,
            options.max_concurrent_layers.max(1),
            options.layers,
        )
        .await
}

/// Downloads `blobs` of `reference`'s repository into `store`, skipping those present.
pub async fn fetch_blobs(
    store: &Store,
    reference: &ImageRef,
    blobs: &[Descriptor],
    options: &PullOptions,
) -> Result<(), RegistryError> {
    let puller = Puller::new(reference, options)?;
    puller
        .client
        .store_auth_if_needed(puller.target.resolve_registry(), &puller.auth)
        .await;
    stream::iter(blobs.iter())
        .map(|blob| puller.blob(store, blob, "layer"))
        .buffer_unordered(options.max_concurrent_layers.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// [`fetch_blobs`] for callers without an async runtime.
pub fn fetch_blobs_blocking(
    store: &Store,
    reference: &ImageRef,
    blobs: &[Descriptor],
    options: &PullOptions,
) -> Result<(), RegistryError> {
    block_on(reference, fetch_blobs(store, reference, blobs, options))
}

/// Runs `future` on a current-thread runtime; refuses to nest inside another runtime.
fn block_on<T>(
    reference: &ImageRef,
    future: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    // Starting a runtime inside another one panics; say what to do instead.
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(RegistryError::NestedRuntime {
            reference: reference.to_string(),
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RegistryError::Runtime {
            reference: reference.to_string(),
            source,
        })?;
    runtime.block_on(future)
}

/// [`pull_image`] for callers without an async runtime: runs it on a current-thread runtime.
pub fn pull_image_blocking(
    store: &Store,
    reference: &ImageRef,
    platform: &Platform,
    options: &PullOptions,
) -> Result<PulledImage, RegistryError> {
    block_on(reference, pull_image(store, reference, platform, options))
}

/// A manifest as fetched: the index or image manifest it parses as, with its raw bytes.
enum Fetched {
    Index(Index),
    Image(Box<Manifest>),
}

/// Just enough of a manifest to tell which kind it is before parsing it fully.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

struct Puller<'a> {
    client: Client,
    image: &'a ImageRef,
    /// The client's form of the reference; blob requests only use its registry and repository.
    target: Reference,
    /// Whether requests go over plain HTTP (changes what a connection failure hints).
    plain_http: bool,
    /// How requests authenticate.
    auth: RegistryAuth,
}

/// The CA certificates of `SSL_CERT_FILE` and `--registry-ca`, for the client library.
fn extra_certificates(
    options: &PullOptions,
) -> Result<Vec<oci_client::client::Certificate>, RegistryError> {
    let env_ca = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    env_ca
        .iter()
        .chain(options.extra_ca.iter())
        .map(|path| {
            std::fs::read(path)
                .map(|data| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data,
                })
                .map_err(|source| RegistryError::Certificates {
                    path: path.clone(),
                    source,
                })
        })
        .collect()
}

/// The client library's form of a credential. Identity tokens (OAuth refresh tokens)
/// have no equivalent there, so those pulls go anonymous.
fn registry_auth(credentials: Option<&crate::registry::CredentialSource>) -> RegistryAuth {
    use crate::registry::Credential;
    match credentials.map(|c| &c.credential) {
        Some(Credential::Basic { username, password }) => {
            RegistryAuth::Basic(username.clone(), password.expose().to_string())
        }
        // FIXME: pulls with an identity token from config.json go anonymous; fixed looks
        // like pulling through `Authenticator`, which speaks the refresh-token grant.
        Some(Credential::IdentityToken { .. }) | Some(Credential::Anonymous) | None => {
            RegistryAuth::Anonymous
        }
    }
}

impl<'a> Puller<'a> {
    fn new(image: &'a ImageRef, options: &PullOptions) -> Result<Self, RegistryError> {
        let mapped = super::endpoints::endpoint(&image.registry);
        let plain_http = match &mapped {
            Some((_, plain)) => *plain,
            None => image.plain_http(&options.insecure_registries),
        };
        let host = mapped.map_or_else(|| image.registry.clone(), |(host, _)| host);
        let protocol = if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            // Platform choice is ours (with variants); the client must not pick for us.
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(30)),
            // Per read, not per request: large layers may take long, a stalled socket may not.
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("rust-image-action/", env!("CARGO_PKG_VERSION")),
            extra_root_certificates: extra_certificates(options)?,
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|source| RegistryError::Client {
            registry: image.registry.clone(),
            source: Box::new(source),
        })?;
        let target = match &image.digest {
            Some(digest) => {
                Reference::with_digest(host.clone(), image.repository.clone(), digest.to_string())
            }
            None => Reference::with_tag(
                host.clone(),
                image.repository.clone(),
                image.manifest_reference(),
            ),
        };
        Ok(Puller {
            client,
            image,
            target,
            plain_http,
            auth: registry_auth(options.credentials.as_ref()),
        })
    }

    async fn pull(
        &self,
        store: &Store,
        platform: &Platform,
        concurrency: usize,
        layers: LayerFetch,
    ) -> Result<PulledImage, RegistryError> {
        // Anonymous auth still answers a Bearer challenge with a token for public repositories;
        // registering it up front covers blob requests made without a manifest request first.
        self.client
            .store_auth_if_needed(self.target.resolve_registry(), &self.auth)
            .await;

        let reference = self.image.manifest_reference();
        let (bytes, mut descriptor) = self.manifest(store, &reference, self.image.digest).await?;
        if let Some(expected) = self.image.digest
            && expected != descriptor.digest
        {
            return Err(self.digest_mismatch(expected, descriptor.digest));
        }
        let mut fetched = self.parse_manifest(&bytes, &mut descriptor)?;
        let mut depth = 0;
        let manifest = loop {
            let index = match fetched {
                Fetched::Image(manifest) => break *manifest,
                Fetched::Index(index) => index,
            };
            depth += 1;
            if depth > MAX_INDEX_DEPTH {
                return Err(self.invalid(
                    Document::Index,
                    descriptor.digest,
                    "indexes nest too deep",
                ));
            }
            let entry = self.select(&index, platform)?.clone();
            let (bytes, mut found) = self
                .manifest(store, &entry.digest.to_string(), Some(entry.digest))
                .await?;
            if found.digest != entry.digest {
                return Err(self.digest_mismatch(entry.digest, found.digest));
            }
            found.media_type = entry.media_type.clone();
            fetched = self.parse_manifest(&bytes, &mut found)?;
            descriptor = entry;
        };

        let config_descriptor = manifest.config.clone();
        if config_descriptor.size > MAX_CONFIG_SIZE {
            let reason = format!(
                "its size {} is too large for a config",
                config_descriptor.size
            );
            return Err(self.invalid(Document::Config, config_descriptor.digest, &reason));
        }
        self.blob(store, &config_descriptor, "config").await?;
        let config_bytes = store
            .read_blob(&config_descriptor.digest)
            .map_err(|source| {
                self.store_error(format!("config `{}`", config_descriptor.digest), source)
            })?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| RegistryError::Invalid {
                registry: self.image.registry.clone(),
                repository: self.image.repository.clone(),
                what: Document::Config,
                digest: config_descriptor.digest,
                reason: "it is not an image config".to_string(),
                source: Some(e),
            })?;

        stream::iter(manifest.layers.iter())
            .map(|layer| async move {
                match layers {
                    LayerFetch::Store => self.blob(store, layer, "layer").await,
                    LayerFetch::IndexOnly => self.index_only(store, layer).await,
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await?;

        Ok(PulledImage {
            reference: self.image.clone(),
            manifest: descriptor,
            layers: manifest.layers.clone(),
            manifest_body: manifest,
            config,
            config_descriptor,
        })
    }

    /// The manifest `reference` (tag or digest) as raw bytes and a descriptor; from the store
    /// when a digest is known and present there, else from the registry (and then stored).
    async fn manifest(
        &self,
        store: &Store,
        reference: &str,
        digest: Option<Digest>,
    ) -> Result<(Vec<u8>, Descriptor), RegistryError> {
        let what = || format!("manifest `{reference}`");
        let cached = match digest {
            Some(digest) if store.has(&digest) => Some(
                store
                    .read_blob(&digest)
                    .map_err(|source| self.store_error(what(), source))?,
            ),
            _ => None,
        };
        let bytes = match cached {
            Some(bytes) => bytes,
            None => {
                let target = match digest {
                    Some(digest) => self.target.clone_with_digest(digest.to_string()),
                    None => self.target.clone(),
                };
                // Transient failures (resets, truncated bodies, 5xx) are retried with
                // backoff; "not found" is an answer, not a failure.
                let mut attempt = 0;
                let fetched = loop {
                    let fetched = self
                        .client
                        .pull_manifest_raw(&target, &self.auth, &ACCEPTED_MANIFESTS)
                        .await;
                    match fetched {
                        Err(source) if attempt < MAX_ATTEMPTS && is_transient(&source) => {
                            attempt += 1;
                            tokio::time::sleep(backoff(attempt)).await;
                        }
                        other => break other,
                    }
                };
                let (bytes, _) = match fetched {
                    Ok(fetched) => fetched,
                    Err(source) => {
                        let mut error = self.request_error(format!("fetch {}", what()), source);
                        if digest.is_none() {
                            self.refine_unknown_tag(&mut error).await;
                        }
                        return Err(error);
                    }
                };
                store
                    .write_blob(&bytes)
                    .map_err(|source| self.store_error(what(), source))?;
                bytes.to_vec()
            }
        };
        let descriptor = Descriptor {
            media_type: String::new(),
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            annotations: None,
            platform: None,
        };
        Ok((bytes, descriptor))
    }

    /// Parses a manifest or index, filling in `descriptor`'s media type when it is unknown.
    fn parse_manifest(
        &self,
        bytes: &[u8],
        descriptor: &mut Descriptor,
    ) -> Result<Fetched, RegistryError> {
        let digest = descriptor.digest;
        let json_error = |what: Document, e: serde_json::Error| RegistryError::Invalid {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            what,
            digest,
            reason: "it does not parse".to_string(),
            source: Some(e),
        };
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| json_error(Document::Manifest, e))?;
        if probe.schema_version != Some(2) {
            let reason = match probe.schema_version {
                Some(v) => format!("schema version {v} is not supported, only version 2"),
                None => "it has no `schemaVersion`".to_string(),
            };
            return Err(self.invalid(Document::Manifest, digest, &reason));
        }
        let media_type = probe.media_type.as_deref().unwrap_or_else(|| {
            // OCI makes `mediaType` optional; an index is recognized by its `manifests`.
            if descriptor.media_type.is_empty() {
                if probe.manifests.is_some() {
                    media_types::OCI_INDEX
                } else {
                    media_types::OCI_MANIFEST
                }
            } else {
                &descriptor.media_type
            }
        });
        let fetched = match media_type {
            media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => Fetched::Index(
                serde_json::from_slice(bytes).map_err(|e| json_error(Document::Index, e))?,
            ),
            media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => Fetched::Image(Box::new(
                serde_json::from_slice(bytes).map_err(|e| json_error(Document::Manifest, e))?,
            )),
            other => {
                let reason = format!("media type `{other}` is not an image manifest or index");
                return Err(self.invalid(Document::Manifest, digest, &reason));
            }
        };
        descriptor.media_type = media_type.to_string();
        Ok(fetched)
    }

    /// The index entry for `platform`, or an error listing the platforms there are.
    fn select<'i>(
        &self,
        index: &'i Index,
        platform: &Platform,
    ) -> Result<&'i Descriptor, RegistryError> {
        let wanted = normalize(platform);
        let mut available = Vec::new();
        for entry in &index.manifests {
            let Some(spec) = &entry.platform else {
                continue;
            };
            let offered = Platform {
                os: spec.os.clone(),
                architecture: spec.architecture.clone(),
                variant: spec.variant.clone().unwrap_or_default(),
            };
            if normalize(&offered) == wanted {
                return Ok(entry);
            }
            // Attestation manifests are tagged `unknown/unknown`; they are not images to offer.
            let name = offered.to_string();
            if spec.os != "unknown" && !available.contains(&name) {
                available.push(name);
            }
        }
        Err(RegistryError::NoMatchingPlatform {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            platform: platform.to_string(),
            available,
        })
    }

    /// Downloads one blob into the store unless it is already there.
    async fn blob(
        &self,
        store: &Store,
        descriptor: &Descriptor,
        kind: &str,
    ) -> Result<(), RegistryError> {
        let digest = descriptor.digest;
        if store.has(&digest) {
            return Ok(());
        }
        let what = format!("{kind} `{digest}`");
        let writer = store
            .blob_writer()
            .map_err(|source| self.store_error(what.clone(), source))?;
        let expected = descriptor.size;
        self.stream(descriptor, &what, move |receiver| {
            write_blob(writer, receiver, digest, expected)
        })
        .await
    }

    /// Reads layer `descriptor` once as it downloads and keeps only its header index.
    async fn index_only(
        &self,
        store: &Store,
        descriptor: &Descriptor,
    ) -> Result<(), RegistryError> {
        let digest = descriptor.digest;
        if store.has(&digest) || crate::layer::index::has_index(store, &digest) {
            return Ok(());
        }
        let what = format!("layer `{digest}`");
        let expected = descriptor.size;
        let index = self
            .stream(descriptor, &what, move |receiver| {
                index_stream(receiver, digest, expected)
            })
            .await?;
        crate::layer::index::save_index(store, &digest, &index)
            .map_err(|e| self.transfer(&what, std::io::Error::other(e.to_string())))
    }

    /// Downloads blob `descriptor` and hands its chunks to `consume` on the blocking pool,
    /// through a bounded channel: memory stays at a few chunks whatever the blob's size.
    async fn stream<T: Send + 'static>(
        &self,
        descriptor: &Descriptor,
        what: &str,
        consume: impl FnOnce(mpsc::Receiver<Chunk<bytes::Bytes>>) -> Result<T, WriteFailure>
        + Send
        + 'static,
    ) -> Result<T, RegistryError> {
        let digest = descriptor.digest;
        let expected = descriptor.size;
        let digest_text = digest.to_string();
        let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
        let disk = tokio::task::spawn_blocking(move || consume(receiver));
        // A download that breaks off resumes where it stopped with a range request; one
        // that cannot start is retried. The consumer sees one continuous stream either way
        // and checks the digest over all of it.
        let mut received: u64 = 0;
        let mut attempt = 0;
        let mut failure = None;
        loop {
            let started = if received == 0 {
                self.client
                    .pull_blob_stream(&self.target, digest_text.as_str())
                    .await
                    .map(|stream| (stream, 0))
            } else {
                self.client
                    .pull_blob_stream_partial(&self.target, digest_text.as_str(), received, None)
                    .await
                    .map(|response| match response {
                        // The registry ignored the range: skip what was already passed on.
                        oci_client::client::BlobResponse::Full(stream) => (stream, received),
                        oci_client::client::BlobResponse::Partial(stream) => (stream, 0),
                    })
            };
            let (mut download, mut skip) = match started {
                Ok(started) => started,
                Err(source) if attempt < MAX_ATTEMPTS && is_transient(&source) => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(source) => {
                    drop(sender);
                    let _ = disk.await;
                    return Err(self.request_error(format!("fetch {what}"), source));
                }
            };
            let mut broke = None;
            let mut consumer_gone = false;
            while let Some(chunk) = download.next().await {
                match chunk {
                    Ok(mut chunk) => {
                        if skip > 0 {
                            let dropped = skip.min(chunk.len() as u64);
                            chunk = chunk.slice(dropped as usize..);
                            skip -= dropped;
                            if chunk.is_empty() {
                                continue;
                            }
                        }
                        received += chunk.len() as u64;
                        if sender.send(Chunk::Data(chunk)).await.is_err() {
                            // The consumer stopped; its own error says why.
                            consumer_gone = true;
                            break;
                        }
                    }
                    Err(e) => {
                        broke = Some(e);
                        break;
                    }
                }
            }
            match broke {
                Some(_) if attempt < MAX_ATTEMPTS && received < expected && !consumer_gone => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Some(e) => {
                    failure = Some(e);
                    break;
                }
                None => break,
            }
        }
        if failure.is_none() {
            // Only an explicit end commits: a closed channel means the download broke off.
            sender.send(Chunk::End).await.ok();
        }
        drop(sender);
        let consumed = disk
            .await
            .map_err(|e| self.transfer(what, std::io::Error::other(e)))?;
        if let Some(e) = failure {
            return Err(self.transfer(what, e));
        }
        match consumed {
            Ok(value) => Ok(value),
            Err(WriteFailure::Size(actual)) => Err(RegistryError::SizeMismatch {
                registry: self.image.registry.clone(),
                repository: self.image.repository.clone(),
                digest,
                expected,
                actual,
            }),
            Err(WriteFailure::Io(e)) => Err(self.transfer(what, e)),
            Err(WriteFailure::Aborted) => {
                Err(self.transfer(what, std::io::Error::other("the download ended early")))
            }
            Err(WriteFailure::Store(source)) => Err(self.store_error(what.to_string(), source)),
            Err(WriteFailure::Mismatch(actual)) => Err(self.digest_mismatch(digest, actual)),
            Err(WriteFailure::Layer(e)) => {
                Err(self.transfer(what, std::io::Error::other(e.to_string())))
            }
        }
    }

    /// Registries answer "manifest unknown" both for a missing tag and a missing repository
    /// (Docker Hub even answers "unauthorized"); the tag list tells which it is, and shows
    /// tags that do exist.
    async fn refine_unknown_tag(&self, error: &mut RegistryError) {
        let RegistryError::Request { hint, source, .. } = error else {
            return;
        };
        if !is_not_found(source) {
            return;
        }
        let listed = self
            .client
            .list_tags(&self.target, &self.auth, Some(TAGS_SHOWN), None)
            .await;
        let repository = &self.image.repository;
        *hint = match listed {
            Ok(list) if list.tags.is_empty() => {
                Some(format!("repository `{repository}` exists but has no tags"))
            }
            Ok(list) => {
                let tags: Vec<String> = list.tags.iter().map(|tag| format!("`{tag}`")).collect();
                let more = if tags.len() >= TAGS_SHOWN {
                    ", ..."
                } else {
                    ""
                };
                Some(format!(
                    "repository `{repository}` has no tag `{}`; it has {}{more}",
                    self.image.manifest_reference(),
                    tags.join(", ")
                ))
            }
            Err(e) if is_not_found(&e) => Some(format!(
                "check the name: registry `{}` has no repository `{repository}`",
                self.image.registry
            )),
            // The first answer's hint stands when the tag list says nothing clearer.
            Err(_) => hint.take(),
        };
    }

    fn request_error(&self, operation: String, source: OciDistributionError) -> RegistryError {
        let hint = hint_for(
            &source,
            &self.image.registry,
            &self.image.repository,
            &self.image.manifest_reference(),
            self.plain_http,
        );
        RegistryError::Request {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            operation,
            hint,
            source: Box::new(source),
        }
    }

    fn transfer(&self, what: &str, source: std::io::Error) -> RegistryError {
        RegistryError::Transfer {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            operation: format!("fetch {what}"),
            source,
        }
    }

    fn store_error(&self, what: String, source: crate::store::StoreError) -> RegistryError {
        RegistryError::Store {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            what,
            source: Box::new(source),
        }
    }

    fn invalid(&self, what: Document, digest: Digest, reason: &str) -> RegistryError {
        RegistryError::Invalid {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            what,
            digest,
            reason: reason.to_string(),
            source: None,
        }
    }

    fn digest_mismatch(&self, expected: Digest, actual: Digest) -> RegistryError {
        RegistryError::DigestMismatch {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            expected,
            actual,
        }
    }
}

/// `platform` in containerd's normal spelling (`arm64/v8` is `arm64`, `arm` is `arm/v7`), so
/// index entries and requests compare equal whichever alias each uses.
fn normalize(platform: &Platform) -> Platform {
    Platform::parse(&platform.to_string()).unwrap_or_else(|_| platform.clone())
}

enum Chunk<B> {
    Data(B),
    End,
}

enum WriteFailure {
    /// The download stopped before its end; the caller holds the reason.
    Aborted,
    Size(u64),
    Io(std::io::Error),
    Store(crate::store::StoreError),
    /// The bytes hash to this digest, not the expected one.
    Mismatch(Digest),
    /// The blob is not a readable layer.
    Layer(crate::layer::LayerError),
}

/// What [`ChannelReader`] saw of the stream, for the digest check afterwards.
#[derive(Default)]
struct StreamState {
    hasher: sha2::Sha256,
    size: u64,
    complete: bool,
}

/// A blocking reader over downloaded chunks that hashes everything it passes on, and on
/// drop reads (and hashes) whatever the consumer left, so the digest covers the blob.
struct ChannelReader {
    receiver: mpsc::Receiver<Chunk<bytes::Bytes>>,
    current: bytes::Bytes,
    state: std::sync::Arc<std::sync::Mutex<StreamState>>,
    limit: u64,
    ended: bool,
}

impl ChannelReader {
    /// Takes the next chunk; `false` at the end of the stream.
    fn next_chunk(&mut self) -> std::io::Result<bool> {
        use sha2::Digest as _;
        match self.receiver.blocking_recv() {
            Some(Chunk::Data(data)) => {
                let mut state = self
                    .state
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?;
                state.hasher.update(&data);
                state.size += data.len() as u64;
                if state.size > self.limit {
                    return Err(std::io::Error::other(
                        "the blob is larger than its descriptor",
                    ));
                }
                self.current = data;
                Ok(true)
            }
            Some(Chunk::End) => {
                self.ended = true;
                if let Ok(mut state) = self.state.lock() {
                    state.complete = true;
                }
                Ok(false)
            }
            None => {
                self.ended = true;
                Err(std::io::Error::other("the download ended early"))
            }
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.ended || !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

impl Drop for ChannelReader {
    fn drop(&mut self) {
        while !self.ended {
            if self.next_chunk().is_err() {
                break;
            }
        }
    }
}

/// Builds the header index of a layer from its download, checking size and digest.
fn index_stream(
    receiver: mpsc::Receiver<Chunk<bytes::Bytes>>,
    digest: Digest,
    expected_size: u64,
) -> Result<crate::layer::index::LayerIndex, WriteFailure> {
    use sha2::Digest as _;
    let state = std::sync::Arc::new(std::sync::Mutex::new(StreamState::default()));
    let reader = ChannelReader {
        receiver,
        current: bytes::Bytes::new(),
        state: std::sync::Arc::clone(&state),
        limit: expected_size,
        ended: false,
    };
    let index = crate::layer::index::read_index(&digest, reader);
    let state = std::mem::take(&mut *state.lock().map_err(|_| WriteFailure::Aborted)?);
    if !state.complete {
        return Err(WriteFailure::Aborted);
    }
    if state.size != expected_size {
        return Err(WriteFailure::Size(state.size));
    }
    let actual = Digest::from_bytes(state.hasher.finalize().into());
    if actual != digest {
        return Err(WriteFailure::Mismatch(actual));
    }
    index.map_err(WriteFailure::Layer)
}

/// Writes chunks into `writer` until [`Chunk::End`], then commits, verifying the digest. A
/// blob longer than its descriptor is refused as soon as it is, not after it filled the disk.
fn write_blob<B: AsRef<[u8]>>(
    mut writer: BlobWriter,
    mut receiver: mpsc::Receiver<Chunk<B>>,
    digest: Digest,
    expected_size: u64,
) -> Result<(), WriteFailure> {
    loop {
        match receiver.blocking_recv() {
            Some(Chunk::Data(data)) => {
                writer.write_all(data.as_ref()).map_err(WriteFailure::Io)?;
                if writer.bytes_written() > expected_size {
                    return Err(WriteFailure::Size(writer.bytes_written()));
                }
            }
            Some(Chunk::End) => break,
            // Dropping the writer removes its temporary file: nothing partial is kept.
            None => return Err(WriteFailure::Aborted),
        }
    }
    if writer.bytes_written() != expected_size {
        return Err(WriteFailure::Size(writer.bytes_written()));
    }
    writer.commit(Some(&digest)).map_err(WriteFailure::Store)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    const D4: &str = "sha256:4444444444444444444444444444444444444444444444444444444444444444";

    fn puller(image: &ImageRef) -> Puller<'_> {
        Puller::new(image, &PullOptions::default()).expect("client builds offline")
    }

    fn index() -> Index {
        let entry = |digest: &str, platform: &str| {
            format!(
                r#"{{"mediaType": "{}", "digest": "{digest}", "size": 10, "platform": {platform}}}"#,
                media_types::OCI_MANIFEST
            )
        };
        let entries = [
            entry(D4, r#"{"architecture": "unknown", "os": "unknown"}"#),
            entry(D1, r#"{"architecture": "amd64", "os": "linux"}"#),
            entry(
                D2,
                r#"{"architecture": "arm64", "os": "linux", "variant": "v8"}"#,
            ),
            entry(D3, r#"{"architecture": "arm", "os": "linux"}"#),
        ];
        let text = format!(
            r#"{{"schemaVersion": 2, "manifests": [{}]}}"#,
            entries.join(",")
        );
        serde_json::from_str(&text).expect("index parses")
    }

    #[test]
    fn index_entries_match_platforms_through_aliases() {
        let image = ImageRef::parse("example.com/app:1").expect("reference");
        let puller = puller(&image);
        let index = index();
        let cases = [
            ("linux/amd64", D1),
            ("linux/x86_64", D1),
            ("linux/arm64", D2),
            ("linux/arm64/v8", D2),
            ("linux/aarch64", D2),
            // An entry without variant is `arm/v7` in containerd's normal form.
            ("linux/arm", D3),
            ("linux/arm/v7", D3),
        ];
        for (platform, digest) in cases {
            let platform = Platform::parse(platform).expect("platform");
            let got = puller
                .select(&index, &platform)
                .map(|d| d.digest.to_string());
            assert_eq!(got.ok().as_deref(), Some(digest), "platform {platform}");
        }
        // A variant is not served by an entry of another variant of the architecture.
        let wanted = Platform {
            os: "linux".to_string(),
            architecture: "arm".to_string(),
            variant: "v6".to_string(),
        };
        assert!(puller.select(&index, &wanted).is_err());
    }

    #[test]
    fn no_match_lists_the_platforms_without_attestations() {
        let image = ImageRef::parse("example.com/app:1").expect("reference");
        let platform = Platform::parse("linux/ppc64le").expect("platform");
        let error = puller(&image).select(&index(), &platform).map(|d| d.digest);
        let Err(RegistryError::NoMatchingPlatform { available, .. }) = &error else {
            panic!("expected no matching platform, got {error:?}");
        };
        assert_eq!(available, &["linux/amd64", "linux/arm64/v8", "linux/arm"]);
        let text = error.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(text.contains("platform `linux/ppc64le`"), "{text}");
        assert!(text.contains("registry `example.com`"), "{text}");
        assert!(text.contains("\nhint: "), "{text}");
    }

    fn parse(bytes: &str) -> (Result<&'static str, String>, String) {
        let image = ImageRef::parse("example.com/app:1").expect("reference");
        let mut descriptor = Descriptor {
            media_type: String::new(),
            digest: Digest::of(bytes.as_bytes()),
            size: bytes.len() as u64,
            annotations: None,
            platform: None,
        };
        let kind = puller(&image).parse_manifest(bytes.as_bytes(), &mut descriptor);
        let kind = kind.map(|f| {
            if matches!(f, Fetched::Index(_)) {
                "index"
            } else {
                "image"
            }
        });
        (kind.map_err(|e| e.to_string()), descriptor.media_type)
    }

    #[test]
    fn manifests_are_told_apart_without_media_type() {
        let index = r#"{"schemaVersion": 2, "manifests": []}"#;
        assert_eq!(
            parse(index),
            (Ok("index"), media_types::OCI_INDEX.to_string())
        );
        let image = format!(
            r#"{{"schemaVersion": 2, "config": {{"mediaType": "{}", "digest": "{D1}",
            "size": 2}}, "layers": []}}"#,
            media_types::OCI_CONFIG
        );
        assert_eq!(
            parse(&image),
            (Ok("image"), media_types::OCI_MANIFEST.to_string())
        );
        let list = format!(
            r#"{{"schemaVersion": 2, "mediaType": "{}", "manifests": []}}"#,
            media_types::DOCKER_MANIFEST_LIST
        );
        assert_eq!(
            parse(&list),
            (Ok("index"), media_types::DOCKER_MANIFEST_LIST.to_string())
        );
    }

    #[test]
    fn unsupported_manifests_are_refused() {
        let cases = [
            (
                r#"{"schemaVersion": 1, "fsLayers": []}"#,
                "schema version 1 is not supported",
            ),
            (r#"{"layers": []}"#, "has no `schemaVersion`"),
            (
                r#"{"schemaVersion": 2, "mediaType": "text/plain"}"#,
                "`text/plain` is not",
            ),
            (
                r#"{"schemaVersion": 2, "manifests": "x"}"#,
                "does not parse",
            ),
            ("not json", "does not parse"),
        ];
        for (bytes, needle) in cases {
            let (result, _) = parse(bytes);
            let text = result.err().unwrap_or_default();
            assert!(text.contains(needle), "{bytes}: {text:?} lacks {needle:?}");
            assert!(
                text.contains("of repository `app` from registry `example.com`"),
                "{text}"
            );
        }
    }
}

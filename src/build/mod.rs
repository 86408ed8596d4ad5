//! The build engine: runs the plan's stages against the content store and assembles
//! the target stage into an OCI image, then writes the local outputs.
//!
//! A stage never unpacks its base: FROM yields the base's layers (kept by digest) and
//! a [`FsView`](crate::layer::index::FsView) over their tar headers; COPY, ADD and
//! WORKDIR add layers computed against that view; metadata instructions change the
//! config. Only files that a step copies out of another stage or image are extracted,
//! and only those.

pub mod config;
pub mod context;
pub mod copy;
pub mod push;
pub mod report;
mod run;
mod sources;
mod stage;
pub mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::frontend::{self, Diagnostic, Severity};
use crate::layer::compress::Compression;
use crate::oci::digest::Digest;
use crate::oci::image::{Descriptor, ImageConfig, Manifest};
use crate::oci::media_types;
use crate::plan::{self, PlanOptions};
use crate::platform::Platform;
use crate::store::Store;
use report::{Event, Reporter};
pub use stage::{LayerOrigin, LayerRecord, StageState};

/// Where a `--build-context NAME=...` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory: its files become the stage's root (FROM) or a source tree.
    Dir(PathBuf),
    /// An image in a local OCI layout, with an optional tag.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` to use.
        tag: Option<String>,
    },
    /// Another image reference to use instead of the name.
    Image(String),
}

impl NamedContext {
    /// Parses the value of `--build-context NAME=VALUE`.
    pub fn parse(value: &str) -> NamedContext {
        if let Some(rest) = value.strip_prefix("docker-image://") {
            return NamedContext::Image(rest.to_string());
        }
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            // A `:tag` suffix names the image, unless it is part of the directory name.
            return match rest.rsplit_once(':') {
                Some((dir, tag)) if !tag.contains('/') && !tag.is_empty() => {
                    NamedContext::OciLayout {
                        dir: dir.into(),
                        tag: Some(tag.to_string()),
                    }
                }
                _ => NamedContext::OciLayout {
                    dir: rest.into(),
                    tag: None,
                },
            };
        }
        NamedContext::Dir(PathBuf::from(value))
    }
}

/// Everything a build is asked to do.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile; `Dockerfile` in the context when absent.
    pub dockerfile: Option<PathBuf>,
    /// Image references to tag the result with.
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--label` values, set on the final image last (they win).
    pub labels: BTreeMap<String, String>,
    /// The stage to build.
    pub target: Option<String>,
    /// The platform to build for; this machine's when absent.
    pub platform: Option<Platform>,
    /// `--build-context` entries by name.
    pub build_contexts: BTreeMap<String, NamedContext>,
    /// Write an OCI image layout here.
    pub oci_layout: Option<PathBuf>,
    /// Write a docker-archive tarball here.
    pub tar: Option<PathBuf>,
    /// Write the manifest digest here.
    pub digest_file: Option<PathBuf>,
    /// Write the build metadata JSON here.
    pub metadata_file: Option<PathBuf>,
    /// Clamp every time to this (seconds since the epoch) for reproducible output.
    pub source_date_epoch: Option<i64>,
    /// Accepted for compatibility: there is no step cache yet, so every step runs.
    pub no_cache: bool,
    /// The content store; the user's cache directory when absent.
    pub cache_dir: Option<PathBuf>,
    /// How new layers are compressed.
    pub compression: Compression,
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Push the image to the repositories its tags name.
    pub push: bool,
    /// A PEM file of extra CA certificates for registries (`--registry-ca`).
    pub registry_ca: Option<PathBuf>,
    /// Credentials given explicitly (`--username` with `--password-stdin`), for every
    /// registry pushed to; otherwise each registry's are looked up.
    pub credentials: Option<crate::registry::ExplicitCredentials>,
    /// How RUN steps are isolated (`--isolation`).
    pub isolation: crate::sandbox::Isolation,
    /// Build secrets for `RUN --mount=type=secret`, by id.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Annotations of the image manifest.
    pub annotations: BTreeMap<String, String>,
}

/// Where a build secret's value comes from (`--secret id=ID,env=VAR` or `,src=FILE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the builder.
    Env(String),
    /// A file.
    File(PathBuf),
    /// A value the caller holds (the Action's `secrets` input).
    Value(crate::registry::Secret),
}

impl SecretSource {
    /// Parses a `--secret` value: `id=ID` plus `env=VAR` or `src=FILE` (`source=` too); with
    /// neither, the variable named like the id. Returns the id and the source.
    pub fn parse(value: &str) -> Result<(String, SecretSource), String> {
        let mut id = None;
        let mut source = None;
        for part in value.split(',') {
            let (key, val) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid secret `{value}`: expected key=value pairs"))?;
            match key.trim() {
                "id" => id = Some(val.to_string()),
                "env" => source = Some(SecretSource::Env(val.to_string())),
                "src" | "source" => source = Some(SecretSource::File(PathBuf::from(val))),
                "type" if val == "env" || val == "file" => {}
                other => {
                    return Err(format!(
                        "invalid secret `{value}`: unknown key `{other}` (expected id, env or src)"
                    ));
                }
            }
        }
        let id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| format!("invalid secret `{value}`: `id=` is required"))?;
        let source = source.unwrap_or_else(|| SecretSource::Env(id.clone()));
        Ok((id, source))
    }
}

impl BuildOptions {
    /// Options for building `context` with defaults for everything else.
    pub fn new(context: impl Into<PathBuf>) -> BuildOptions {
        BuildOptions {
            context: context.into(),
            dockerfile: None,
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            target: None,
            platform: None,
            build_contexts: BTreeMap::new(),
            oci_layout: None,
            tar: None,
            digest_file: None,
            metadata_file: None,
            source_date_epoch: None,
            no_cache: false,
            cache_dir: None,
            compression: Compression::Gzip,
            insecure_registries: Vec::new(),
            push: false,
            registry_ca: None,
            credentials: None,
            isolation: crate::sandbox::Isolation::Auto,
            secrets: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    fn registry_access(&self) -> sources::RegistryAccess {
        sources::RegistryAccess {
            insecure: self.insecure_registries.clone(),
            ca: self.registry_ca.clone(),
        }
    }

    fn dockerfile_path(&self) -> PathBuf {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
    }
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile has errors; each line is `FILE:LINE:COL: error: message`.
    #[error("the Dockerfile has errors:\n{}", .0.join("\n"))]
    Dockerfile(Vec<String>),
    /// One instruction failed.
    #[error("{file}:{line}:{column}: `{instruction}` failed: {message}")]
    Step {
        /// The Dockerfile.
        file: String,
        /// The instruction's line.
        line: usize,
        /// The instruction's column.
        column: usize,
        /// The instruction as written (first line).
        instruction: String,
        /// What went wrong, with the cause chain.
        message: String,
    },
    /// Reading an input or writing an output failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Writing an output failed.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// Writing a layer failed.
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    /// Pushing to a registry failed.
    #[error(transparent)]
    Push(Box<crate::registry::RegistryError>),
    /// Credentials for a registry could not be read.
    #[error(transparent)]
    Credentials(Box<crate::registry::AuthError>),
    /// A build option is wrong.
    #[error("{0}")]
    Options(String),
}

/// One layer of the built image, for reports and the metadata file.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    /// The compressed blob's digest.
    pub digest: Digest,
    /// The uncompressed tar's digest.
    pub diff_id: Digest,
    /// Compressed size in bytes.
    pub size: u64,
    /// The layer's media type.
    pub media_type: String,
    /// Whether it came from a base image or was built here.
    pub origin: LayerOrigin,
    /// For base layers, the image reference they came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What a successful build produced.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutcome {
    /// The image manifest's descriptor.
    pub manifest: Descriptor,
    /// The config digest, the image id.
    pub config_digest: Digest,
    /// The tags given.
    pub tags: Vec<String>,
    /// The platform built.
    pub platform: String,
    /// Every layer, lowest first.
    pub layers: Vec<LayerReport>,
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// RFC 3339 UTC time for image configs (`2024-01-02T03:04:05Z`).
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for the proleptic calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Builds the Dockerfile as `options` say, reporting progress to `reporter`.
pub fn build(options: &BuildOptions, reporter: &dyn Reporter) -> Result<BuildOutcome, BuildError> {
    let dockerfile_path = options.dockerfile_path();
    let label = dockerfile_path.display().to_string();
    let bytes = std::fs::read(&dockerfile_path).map_err(|source| BuildError::Io {
        action: "read the Dockerfile",
        path: dockerfile_path.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let (dockerfile, diagnostics) = frontend::parse(&text);
    fail_on_errors(&label, &diagnostics, reporter)?;
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let plan_options = PlanOptions {
        build_args: options.build_args.clone(),
        target: options.target.clone(),
        target_platform: platform.clone(),
        build_platform: Platform::host(),
    };
    let (plan, diagnostics) = plan::plan(&dockerfile, &plan_options);
    fail_on_errors(&label, &diagnostics, reporter)?;
    let Some(plan) = plan else {
        return Err(BuildError::Dockerfile(vec![format!(
            "{label}: the Dockerfile has no plan"
        )]));
    };

    let store_root = options
        .cache_dir
        .clone()
        .unwrap_or_else(Store::default_root);
    let store = Store::open(&store_root)?;
    let epoch = options.source_date_epoch.or_else(|| {
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    let mut builder = stage::Builder::new(stage::BuilderSetup {
        store: &store,
        options,
        plan: &plan,
        dockerfile_label: label.clone(),
        platform: platform.clone(),
        epoch,
        now: now_seconds(),
        reporter,
    })?;
    for &index in &plan.order {
        builder.run_stage(index)?;
    }
    let target = builder.take_stage(plan.target).ok_or_else(|| {
        BuildError::Options(format!("target stage {} was not built", plan.target))
    })?;
    if options.oci_layout.is_some() || options.tar.is_some() {
        sources::ensure_blobs(&store, &target.layers, &options.registry_access())
            .map_err(BuildError::Options)?;
    }
    let layers = target.layers.clone();
    let outcome = assemble(&store, target, options, epoch, &platform)?;
    write_outputs(&store, &outcome, options, reporter)?;
    if options.push {
        push::push(
            &store,
            &outcome,
            &layers,
            options,
            options.credentials.as_ref(),
            reporter,
        )?;
    }
    Ok(outcome)
}

/// Reports warnings and fails on errors.
fn fail_on_errors(
    label: &str,
    diagnostics: &[Diagnostic],
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    let mut errors = Vec::new();
    for diagnostic in diagnostics {
        let line = diagnostic.render(label);
        match diagnostic.severity {
            Severity::Error => errors.push(line),
            Severity::Warning => reporter.report(&Event::Warning { message: line }),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(BuildError::Dockerfile(errors))
    }
}

/// Turns the target stage into a manifest and config in the store.
fn assemble(
    store: &Store,
    target: StageState,
    options: &BuildOptions,
    epoch: Option<i64>,
    platform: &Platform,
) -> Result<BuildOutcome, BuildError> {
    let StageState {
        mut config, layers, ..
    } = target;
    if !options.labels.is_empty() {
        let labels = config.config.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(options.labels.clone());
    }
    config.created = Some(rfc3339(epoch.unwrap_or_else(now_seconds)));
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id).collect();
    let config_bytes = config_json(&config)?;
    let config_digest = store.write_blob(&config_bytes)?;
    let config_descriptor = Descriptor {
        media_type: media_types::OCI_CONFIG.to_string(),
        digest: config_digest,
        size: config_bytes.len() as u64,
        annotations: None,
        platform: None,
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.to_string()),
        config: config_descriptor,
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations: (!options.annotations.is_empty()).then(|| options.annotations.clone()),
    };
    let manifest_bytes = serde_json::to_vec(&manifest)
        .map_err(|e| BuildError::Options(format!("failed to encode the manifest: {e}")))?;
    let manifest_digest = store.write_blob(&manifest_bytes)?;
    let descriptor = Descriptor {
        media_type: media_types::OCI_MANIFEST.to_string(),
        digest: manifest_digest,
        size: manifest_bytes.len() as u64,
        annotations: None,
        platform: None,
    };
    let reports = layers
        .iter()
        .map(|l| LayerReport {
            digest: l.descriptor.digest,
            diff_id: l.diff_id,
            size: l.descriptor.size,
            media_type: l.descriptor.media_type.clone(),
            origin: l.origin,
            source: l.source.clone(),
        })
        .collect();
    Ok(BuildOutcome {
        manifest: descriptor,
        config_digest,
        tags: options.tags.clone(),
        platform: platform.to_string(),
        layers: reports,
    })
}

fn config_json(config: &ImageConfig) -> Result<Vec<u8>, BuildError> {
    serde_json::to_vec(config)
        .map_err(|e| BuildError::Options(format!("failed to encode the image config: {e}")))
}

/// The metadata file's content: BuildKit's keys plus the layers.
fn metadata_json(outcome: &BuildOutcome) -> serde_json::Value {
    serde_json::json!({
        "containerimage.digest": outcome.manifest.digest.to_string(),
        "containerimage.config.digest": outcome.config_digest.to_string(),
        "containerimage.descriptor": outcome.manifest,
        "image.name": outcome.tags.join(","),
        "tags": outcome.tags,
        "platform": outcome.platform,
        "layers": outcome.layers,
    })
}

fn write_file(path: &Path, bytes: &[u8], action: &'static str) -> Result<(), BuildError> {
    std::fs::write(path, bytes).map_err(|source| BuildError::Io {
        action,
        path: path.to_path_buf(),
        source,
    })
}

fn write_outputs(
    store: &Store,
    outcome: &BuildOutcome,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    if let Some(dir) = &options.oci_layout {
        // OCI ref names are the tag part only (`1.0`), as buildah and skopeo write them.
        let names: Vec<String> = options.tags.iter().map(|t| ref_name(t)).collect();
        crate::output::write_oci_layout(dir, store, &outcome.manifest, &names)?;
        reporter.report(&Event::OutputWritten {
            kind: "oci-layout",
            path: dir.display().to_string(),
        });
    }
    if let Some(path) = &options.tar {
        crate::output::write_docker_archive(path, store, &outcome.manifest, &options.tags)?;
        reporter.report(&Event::OutputWritten {
            kind: "docker-archive",
            path: path.display().to_string(),
        });
    }
    if let Some(path) = &options.digest_file {
        write_file(
            path,
            outcome.manifest.digest.to_string().as_bytes(),
            "write the digest file",
        )?;
    }
    if let Some(path) = &options.metadata_file {
        let json = serde_json::to_vec_pretty(&metadata_json(outcome))
            .map_err(|e| BuildError::Options(format!("failed to encode the metadata: {e}")))?;
        write_file(path, &json, "write the metadata file")?;
    }
    Ok(())
}

/// The tag of a reference (`latest` without one), for OCI layout ref names.
fn ref_name(reference: &str) -> String {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag.to_string(),
        _ => "latest".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ref_names_are_tags() {
        assert_eq!(ref_name("app:1.0"), "1.0");
        assert_eq!(ref_name("localhost:5000/app"), "latest");
        assert_eq!(ref_name("localhost:5000/app:v2"), "v2");
        assert_eq!(ref_name("app"), "latest");
    }

    #[test]
    fn named_contexts_parse() {
        assert_eq!(
            NamedContext::parse("docker-image://alpine:3"),
            NamedContext::Image("alpine:3".into())
        );
        assert_eq!(
            NamedContext::parse("oci-layout:///tmp/l:v1"),
            NamedContext::OciLayout {
                dir: "/tmp/l".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            NamedContext::parse("./dir"),
            NamedContext::Dir("./dir".into())
        );
    }
}

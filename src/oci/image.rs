//! The JSON documents of an image: descriptors, manifests, indexes and the image config.
//!
//! Field names follow the OCI image spec and Docker's image JSON exactly. `None` fields and
//! empty histories are left out when serializing, and every map is a `BTreeMap`, so the same
//! value always serializes to the same bytes (and so to the same digest). Image configs read
//! from real images keep the fields this crate does not model in `extra`, so rewriting a base
//! image's config does not drop them.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::media_types;
use crate::platform::Platform;

/// Well-known annotation keys.
pub mod annotations {
    /// The tag of a manifest inside an OCI layout's `index.json`.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// The full image reference containerd and Docker record next to [`REF_NAME`].
    pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
}

/// Why an OCI document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The bytes are not valid JSON for this document type.
    #[error("invalid `{media_type}` document")]
    Json {
        /// The media type the document was read as.
        media_type: &'static str,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The document's `schemaVersion` is not 2.
    #[error("unsupported schema version {found} in `{media_type}` document, expected 2")]
    SchemaVersion {
        /// The media type the document was read as.
        media_type: &'static str,
        /// The version found.
        found: u32,
    },
    /// The document's own `mediaType` says it is something else.
    #[error("expected a `{expected}` document, found `{found}`")]
    UnexpectedMediaType {
        /// The media type the document was read as.
        expected: &'static str,
        /// The `mediaType` field of the document.
        found: String,
    },
    /// Serializing failed (only possible with exotic values in `extra` maps).
    #[error("failed to serialize `{media_type}` document")]
    Serialize {
        /// The media type of the document being written.
        media_type: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

fn from_json<T: DeserializeOwned>(bytes: &[u8], media_type: &'static str) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|source| OciError::Json { media_type, source })
}

fn to_json<T: Serialize>(value: &T, media_type: &'static str) -> Result<Vec<u8>, OciError> {
    serde_json::to_vec(value).map_err(|source| OciError::Serialize { media_type, source })
}

/// Checks the common header of manifests and indexes.
fn check_header(
    schema_version: u32,
    own_media_type: Option<&str>,
    expected: &'static str,
    accepts: fn(&str) -> bool,
) -> Result<(), OciError> {
    if schema_version != 2 {
        return Err(OciError::SchemaVersion {
            media_type: expected,
            found: schema_version,
        });
    }
    match own_media_type {
        Some(found) if !accepts(found) => Err(OciError::UnexpectedMediaType {
            expected,
            found: found.to_string(),
        }),
        _ => Ok(()),
    }
}

/// A reference to a blob: its media type, digest and size, plus optional annotations and
/// (in indexes) the platform of the manifest it points to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: String,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// Free-form metadata, such as [`annotations::REF_NAME`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The platform of the manifest this points to, in indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
}

impl Descriptor {
    /// The descriptor of `bytes` as a blob of type `media_type`.
    pub fn new(media_type: impl Into<String>, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            annotations: None,
            platform: None,
        }
    }

    /// The value of annotation `key`, if any.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The `org.opencontainers.image.ref.name` annotation, the tag in an OCI layout.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(annotations::REF_NAME)
    }
}

/// The platform of a manifest as written in an index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformSpec {
    /// CPU architecture, such as `amd64`.
    pub architecture: String,
    /// Operating system, such as `linux`.
    pub os: String,
    /// Architecture variant, such as `v7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system version (Windows images).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required operating system features (Windows images).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

impl PlatformSpec {
    /// The index form of `platform`.
    pub fn from_platform(platform: &Platform) -> PlatformSpec {
        PlatformSpec {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
            os_version: None,
            os_features: None,
        }
    }

    /// This platform normalized the way [`Platform::parse`] does (`arm64/v8` is `arm64`), or
    /// `None` when it is not a platform `Platform` can represent.
    pub fn to_platform(&self) -> Option<Platform> {
        let text = match &self.variant {
            Some(variant) if !variant.is_empty() => {
                format!("{}/{}/{variant}", self.os, self.architecture)
            }
            _ => format!("{}/{}", self.os, self.architecture),
        };
        Platform::parse(&text).ok()
    }

    /// Whether this is `platform`, after normalizing both spellings.
    pub fn matches(&self, platform: &Platform) -> bool {
        self.to_platform().is_some_and(|p| p == *platform)
    }
}

/// An image manifest: one config and the layers, for one platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`media_types::OCI_MANIFEST`] or [`media_types::DOCKER_MANIFEST`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// The layer blobs, lowest first.
    pub layers: Vec<Descriptor>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// Parses an OCI or Docker image manifest.
    pub fn from_slice(bytes: &[u8]) -> Result<Manifest, OciError> {
        let manifest: Manifest = from_json(bytes, media_types::OCI_MANIFEST)?;
        check_header(
            manifest.schema_version,
            manifest.media_type.as_deref(),
            media_types::OCI_MANIFEST,
            media_types::is_manifest,
        )?;
        Ok(manifest)
    }

    /// The canonical JSON bytes of this manifest.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, OciError> {
        to_json(self, media_types::OCI_MANIFEST)
    }
}

/// An image index: manifests for several platforms, or the `index.json` of a layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`media_types::OCI_INDEX`] or [`media_types::DOCKER_MANIFEST_LIST`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests (or nested indexes).
    pub manifests: Vec<Descriptor>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    /// An OCI index of `manifests`.
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.to_string()),
            manifests,
            annotations: None,
        }
    }

    /// Parses an OCI index or a Docker manifest list.
    pub fn from_slice(bytes: &[u8]) -> Result<Index, OciError> {
        let index: Index = from_json(bytes, media_types::OCI_INDEX)?;
        check_header(
            index.schema_version,
            index.media_type.as_deref(),
            media_types::OCI_INDEX,
            media_types::is_index,
        )?;
        Ok(index)
    }

    /// The canonical JSON bytes of this index.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, OciError> {
        to_json(self, media_types::OCI_INDEX)
    }
}

/// The value type of Docker's set-like maps (`ExposedPorts`, `Volumes`): always `{}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// The image configuration: what to run, and the identity of the root file system.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made the image (`MAINTAINER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// CPU architecture, such as `amd64`.
    pub architecture: String,
    /// Operating system, such as `linux`.
    pub os: String,
    /// Architecture variant, such as `v7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// How to run a container of this image.
    #[serde(default)]
    pub config: ContainerConfig,
    /// The uncompressed layer digests.
    pub rootfs: RootFs,
    /// One entry per Dockerfile instruction, including those that made no layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields this crate does not model (`container_config`, `docker_version`, BuildKit's
    /// build info, ...), kept so that they survive a read/write round trip.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageConfig {
    /// Parses an image config (OCI or Docker; they are the same JSON).
    pub fn from_slice(bytes: &[u8]) -> Result<ImageConfig, OciError> {
        from_json(bytes, media_types::OCI_CONFIG)
    }

    /// The canonical JSON bytes of this config.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, OciError> {
        to_json(self, media_types::OCI_CONFIG)
    }
}

/// The runtime part of the image config, with Docker's PascalCase names.
///
/// A JSON `null` reads as `None` like an absent field: Docker writes `"Entrypoint": null` in
/// some images, and no tool gives the two a different meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `USER`: `user[:group]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `EXPOSE`: `80/tcp` and the like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, EmptyObject>>,
    /// `ENV`: `NAME=value` strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, EmptyObject>>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `LABEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `SHELL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// `ONBUILD` triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// Whether `Cmd`/`Entrypoint` are already escaped (Windows shell form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Fields this crate does not model (`Hostname`, `AttachStdin`, `Image`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `HEALTHCHECK` settings; durations are in nanoseconds, as Docker stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Time before a check counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Grace period after start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    /// Time between checks during the start period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    /// Consecutive failures before the container is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// The root file system: the uncompressed digests of the layers, lowest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Digests of the uncompressed layer tars.
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of the image's history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When the step ran, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction, as shown by `docker history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who made the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A free-form comment (BuildKit writes `buildkit.dockerfile.v0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the step made no layer (so it has no entry in `rootfs.diff_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const BUSYBOX_LAYER: &str =
        "sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f";

    /// Shaped like the config of docker.io/library/busybox (built by the classic builder):
    /// `null` for unset fields, `container_config` and other fields outside the OCI spec.
    const BUSYBOX_CONFIG: &str = r##"{
        "architecture": "amd64",
        "config": {
            "Hostname": "", "Domainname": "", "User": "",
            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
            "Tty": false, "OpenStdin": false, "StdinOnce": false,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "Image": "sha256:9a8a0d1c7a5e2b41f3e0bbd1d6e6a1e5a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6",
            "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null
        },
        "container": "0b5d3b6b2c1f41d2f1a5e3c9d7b8a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9",
        "container_config": {
            "Hostname": "0b5d3b6b2c1f", "Cmd": ["/bin/sh", "-c", "#(nop) ", "CMD [\"sh\"]"],
            "Labels": {}
        },
        "created": "2023-07-18T23:19:33.655005962Z",
        "docker_version": "20.10.23",
        "history": [
            {"created": "2023-07-18T23:19:33.538571854Z",
             "created_by": "/bin/sh -c #(nop) ADD file:7e9002edaafd4e4579b65c8f0aaabde1aeb7fd3f8d95579f7fd3443cef785fd1 in / "},
            {"created": "2023-07-18T23:19:33.655005962Z",
             "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true}
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [
            "sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f"
        ]}
    }"##;

    /// Shaped like a BuildKit-built config: every Dockerfile-settable field, a variant, history
    /// comments and BuildKit's own top-level field.
    const BUILDKIT_CONFIG: &str = r#"{
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "created": "2024-05-01T10:00:00.123456789Z",
        "author": "Jane Doe <jane@example.com>",
        "config": {
            "User": "app:app",
            "ExposedPorts": {"8080/tcp": {}, "9090/udp": {}},
            "Env": ["PATH=/usr/bin:/bin", "APP_MODE=prod"],
            "Entrypoint": ["/usr/local/bin/app"],
            "Cmd": ["--serve", "--port=8080"],
            "Volumes": {"/data": {}},
            "WorkingDir": "/srv",
            "Labels": {"org.opencontainers.image.source": "https://example.com/app"},
            "StopSignal": "SIGTERM",
            "Healthcheck": {
                "Test": ["CMD-SHELL", "wget -q -O- http://localhost:8080/health || exit 1"],
                "Interval": 30000000000, "Timeout": 5000000000, "StartPeriod": 10000000000,
                "StartInterval": 2000000000, "Retries": 3
            },
            "Shell": ["/bin/ash", "-eo", "pipefail", "-c"],
            "OnBuild": ["RUN echo child build"],
            "ArgsEscaped": true
        },
        "rootfs": {"type": "layers", "diff_ids": [
            "sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ]},
        "history": [
            {"created": "2024-04-01T00:00:00Z", "created_by": "ADD alpine-minirootfs.tar.gz / # buildkit",
             "comment": "buildkit.dockerfile.v0"},
            {"created": "2024-05-01T10:00:00Z", "created_by": "ENV APP_MODE=prod",
             "comment": "buildkit.dockerfile.v0", "empty_layer": true},
            {"created": "2024-05-01T10:00:00Z", "created_by": "RUN /bin/sh -c touch /x # buildkit",
             "author": "Jane Doe <jane@example.com>", "comment": "buildkit.dockerfile.v0"}
        ],
        "moby.buildkit.buildinfo.v1": "eyJmcm9udGVuZCI6ImRvY2tlcmZpbGUudjAifQ=="
    }"#;

    const OCI_MANIFEST: &str = r#"{
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 1457},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": "sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f",
            "size": 2152262}],
        "annotations": {"org.opencontainers.image.created": "2024-05-01T10:00:00Z"}
    }"#;

    const DOCKER_MANIFEST_LIST: &str = r#"{
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": "sha256:3d24ee258efc3bfe4066a1a9fb83febf6dc0b1548dfe896161533668281c9f4f",
             "size": 528, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             "size": 528, "platform": {"architecture": "amd64", "os": "windows",
                "os.version": "10.0.17763.5820", "os.features": ["win32k"]}}
        ]
    }"#;

    /// Removes `null` object members: they read as `None` and are not written back.
    fn strip_nulls(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, strip_nulls(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
            other => other,
        }
    }

    /// Parses `text`, writes it back, and checks that nothing but `null`s was lost and that
    /// the written form parses to the same value.
    fn check_round_trip<T: PartialEq + std::fmt::Debug>(
        text: &str,
        parse: fn(&[u8]) -> Result<T, OciError>,
        write: fn(&T) -> Result<Vec<u8>, OciError>,
    ) -> T {
        let parsed = parse(text.as_bytes()).expect("parse sample");
        let written = write(&parsed).expect("serialize");
        let original: Value = serde_json::from_str(text).expect("sample is JSON");
        let rewritten: Value = serde_json::from_slice(&written).expect("output is JSON");
        assert_eq!(rewritten, strip_nulls(original));
        assert_eq!(parse(&written).expect("reparse"), parsed);
        assert_eq!(
            write(&parsed).expect("serialize again"),
            written,
            "not deterministic"
        );
        parsed
    }

    #[test]
    fn busybox_config_round_trips() {
        let config = check_round_trip(
            BUSYBOX_CONFIG,
            ImageConfig::from_slice,
            ImageConfig::to_json_bytes,
        );
        assert_eq!(config.config.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(config.config.entrypoint, None);
        assert_eq!(config.config.user.as_deref(), Some(""));
        assert_eq!(
            config.rootfs.diff_ids,
            [BUSYBOX_LAYER.parse::<Digest>().expect("digest")]
        );
        assert_eq!(config.history[1].empty_layer, Some(true));
        assert!(config.extra.contains_key("container_config"));
        assert_eq!(config.config.extra.get("Tty"), Some(&Value::Bool(false)));
    }

    #[test]
    fn buildkit_config_round_trips() {
        let config = check_round_trip(
            BUILDKIT_CONFIG,
            ImageConfig::from_slice,
            ImageConfig::to_json_bytes,
        );
        let health = config.config.healthcheck.as_ref().expect("healthcheck");
        assert_eq!(health.interval, Some(30_000_000_000));
        assert_eq!(health.start_interval, Some(2_000_000_000));
        assert_eq!(health.retries, Some(3));
        assert_eq!(config.config.args_escaped, Some(true));
        assert_eq!(config.variant.as_deref(), Some("v8"));
        assert_eq!(
            config.author.as_deref(),
            Some("Jane Doe <jane@example.com>")
        );
        assert_eq!(
            config.history[2].author.as_deref(),
            Some("Jane Doe <jane@example.com>")
        );
        let ports: Vec<&str> = config
            .config
            .exposed_ports
            .iter()
            .flatten()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(ports, ["8080/tcp", "9090/udp"]);
        assert!(config.extra.contains_key("moby.buildkit.buildinfo.v1"));
        assert!(config.config.extra.is_empty());
    }

    #[test]
    fn manifest_and_index_round_trip() {
        let manifest =
            check_round_trip(OCI_MANIFEST, Manifest::from_slice, Manifest::to_json_bytes);
        assert_eq!(manifest.layers[0].size, 2_152_262);
        let index = check_round_trip(
            DOCKER_MANIFEST_LIST,
            Index::from_slice,
            Index::to_json_bytes,
        );
        let windows = index.manifests[1].platform.as_ref().expect("platform");
        assert_eq!(windows.os_version.as_deref(), Some("10.0.17763.5820"));
        assert_eq!(
            windows.os_features.as_deref(),
            Some(&["win32k".to_string()][..])
        );
    }

    #[test]
    fn none_fields_are_skipped() {
        fn check<T: Serialize>(value: &T, expected: &str) {
            let json = serde_json::to_string(value).expect("serialize");
            assert_eq!(json, expected);
        }
        let digest = Digest::of(b"");
        check(
            &ImageConfig {
                architecture: "amd64".into(),
                os: "linux".into(),
                rootfs: RootFs::default(),
                ..ImageConfig::default()
            },
            r#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        check(&History::default(), "{}");
        check(&HealthConfig::default(), "{}");
        check(
            &ContainerConfig {
                args_escaped: Some(false),
                ..ContainerConfig::default()
            },
            r#"{"ArgsEscaped":false}"#,
        );
        check(
            &Descriptor::new(media_types::OCI_CONFIG, b""),
            &format!(
                r#"{{"mediaType":"{}","digest":"{digest}","size":0}}"#,
                media_types::OCI_CONFIG
            ),
        );
        check(
            &Index::new(Vec::new()),
            &format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
                media_types::OCI_INDEX
            ),
        );
        check(
            &PlatformSpec {
                architecture: "arm".into(),
                os: "linux".into(),
                variant: Some("v6".into()),
                ..PlatformSpec::default()
            },
            r#"{"architecture":"arm","os":"linux","variant":"v6"}"#,
        );
    }

    #[test]
    fn unknown_fields_survive_and_are_sorted() {
        let text = r#"{"zeta":1,"architecture":"amd64","os":"linux","alpha":{"b":2,"a":[1]},
            "config":{"Zz":true,"Cmd":["x"],"Aa":null},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config = ImageConfig::from_slice(text.as_bytes()).expect("parse");
        let json = String::from_utf8(config.to_json_bytes().expect("serialize")).expect("utf-8");
        assert_eq!(
            json,
            r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["x"],"Aa":null,"Zz":true},"rootfs":{"type":"layers","diff_ids":[]},"alpha":{"a":[1],"b":2},"zeta":1}"#
        );
    }

    #[test]
    fn descriptor_new_hashes_the_bytes() {
        let descriptor = Descriptor::new(media_types::OCI_LAYER_TAR, b"hello");
        assert_eq!(descriptor.digest, Digest::of(b"hello"));
        assert_eq!(descriptor.size, 5);
        assert_eq!(descriptor.ref_name(), None);
        let named = Descriptor {
            annotations: Some([(annotations::REF_NAME.to_string(), "v1".to_string())].into()),
            ..descriptor
        };
        assert_eq!(named.ref_name(), Some("v1"));
    }

    #[test]
    fn bad_documents_are_refused_with_their_media_type() {
        fn check(result: Result<(), OciError>, expected: &str) {
            let error = result.expect_err("must fail");
            assert_eq!(error.to_string(), expected);
        }
        let manifest = |text: &str| Manifest::from_slice(text.as_bytes()).map(|_| ());
        let index = |text: &str| Index::from_slice(text.as_bytes()).map(|_| ());
        let config = |text: &str| ImageConfig::from_slice(text.as_bytes()).map(|_| ());
        check(
            manifest("{"),
            "invalid `application/vnd.oci.image.manifest.v1+json` document",
        );
        check(
            manifest(DOCKER_MANIFEST_LIST),
            "invalid `application/vnd.oci.image.manifest.v1+json` document",
        );
        check(
            manifest(&OCI_MANIFEST.replace("\"schemaVersion\": 2", "\"schemaVersion\": 1")),
            "unsupported schema version 1 in `application/vnd.oci.image.manifest.v1+json` document, expected 2",
        );
        check(
            index(
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#,
            ),
            "expected a `application/vnd.oci.image.index.v1+json` document, found `application/vnd.oci.image.manifest.v1+json`",
        );
        check(
            index("[]"),
            "invalid `application/vnd.oci.image.index.v1+json` document",
        );
        check(
            config(r#"{"os":"linux"}"#),
            "invalid `application/vnd.oci.image.config.v1+json` document",
        );
        check(
            config(&BUSYBOX_CONFIG.replace(BUSYBOX_LAYER, "sha256:123")),
            "invalid `application/vnd.oci.image.config.v1+json` document",
        );
    }

    #[test]
    fn platform_specs_match_normalized_platforms() {
        fn check(arch: &str, variant: Option<&str>, platform: &str, expected: bool) {
            let spec = PlatformSpec {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
                ..PlatformSpec::default()
            };
            let platform = Platform::parse(platform).expect("platform");
            assert_eq!(spec.matches(&platform), expected, "{spec:?} vs {platform}");
        }
        check("arm64", Some("v8"), "linux/arm64", true);
        check("arm64", None, "linux/arm64", true);
        check("arm", None, "linux/arm/v7", true);
        check("arm", Some("v6"), "linux/arm/v7", false);
        check("amd64", None, "linux/arm64", false);
        check("amd64", Some(""), "linux/amd64", true);
        let host = Platform::host();
        assert!(PlatformSpec::from_platform(&host).matches(&host));
    }
}

//! Where FROM and COPY get their content: registry images, OCI layouts, directories,
//! files of other stages and images (extracted selectively), ADD's archives and URLs.
//!
//! FIXME: errors here are formatted strings that the stage wraps into a step error, so
//! their causes are flattened into text; fixed looks like a typed `SourceError` with the
//! cause attached as `#[source]`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::context::{
    MetadataOverrides, SourceFile, SourceKind, SourceTree, components, has_wildcards,
};
use super::stage::{LayerOrigin, LayerRecord};
use crate::layer::extract::{ExtractOptions, apply_layer};
use crate::layer::index::{FsView, IndexKind, index_layer};
use crate::oci::digest::Digest;
use crate::oci::image::{Descriptor, ImageConfig};
use crate::oci::media_types;
use crate::platform::Platform;
use crate::registry::{self, ImageRef, PullOptions};
use crate::store::Store;

/// How registries are reached: plain-HTTP hosts and extra CA certificates.
#[derive(Clone, Debug, Default)]
pub struct RegistryAccess {
    /// Registries spoken to over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// A PEM file of extra CA certificates.
    pub ca: Option<std::path::PathBuf>,
}

impl RegistryAccess {
    fn pull_options(&self) -> PullOptions {
        PullOptions {
            insecure_registries: self.insecure.clone(),
            extra_ca: self.ca.clone(),
            ..PullOptions::default()
        }
    }
}

/// A base image ready for a stage: config and layers with their header indexes.
#[derive(Clone, Debug)]
pub struct BaseImage {
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The image config.
    pub config: ImageConfig,
    /// Layers, lowest first, with OCI media types.
    pub layers: Vec<LayerRecord>,
    /// Compressed bytes of all layers.
    pub total_size: u64,
}

/// OCI's name for a layer media type (Docker's gzip layers are the same bytes).
fn oci_media_type(media_type: &str) -> String {
    match media_type {
        media_types::DOCKER_LAYER_GZIP => media_types::OCI_LAYER_GZIP.to_string(),
        other => other.to_string(),
    }
}

/// Pairs layer descriptors with the config's diff ids and indexes each layer.
fn base_layers(
    store: &Store,
    layers: &[Descriptor],
    config: &ImageConfig,
    source: Option<&str>,
) -> Result<Vec<LayerRecord>, String> {
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(format!(
            "the image has {} layers but its config lists {} diff ids",
            layers.len(),
            diff_ids.len()
        ));
    }
    layers
        .iter()
        .zip(diff_ids)
        .map(|(descriptor, diff_id)| {
            let index = index_layer(store, &descriptor.digest)
                .map_err(|e| format!("failed to index layer `{}`: {e}", descriptor.digest))?;
            Ok(LayerRecord {
                descriptor: Descriptor {
                    media_type: oci_media_type(&descriptor.media_type),
                    ..descriptor.clone()
                },
                diff_id: *diff_id,
                index: Arc::new(index),
                origin: LayerOrigin::Base,
                source: source.map(str::to_string),
            })
        })
        .collect()
}

/// Makes sure the blobs of `layers` are in the store, downloading base layers that were
/// only indexed so far.
pub fn ensure_blobs(
    store: &Store,
    layers: &[LayerRecord],
    access: &RegistryAccess,
) -> Result<(), String> {
    let mut missing: std::collections::BTreeMap<&str, Vec<Descriptor>> = Default::default();
    for layer in layers.iter().filter(|l| !store.has(&l.descriptor.digest)) {
        let Some(source) = layer.source.as_deref() else {
            return Err(format!(
                "layer `{}` is missing from the store",
                layer.descriptor.digest
            ));
        };
        missing
            .entry(source)
            .or_default()
            .push(layer.descriptor.clone());
    }
    let options = access.pull_options();
    for (source, blobs) in missing {
        let reference = ImageRef::parse(source).map_err(|e| e.to_string())?;
        registry::fetch_blobs_blocking(store, &reference, &blobs, &options)
            .map_err(|e| error_chain(&e))?;
    }
    Ok(())
}

use crate::error_chain;

/// Pulls `name` from its registry (or takes it from the store when present).
pub fn registry_image(
    store: &Store,
    name: &str,
    platform: &Platform,
    access: &RegistryAccess,
) -> Result<BaseImage, String> {
    let reference = ImageRef::parse(name).map_err(|e| e.to_string())?;
    // Base layers are only indexed while they stream by: a build that adds layers on top
    // of them never stores their bytes unless an output or a COPY --from needs them.
    // Pulls use the registry's stored credentials (docker login, credential helpers,
    // GITHUB_TOKEN for ghcr.io), or none.
    let env = |name: &str| std::env::var(name).ok();
    let credentials = registry::resolve_credentials(&reference.registry, None, &env)
        .map_err(|e| e.to_string())?;
    let options = PullOptions {
        layers: registry::LayerFetch::IndexOnly,
        credentials: Some(credentials),
        ..access.pull_options()
    };
    let pulled = registry::pull_image_blocking(store, &reference, platform, &options)
        .map_err(|e| error_chain(&e))?;
    let layers = base_layers(store, &pulled.layers, &pulled.config, Some(name))?;
    Ok(BaseImage {
        manifest_digest: pulled.manifest.digest,
        total_size: pulled.layers.iter().map(|l| l.size).sum(),
        config: pulled.config,
        layers,
    })
}

/// Takes the image of an OCI layout directory.
pub fn layout_image(store: &Store, dir: &Path, tag: Option<&str>) -> Result<BaseImage, String> {
    let manifest = crate::output::import_oci_layout(dir, tag, store).map_err(|e| e.to_string())?;
    let body = store
        .read_blob(&manifest.digest)
        .map_err(|e| e.to_string())?;
    let manifest_body =
        crate::oci::image::Manifest::from_slice(&body).map_err(|e| e.to_string())?;
    let config_bytes = store
        .read_blob(&manifest_body.config.digest)
        .map_err(|e| e.to_string())?;
    let config = ImageConfig::from_slice(&config_bytes).map_err(|e| e.to_string())?;
    let layers = base_layers(store, &manifest_body.layers, &config, None)?;
    Ok(BaseImage {
        manifest_digest: manifest.digest,
        total_size: manifest_body.layers.iter().map(|l| l.size).sum(),
        config,
        layers,
    })
}

/// A directory given as a named context, used as a stage's whole root: one layer of
/// its files owned by root, on an empty config.
pub fn directory_image(store: &Store, dir: &Path, epoch: Option<i64>) -> Result<BaseImage, String> {
    let tree = SourceTree::context(dir, None);
    let view = FsView::new(Vec::new());
    let mut pending = super::copy::PendingLayer::new(&view);
    let options = super::copy::CopyOptions {
        epoch,
        ..super::copy::CopyOptions::default()
    };
    // The directory itself is the source: its contents become the root.
    pending
        .copy_filtered(&tree, "", "/", &options, None)
        .map_err(|e| e.to_string())?;
    let entries = pending.into_entries();
    let mut writer =
        crate::layer::writer::LayerWriter::new(store, crate::layer::compress::Compression::Gzip)
            .map_err(|e| e.to_string())?;
    for entry in &entries {
        writer.append(entry).map_err(|e| e.to_string())?;
    }
    let (layer, index) = writer.finish().map_err(|e| e.to_string())?;
    let platform = Platform::host();
    let mut config = ImageConfig::from_slice(
        format!(r#"{{"architecture":"{}","os":"{}","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{}}}}"#, platform.architecture, platform.os)
            .as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    config.rootfs.diff_ids = vec![layer.diff_id];
    let descriptor = Descriptor {
        media_type: layer.media_type.to_string(),
        digest: layer.digest,
        size: layer.size,
        annotations: None,
        platform: None,
    };
    Ok(BaseImage {
        manifest_digest: layer.digest,
        total_size: layer.size,
        config,
        layers: vec![LayerRecord {
            descriptor,
            diff_id: layer.diff_id,
            index: Arc::new(index),
            origin: LayerOrigin::Base,
            source: None,
        }],
    })
}

/// True when `a` is `b`, or one lies inside the other.
fn related(a: &str, b: &str) -> bool {
    a == b
        || b.is_empty()
        || a.is_empty()
        || a.starts_with(&format!("{b}/"))
        || b.starts_with(&format!("{a}/"))
}

/// Normalizes a tar entry name to a relative path.
fn entry_path(raw: &Path) -> String {
    components(&raw.to_string_lossy()).join("/")
}

/// The path a whiteout entry affects, if it is one.
fn whiteout_target(path: &str) -> Option<String> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    };
    let hidden = name.strip_prefix(".wh.")?;
    if hidden == ".wh..opq" {
        return Some(dir.to_string());
    }
    Some(if dir.is_empty() {
        hidden.to_string()
    } else {
        format!("{dir}/{hidden}")
    })
}

/// Extracts from `layers` only the trees the COPY `patterns` can reach, into a
/// private directory; returns it with a source tree that keeps the owners, modes and
/// times the layers record.
pub fn extract_sources(
    store: &Store,
    layers: &[LayerRecord],
    patterns: &[String],
    label: String,
) -> Result<(tempfile::TempDir, SourceTree), String> {
    let view = FsView::new(layers.iter().map(|l| Arc::clone(&l.index)).collect());
    let mut prefixes = BTreeSet::new();
    for pattern in patterns {
        let fixed: Vec<String> = components(pattern)
            .into_iter()
            .take_while(|c| !has_wildcards(c))
            .collect();
        let fixed = fixed.join("/");
        if let Ok((resolved, _)) = view.resolve(&fixed, true) {
            prefixes.insert(resolved);
        }
        prefixes.insert(fixed);
    }
    let dir = store.temp_dir().map_err(|e| e.to_string())?;
    let root = dir.path().join("root");
    std::fs::create_dir(&root)
        .map_err(|e| format!("failed to create `{}`: {e}", root.display()))?;
    let options = ExtractOptions {
        same_owner: rustix::process::geteuid().is_root(),
        devices: false,
        xattrs: false,
        overlay_whiteouts: false,
    };
    for layer in layers {
        let filtered = dir.path().join("filtered.tar");
        let kept = filter_layer(store, &layer.descriptor.digest, &prefixes, &filtered)?;
        if kept == 0 {
            continue;
        }
        let file = std::fs::File::open(&filtered)
            .map_err(|e| format!("failed to open `{}`: {e}", filtered.display()))?;
        apply_layer(&root, BufReader::new(file), &options)
            .map_err(|e| format!("failed to extract layer `{}`: {e}", layer.descriptor.digest))?;
    }
    let mut overrides = MetadataOverrides::new();
    let probe = SourceTree::taken_from(&root, label.clone(), MetadataOverrides::new());
    for file in probe.walk("").map_err(|e| e.to_string())? {
        if let Some(entry) = view.lookup(&file.path) {
            if entry.kind != IndexKind::Whiteout {
                overrides.insert(
                    file.path.clone(),
                    (entry.mode, entry.uid, entry.gid, entry.mtime),
                );
            }
        }
    }
    Ok((dir, SourceTree::taken_from(&root, label, overrides)))
}

/// Copies the entries of layer `digest` related to `prefixes` into a tar at `out`;
/// returns how many were kept.
fn filter_layer(
    store: &Store,
    digest: &Digest,
    prefixes: &BTreeSet<String>,
    out: &Path,
) -> Result<usize, String> {
    let blob = store.open_blob(digest).map_err(|e| e.to_string())?;
    let reader = crate::layer::compress::decompressed(BufReader::new(blob))
        .map_err(|e| format!("failed to read layer `{digest}`: {e}"))?;
    let mut archive = tar::Archive::new(reader);
    let file = std::fs::File::create(out)
        .map_err(|e| format!("failed to create `{}`: {e}", out.display()))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    let mut kept = 0;
    let entries = archive
        .entries()
        .map_err(|e| format!("failed to read layer `{digest}`: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("failed to read layer `{digest}`: {e}"))?;
        let path = entry_path(&entry.path().map_err(|e| e.to_string())?);
        if path.is_empty() {
            // The layer's root (`./`): nothing to copy, and tar cannot name it.
            continue;
        }
        let affected = whiteout_target(&path).unwrap_or_else(|| path.clone());
        if !prefixes
            .iter()
            .any(|p| related(&affected, p) || related(&path, p))
        {
            continue;
        }
        let mut header = entry.header().clone();
        let link = entry
            .link_name()
            .map_err(|e| e.to_string())?
            .map(|l| l.into_owned());
        match link {
            Some(link) => builder
                .append_link(&mut header, &path, link)
                .map_err(|e| format!("failed to filter layer `{digest}`: {e}"))?,
            None => builder
                .append_data(&mut header, &path, &mut entry)
                .map_err(|e| format!("failed to filter layer `{digest}`: {e}"))?,
        }
        kept += 1;
    }
    builder
        .into_inner()
        .map_err(|e| format!("failed to write `{}`: {e}", out.display()))?;
    Ok(kept)
}

/// True for `http://` and `https://` sources.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// True for sources BuildKit treats as git repositories.
pub fn is_git(source: &str) -> bool {
    source.starts_with("git@")
        || source.starts_with("git://")
        || (is_url(source)
            && source
                .split(['#', '?'])
                .next()
                .is_some_and(|u| u.ends_with(".git")))
}

/// The file name a downloaded URL gets: its last path segment, else `__unnamed__`.
pub fn url_file_name(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = without_query.splitn(4, '/').nth(3).unwrap_or("");
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." => name.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// Downloads `url` into `dir`, verifying `checksum`; the file gets mode 0600 and the
/// time from `Last-Modified` (the epoch when absent), as BuildKit does.
pub fn download(url: &str, checksum: Option<&str>, dir: &Path) -> Result<SourceFile, String> {
    let expected = match checksum {
        Some(text) => Some(text.parse::<Digest>().map_err(|e| e.to_string())?),
        None => None,
    };
    let response = reqwest::blocking::get(url)
        .and_then(reqwest::blocking::Response::error_for_status)
        .map_err(|e| format!("failed to download `{url}`: {e}"))?;
    let mtime = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(0);
    let path = dir.join(format!("download-{}", Digest::of(url.as_bytes()).hex()));
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("failed to create `{}`: {e}", path.display()))?;
    let mut writer = crate::oci::digest::HashingWriter::new(std::io::BufWriter::new(file));
    let mut reader = response;
    std::io::copy(&mut reader, &mut writer)
        .map_err(|e| format!("failed to download `{url}`: {e}"))?;
    let (_, digest, size) = writer.finish();
    if let Some(expected) = expected {
        if digest != expected {
            return Err(format!(
                "checksum mismatch for `{url}`: expected `{expected}`, got `{digest}`"
            ));
        }
    }
    Ok(SourceFile {
        path: url_file_name(url),
        disk_path: path,
        kind: SourceKind::File(size),
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime,
    })
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to seconds since the epoch.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let time = crate::registry::upload::parse_http_date(text)?;
    let seconds = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(seconds).ok()
}

/// Compression formats ADD unpacks.
fn archive_reader(path: &Path) -> Result<Option<Box<dyn Read>>, String> {
    let open = || {
        std::fs::File::open(path).map_err(|e| format!("failed to open `{}`: {e}", path.display()))
    };
    let mut peek = BufReader::new(open()?);
    let head = peek.fill_buf().map_err(|e| e.to_string())?.to_vec();
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(peek))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(peek))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(peek))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(peek).map_err(|e| e.to_string())?)
    } else {
        Box::new(peek)
    };
    // A tar starts with a header whose magic is at offset 257 (`ustar`), or at least
    // one whose checksum adds up (old V7 archives).
    let mut reader = reader;
    let mut block = vec![0u8; 512];
    if reader.read_exact(&mut block).is_err() || !is_tar_header(&block) {
        return Ok(None);
    }
    Ok(Some(Box::new(std::io::Cursor::new(block).chain(reader))))
}

fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum)
}

/// When `path` is a tar archive (plain, gzip, bzip2, xz or zstd), unpacks it under
/// `scratch` and returns its tree with the owners, modes and times of its headers.
pub fn open_archive(path: &Path, scratch: &Path) -> Result<Option<SourceTree>, String> {
    let Some(reader) = archive_reader(path)? else {
        return Ok(None);
    };
    let root = scratch.join(format!(
        "archive-{}",
        Digest::of(path.to_string_lossy().as_bytes()).hex()
    ));
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("failed to create `{}`: {e}", root.display()))?;
    let options = ExtractOptions {
        same_owner: false,
        devices: false,
        xattrs: false,
        overlay_whiteouts: false,
    };
    apply_layer(&root, reader, &options)
        .map_err(|e| format!("failed to unpack `{}`: {e}", path.display()))?;
    let mut overrides = MetadataOverrides::new();
    if let Some(reader) = archive_reader(path)? {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| e.to_string())?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("failed to read `{}`: {e}", path.display()))?;
            let header = entry.header();
            let name = entry_path(&entry.path().map_err(|e| e.to_string())?);
            let meta = (
                header.mode().unwrap_or(0o644) & 0o7777,
                header.uid().unwrap_or(0),
                header.gid().unwrap_or(0),
                header.mtime().map_or(0, |t| t as i64),
            );
            overrides.insert(name, meta);
        }
    }
    let name = format!("archive `{}`", path.display());
    Ok(Some(SourceTree::taken_from(&root, name, overrides)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_names() {
        assert_eq!(
            url_file_name("https://example.com/a/file.tar.gz"),
            "file.tar.gz"
        );
        assert_eq!(url_file_name("https://example.com/"), "__unnamed__");
        assert_eq!(url_file_name("https://example.com"), "__unnamed__");
        assert_eq!(url_file_name("http://h/x?y=1"), "x");
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn whiteouts_and_relations() {
        assert_eq!(whiteout_target("a/.wh.b").as_deref(), Some("a/b"));
        assert_eq!(whiteout_target("a/.wh..wh..opq").as_deref(), Some("a"));
        assert_eq!(whiteout_target("a/b"), None);
        assert!(related("a/b/c", "a/b"));
        assert!(related("a", "a/b"));
        assert!(!related("a/bc", "a/b"));
    }

    #[test]
    fn git_sources() {
        assert!(is_git("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/file.tar.gz"));
    }
}

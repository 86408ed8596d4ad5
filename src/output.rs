//! Local outputs: OCI image layouts and docker-archive tarballs, and importing OCI layouts.
//!
//! Every file a reader may look at appears whole or not at all: blobs and `index.json` are
//! written under temporary names and renamed, blobs before the documents that reference them,
//! and a docker archive is assembled in `<path>.tmp-<random>` next to its final name. Blob
//! content is streamed and checked against its digest on the way, never held in memory.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::oci::digest::Digest;
use crate::oci::image::{Descriptor, Index, Manifest, OciError, annotations};
use crate::oci::media_types;
use crate::platform::Platform;
use crate::store::{Store, StoreError};

/// The content of the `oci-layout` file.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Manifests and indexes are read into memory; registries cap them at 4 MiB, and so do we so
/// that a hostile layout cannot make us allocate without bound.
pub const MAX_DOCUMENT_SIZE: u64 = 4 << 20;

/// Nested indexes deeper than this are refused (a cycle would otherwise recurse forever).
pub const MAX_INDEX_DEPTH: usize = 4;

/// Why writing or importing a local image failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file system operation failed.
    #[error("failed to {op} `{}`", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A JSON document (manifest, index, `index.json`) is invalid.
    #[error("invalid JSON document `{}`", path.display())]
    Document {
        /// Where the document was read from.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: OciError,
    },
    /// A blob could not be copied into the store (a digest mismatch, usually).
    #[error("failed to import blob `{digest}` from `{}`", path.display())]
    Import {
        /// The blob's digest.
        digest: Digest,
        /// The blob's path in the layout.
        path: PathBuf,
        /// The underlying error (boxed: it holds two digests and would bloat every result).
        #[source]
        source: Box<StoreError>,
    },
    /// A blob's size differs from what its descriptor says.
    #[error("blob `{digest}` has {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        /// The blob's digest.
        digest: Digest,
        /// The size in the descriptor.
        expected: u64,
        /// The size found.
        actual: u64,
    },
    /// A manifest or index is larger than [`MAX_DOCUMENT_SIZE`].
    #[error("document `{digest}` is too large ({size} bytes)")]
    DocumentTooLarge {
        /// The document's digest.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A descriptor points to something that is not the expected kind of document.
    #[error("`{digest}` has media type `{media_type}`, expected {expected}")]
    UnsupportedMediaType {
        /// The descriptor's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// Indexes nest deeper than [`MAX_INDEX_DEPTH`].
    #[error("index `{digest}` nests indexes too deeply")]
    IndexTooDeep {
        /// The index at which the limit was hit.
        digest: Digest,
    },
    /// An OCI layout has no image with the requested name.
    #[error("no image named `{tag}` in `{}`, available: {available}", dir.display())]
    TagNotFound {
        /// The layout.
        dir: PathBuf,
        /// The requested name.
        tag: String,
        /// The names in the layout, listed.
        available: String,
    },
    /// An OCI layout has several images and none was named.
    #[error("`{}` holds several images, choose one of: {available}", dir.display())]
    AmbiguousImage {
        /// The layout.
        dir: PathBuf,
        /// The names in the layout, listed.
        available: String,
    },
    /// An OCI layout holds no image at all.
    #[error("`{}` holds no image", dir.display())]
    EmptyLayout {
        /// The layout.
        dir: PathBuf,
    },
    /// An image index has no manifest for the host platform.
    #[error("index `{digest}` has no manifest for platform `{platform}`")]
    NoManifestForPlatform {
        /// The index.
        digest: Digest,
        /// The platform looked for.
        platform: String,
    },
    /// A ref name or repository tag is malformed.
    #[error("invalid image name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The archive path has no file name.
    #[error("invalid output path `{}`: expected a file name", path.display())]
    InvalidOutputPath {
        /// The path given.
        path: PathBuf,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutputError {
    move |source| OutputError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn doc_err(path: &Path) -> impl FnOnce(OciError) -> OutputError {
    move |source| OutputError::Document {
        path: path.to_path_buf(),
        source,
    }
}

/// World-readable temporary files: outputs are meant to be shared, tempfile defaults to 0600.
fn temp_file_builder(prefix: &str) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder
}

/// Writes an OCI image layout at `dir` holding the image `manifest` (already in `store` with its
/// config and layers): `oci-layout`, `index.json` (one entry per ref name, annotation
/// `org.opencontainers.image.ref.name`; `latest` when `ref_names` is empty), `blobs/sha256/*`.
///
/// Entries of an existing `index.json` with other ref names (or none) are kept, entries with
/// one of `ref_names` are replaced. `manifest` may also be an image index whose manifests are
/// all in the store.
pub fn write_oci_layout(
    dir: &Path,
    store: &Store,
    manifest: &Descriptor,
    ref_names: &[String],
) -> Result<(), OutputError> {
    let names = layout_ref_names(ref_names)?;
    let blobs = image_blobs(store, manifest)?;
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(io_err("create directory", &blob_dir))?;
    for blob in &blobs {
        place_blob(store, &blob.digest, &blob_dir, true)?;
    }
    sync_dir(&blob_dir)?;
    write_file_atomic(&dir.join("oci-layout"), OCI_LAYOUT)?;

    let index_path = dir.join("index.json");
    let mut index = match fs::read(&index_path) {
        Ok(bytes) => Index::from_slice(&bytes).map_err(doc_err(&index_path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Index::new(Vec::new()),
        Err(source) => {
            return Err(OutputError::Io {
                op: "read",
                path: index_path,
                source,
            });
        }
    };
    index.manifests.retain(|entry| {
        entry
            .ref_name()
            .is_none_or(|name| !names.iter().any(|n| n == name))
    });
    for name in &names {
        let mut entry = manifest.clone();
        entry
            .annotations
            .get_or_insert_default()
            .insert(annotations::REF_NAME.to_string(), name.clone());
        index.manifests.push(entry);
    }
    let bytes = index.to_json_bytes().map_err(doc_err(&index_path))?;
    write_file_atomic(&index_path, &bytes)?;
    sync_dir(dir)
}

/// Validates and deduplicates the ref names, defaulting to `latest`.
fn layout_ref_names(ref_names: &[String]) -> Result<Vec<String>, OutputError> {
    if ref_names.is_empty() {
        return Ok(vec!["latest".to_string()]);
    }
    let mut names = Vec::new();
    for name in ref_names {
        check_ref_name(name)?;
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

/// The image-layout spec's grammar: `/`-separated components of alphanumeric runs joined by
/// one of `-._:@+` or by `--`.
fn check_ref_name(name: &str) -> Result<(), OutputError> {
    let invalid = |reason| {
        Err(OutputError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("empty");
    }
    for component in name.split('/') {
        let bytes = component.as_bytes();
        if !bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            || !bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        {
            return invalid("each `/`-separated part must start and end with a letter or digit");
        }
        for separator in component.split(|c: char| c.is_ascii_alphanumeric()) {
            if !matches!(separator, "" | "-" | "." | "_" | ":" | "@" | "+" | "--") {
                return invalid("letters and digits may be joined by one of `-._:@+` or `--`");
            }
        }
    }
    Ok(())
}

/// The descriptors of every blob of the image `root` (itself included), documents after the
/// blobs they reference, each once; checks that each is in the store with its stated size.
fn image_blobs(store: &Store, root: &Descriptor) -> Result<Vec<Descriptor>, OutputError> {
    fn walk(
        store: &Store,
        desc: &Descriptor,
        depth: usize,
        seen: &mut BTreeSet<Digest>,
        out: &mut Vec<Descriptor>,
    ) -> Result<(), OutputError> {
        if !seen.insert(desc.digest) {
            return Ok(());
        }
        let bytes = read_store_document(store, desc)?;
        let path = store.blob_path(&desc.digest);
        if media_types::is_index(&desc.media_type) {
            if depth >= MAX_INDEX_DEPTH {
                return Err(OutputError::IndexTooDeep {
                    digest: desc.digest,
                });
            }
            for child in Index::from_slice(&bytes).map_err(doc_err(&path))?.manifests {
                walk(store, &child, depth + 1, seen, out)?;
            }
        } else {
            let manifest = Manifest::from_slice(&bytes).map_err(doc_err(&path))?;
            for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                if seen.insert(blob.digest) {
                    check_store_size(store, blob)?;
                    out.push(blob.clone());
                }
            }
        }
        out.push(desc.clone());
        Ok(())
    }
    let mut out = Vec::new();
    walk(store, root, 0, &mut BTreeSet::new(), &mut out)?;
    Ok(out)
}

/// Reads a manifest or index from the store, checking its media type and size first.
fn read_store_document(store: &Store, desc: &Descriptor) -> Result<Vec<u8>, OutputError> {
    if !media_types::is_index(&desc.media_type) && !media_types::is_manifest(&desc.media_type) {
        return Err(OutputError::UnsupportedMediaType {
            digest: desc.digest,
            media_type: desc.media_type.clone(),
            expected: "an image manifest or index",
        });
    }
    if desc.size > MAX_DOCUMENT_SIZE {
        return Err(OutputError::DocumentTooLarge {
            digest: desc.digest,
            size: desc.size,
        });
    }
    check_store_size(store, desc)?;
    Ok(store.read_blob(&desc.digest)?)
}

fn check_store_size(store: &Store, desc: &Descriptor) -> Result<(), OutputError> {
    let actual = store.blob_size(&desc.digest)?;
    if actual != desc.size {
        return Err(OutputError::SizeMismatch {
            digest: desc.digest,
            expected: desc.size,
            actual,
        });
    }
    Ok(())
}

/// Puts the store's blob `digest` into `blob_dir`: a hard link when possible (same file system,
/// links allowed) if `try_link`, else a verified copy. A present blob of the right size is left
/// alone.
fn place_blob(
    store: &Store,
    digest: &Digest,
    blob_dir: &Path,
    try_link: bool,
) -> Result<(), OutputError> {
    let dest = blob_dir.join(digest.hex());
    let size = store.blob_size(digest)?;
    if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == size) {
        return Ok(());
    }
    let source = store.blob_path(digest);
    // Linking to a temporary name and renaming also replaces a damaged blob at `dest`.
    let linked = try_link.then(|| {
        tempfile::Builder::new()
            .prefix(".tmp-")
            .make_in(blob_dir, |temp| fs::hard_link(&source, temp))
    });
    if let Some(Ok(temp)) = linked {
        return temp.persist(&dest).map(drop).map_err(|e| OutputError::Io {
            op: "rename blob into place at",
            path: dest,
            source: e.error,
        });
    }
    // Any link failure (EXDEV, protected_hardlinks, no link support) leaves copying, whose own
    // errors are the ones worth reporting.
    let mut temp = temp_file_builder(".tmp-")
        .tempfile_in(blob_dir)
        .map_err(io_err("create temporary file in", blob_dir))?;
    let mut reader = store.open_blob_verified(digest, size)?;
    let mut writer = BufWriter::new(temp.as_file_mut());
    io::copy(&mut reader, &mut writer)
        .and_then(|_| writer.flush())
        .map_err(io_err("copy blob from", &source))?;
    drop(writer);
    temp.as_file()
        .sync_all()
        .map_err(io_err("sync", temp.path()))?;
    temp.persist(&dest).map(drop).map_err(|e| OutputError::Io {
        op: "rename blob into place at",
        path: dest,
        source: e.error,
    })
}

/// Replaces `path` with `bytes` atomically (temporary file in the same directory, renamed).
fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let dir = parent_dir(path);
    let mut temp = temp_file_builder(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("create temporary file in", dir))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(io_err("write temporary file", temp.path()))?;
    temp.persist(path).map(drop).map_err(|e| OutputError::Io {
        op: "rename into place at",
        path: path.to_path_buf(),
        source: e.error,
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Makes renames into `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// One image of a docker-archive `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifest {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Writes a docker-archive tarball (`docker load` / `podman load`): `manifest.json`
/// `[{"Config": "blobs/sha256/<hex>", "RepoTags": [...], "Layers": [...]}]`, the blobs, plus
/// `oci-layout` and `index.json`; written to a temp file and renamed, never left partial.
///
/// Repository tags without a tag get `:latest`. The archive is deterministic: fixed owners,
/// modes and timestamps in its headers.
pub fn write_docker_archive(
    path: &Path,
    store: &Store,
    manifest: &Descriptor,
    repo_tags: &[String],
) -> Result<(), OutputError> {
    if !media_types::is_manifest(&manifest.media_type) {
        return Err(OutputError::UnsupportedMediaType {
            digest: manifest.digest,
            media_type: manifest.media_type.clone(),
            expected: "a single-platform image manifest",
        });
    }
    let tags = repo_tags
        .iter()
        .map(|t| normalize_repo_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    let blobs = image_blobs(store, manifest)?;
    let bytes = store.read_blob(&manifest.digest)?;
    let image =
        Manifest::from_slice(&bytes).map_err(doc_err(&store.blob_path(&manifest.digest)))?;

    let blob_name = |digest: &Digest| format!("blobs/sha256/{}", digest.hex());
    let archive_manifest = [ArchiveManifest {
        config: blob_name(&image.config.digest),
        repo_tags: tags.iter().map(|(full, _, _)| full.clone()).collect(),
        layers: image.layers.iter().map(|l| blob_name(&l.digest)).collect(),
    }];
    let mut index = Index::new(Vec::new());
    for (_, qualified, tag) in &tags {
        let mut entry = manifest.clone();
        let notes = entry.annotations.get_or_insert_default();
        notes.insert(
            annotations::CONTAINERD_IMAGE_NAME.to_string(),
            qualified.clone(),
        );
        notes.insert(annotations::REF_NAME.to_string(), tag.clone());
        index.manifests.push(entry);
    }
    if tags.is_empty() {
        index.manifests.push(manifest.clone());
    }

    let file_name = path
        .file_name()
        .ok_or_else(|| OutputError::InvalidOutputPath {
            path: path.to_path_buf(),
        })?;
    let prefix = format!("{}.tmp-", file_name.to_string_lossy());
    let dir = parent_dir(path);
    let temp = temp_file_builder(&prefix)
        .tempfile_in(dir)
        .map_err(io_err("create temporary file in", dir))?;
    let write_err = io_err("write", temp.path());
    let mut tar = tar::Builder::new(BufWriter::with_capacity(256 * 1024, temp.as_file()));
    let add = |tar: &mut tar::Builder<_>, name: &str, size: u64, data: &mut dyn Read| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(if name.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        header.set_mode(if name.ends_with('/') { 0o755 } else { 0o644 });
        header.set_size(size);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, name, data)
    };
    let result = (|| -> io::Result<()> {
        add(&mut tar, "blobs/", 0, &mut io::empty())?;
        add(&mut tar, "blobs/sha256/", 0, &mut io::empty())?;
        for blob in &blobs {
            let mut reader = store
                .open_blob_verified(&blob.digest, blob.size)
                .map_err(io::Error::other)?;
            add(&mut tar, &blob_name(&blob.digest), blob.size, &mut reader)?;
        }
        let documents = [
            (
                "index.json",
                index.to_json_bytes().map_err(io::Error::other)?,
            ),
            (
                "manifest.json",
                serde_json::to_vec(&archive_manifest).map_err(io::Error::other)?,
            ),
            ("oci-layout", OCI_LAYOUT.to_vec()),
        ];
        for (name, content) in documents {
            add(
                &mut tar,
                name,
                content.len() as u64,
                &mut content.as_slice(),
            )?;
        }
        tar.into_inner()?.flush()
    })();
    result.map_err(write_err)?;
    temp.as_file()
        .sync_all()
        .map_err(io_err("sync", temp.path()))?;
    temp.persist(path).map_err(|e| OutputError::Io {
        op: "rename archive into place at",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dir)
}

/// Splits a repository tag into (as given with `:latest` added if untagged, fully qualified
/// as containerd names images, tag).
fn normalize_repo_tag(reference: &str) -> Result<(String, String, String), OutputError> {
    let invalid = |reason| OutputError::InvalidName {
        name: reference.to_string(),
        reason,
    };
    if reference.is_empty() || reference.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "expected `[registry/]repository[:tag]` without spaces",
        ));
    }
    if reference.contains('@') {
        return Err(invalid("a digest reference cannot be a tag"));
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    };
    let tag_ok = tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !tag_ok {
        return Err(invalid(
            "a tag is up to 128 letters, digits, `_`, `.` and `-`",
        ));
    }
    // Docker's rule: the first component is a registry when it looks like a host name.
    let first = repository.split('/').next().unwrap_or_default();
    let has_registry =
        repository.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    let path_ok = |component: &str| {
        let bytes = component.as_bytes();
        bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
    };
    if !repository
        .split('/')
        .skip(usize::from(has_registry))
        .all(path_ok)
    {
        return Err(invalid(
            "repository path components are lowercase letters, digits, `.`, `_` and `-`",
        ));
    }
    let qualified = match (has_registry, repository.contains('/')) {
        (true, _) => format!("{repository}:{tag}"),
        (false, true) => format!("docker.io/{repository}:{tag}"),
        (false, false) => format!("docker.io/library/{repository}:{tag}"),
    };
    Ok((format!("{repository}:{tag}"), qualified, tag.to_string()))
}

/// Imports the image `tag` (or the only one) of an OCI layout into the store; returns its manifest descriptor.
///
/// An entry may point at an image index, in which case its manifest for [`Platform::host`] is
/// imported. Every blob is verified against its digest while it is copied; the manifest is
/// stored last, so its presence in the store implies its config and layers are there too.
pub fn import_oci_layout(
    dir: &Path,
    tag: Option<&str>,
    store: &Store,
) -> Result<Descriptor, OutputError> {
    let index_path = dir.join("index.json");
    let bytes = fs::read(&index_path).map_err(io_err("read", &index_path))?;
    let index = Index::from_slice(&bytes).map_err(doc_err(&index_path))?;
    let host = Platform::host();
    let entry = pick_entry(dir, &index, tag, &host)?;

    let (descriptor, bytes) = if media_types::is_index(&entry.media_type) {
        let bytes = read_layout_document(dir, entry)?;
        let nested = Index::from_slice(&bytes).map_err(doc_err(&layout_blob_path(dir, entry)))?;
        let child = nested
            .manifests
            .into_iter()
            .filter(|d| media_types::is_manifest(&d.media_type))
            .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(&host)))
            .ok_or_else(|| OutputError::NoManifestForPlatform {
                digest: entry.digest,
                platform: host.to_string(),
            })?;
        let bytes = read_layout_document(dir, &child)?;
        (child, bytes)
    } else if media_types::is_manifest(&entry.media_type) {
        (entry.clone(), read_layout_document(dir, entry)?)
    } else {
        return Err(OutputError::UnsupportedMediaType {
            digest: entry.digest,
            media_type: entry.media_type.clone(),
            expected: "an image manifest or index",
        });
    };
    let manifest =
        Manifest::from_slice(&bytes).map_err(doc_err(&layout_blob_path(dir, &descriptor)))?;
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        import_blob(dir, blob, store)?;
    }
    store.write_blob(&bytes)?;
    Ok(descriptor)
}

fn layout_blob_path(dir: &Path, desc: &Descriptor) -> PathBuf {
    dir.join("blobs").join("sha256").join(desc.digest.hex())
}

/// Chooses the `index.json` entry to import; with several candidates the one for the host
/// platform wins if it is the only one.
fn pick_entry<'a>(
    dir: &Path,
    index: &'a Index,
    tag: Option<&str>,
    host: &Platform,
) -> Result<&'a Descriptor, OutputError> {
    let candidates: Vec<&Descriptor> = match tag {
        Some(tag) => index
            .manifests
            .iter()
            .filter(|d| d.ref_name() == Some(tag))
            .collect(),
        None => index.manifests.iter().collect(),
    };
    if let [only] = candidates.as_slice() {
        return Ok(only);
    }
    let for_host: Vec<&Descriptor> = candidates
        .iter()
        .copied()
        .filter(|d| d.platform.as_ref().is_some_and(|p| p.matches(host)))
        .collect();
    if let [only] = for_host.as_slice() {
        return Ok(only);
    }
    let available = || {
        let names: BTreeSet<String> = index
            .manifests
            .iter()
            .map(|d| match d.ref_name() {
                Some(name) => format!("`{name}`"),
                None => format!("`{}` (unnamed)", d.digest),
            })
            .collect();
        names.into_iter().collect::<Vec<_>>().join(", ")
    };
    let dir = dir.to_path_buf();
    Err(
        match (tag, candidates.is_empty(), index.manifests.is_empty()) {
            (_, _, true) => OutputError::EmptyLayout { dir },
            (Some(tag), true, false) => OutputError::TagNotFound {
                dir,
                tag: tag.to_string(),
                available: available(),
            },
            _ => OutputError::AmbiguousImage {
                dir,
                available: available(),
            },
        },
    )
}

/// Reads a manifest or index blob of the layout, bounded in size and verified.
fn read_layout_document(dir: &Path, desc: &Descriptor) -> Result<Vec<u8>, OutputError> {
    if desc.size > MAX_DOCUMENT_SIZE {
        return Err(OutputError::DocumentTooLarge {
            digest: desc.digest,
            size: desc.size,
        });
    }
    let path = layout_blob_path(dir, desc);
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|f| f.take(MAX_DOCUMENT_SIZE + 1).read_to_end(&mut bytes))
        .map_err(io_err("read blob", &path))?;
    let actual = Digest::of(&bytes);
    if actual != desc.digest {
        let source = StoreError::DigestMismatch {
            expected: desc.digest,
            actual,
        };
        return Err(OutputError::Import {
            digest: desc.digest,
            path,
            source: Box::new(source),
        });
    }
    if bytes.len() as u64 != desc.size {
        let actual = bytes.len() as u64;
        return Err(OutputError::SizeMismatch {
            digest: desc.digest,
            expected: desc.size,
            actual,
        });
    }
    Ok(bytes)
}

/// Streams one layout blob into the store, verifying size and digest; skips blobs present.
fn import_blob(dir: &Path, desc: &Descriptor, store: &Store) -> Result<(), OutputError> {
    if store
        .blob_size(&desc.digest)
        .is_ok_and(|size| size == desc.size)
    {
        return Ok(());
    }
    let path = layout_blob_path(dir, desc);
    let mut file = File::open(&path).map_err(io_err("open blob", &path))?;
    let actual = file.metadata().map_err(io_err("stat blob", &path))?.len();
    if actual != desc.size {
        return Err(OutputError::SizeMismatch {
            digest: desc.digest,
            expected: desc.size,
            actual,
        });
    }
    let mut writer = store.blob_writer()?;
    io::copy(&mut file, &mut writer).map_err(io_err("copy blob from", &path))?;
    writer
        .commit(Some(&desc.digest))
        .map_err(|source| OutputError::Import {
            digest: desc.digest,
            path,
            source: Box::new(source),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests;

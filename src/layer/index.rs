//! Layer header indexes: what a layer blob contains, built by one streaming read of the blob
//! and cached in the store, so later builds answer "what is at this path" without reading
//! layers again.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

pub use crate::layer::view::FsView;

use crate::layer::LayerError;
use crate::layer::compress::decompressed;
use crate::oci::digest::Digest;
use crate::store::Store;

/// The store metadata kind under which indexes are cached.
const META_KIND: &str = "layer-index";

/// Bumped whenever the meaning of a cached index changes, so old caches are rebuilt.
const CACHE_VERSION: u32 = 1;

/// Files whose content is captured, by file name: the account databases a build needs to
/// resolve `USER name`. Matched by name anywhere rather than only at `etc/` because
/// `etc/passwd` may be a symlink into another directory (`../usr/share/passwd`), which is only
/// known once the layers are stacked.
const SMALL_FILE_NAMES: [&str; 2] = ["passwd", "group"];

/// Only files under this size are captured.
pub const SMALL_FILE_LIMIT: u64 = 1024 * 1024;

/// Captures beyond `etc/passwd` and `etc/group` stop once a layer's captures reach this total,
/// bounding the index of a layer full of files named `group`.
const SMALL_FILES_BUDGET: u64 = 4 * 1024 * 1024;

/// The header index of one layer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIndex {
    /// Every entry, in the order of the tar.
    pub entries: Vec<IndexEntry>,
    /// Contents of small account files (`etc/passwd`, `etc/group` and files of those names
    /// elsewhere, under 1 MiB), by normalized path.
    pub small_files: BTreeMap<String, Vec<u8>>,
}

/// One tar header, normalized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Relative path without `./`, leading or trailing `/` (`""` is the root). For a
    /// whiteout the path it deletes; for an opaque marker its directory.
    pub path: String,
    /// What the entry is.
    pub kind: IndexKind,
    /// Mode bits (`0o7777`).
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Content size (0 for everything but regular files).
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Symlink text or hard link target path.
    pub link_target: Option<String>,
}

/// The kind of an [`IndexEntry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link.
    HardLink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A deleted path (`.wh.<name>`).
    Whiteout,
    /// A directory hiding its lower contents (`.wh..wh..opq`).
    OpaqueDir,
}

/// Collects small file contents within the budget; shared by indexing and the writer so
/// both produce the same index.
#[derive(Default)]
pub(crate) struct SmallFiles {
    files: BTreeMap<String, Vec<u8>>,
    total: u64,
}

impl SmallFiles {
    /// Whether the regular file `path` of `size` bytes should be captured.
    pub(crate) fn wants(&self, path: &str, size: u64) -> bool {
        if size >= SMALL_FILE_LIMIT {
            return false;
        }
        if path == "etc/passwd" || path == "etc/group" {
            return true;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        SMALL_FILE_NAMES.contains(&name) && self.total + size <= SMALL_FILES_BUDGET
    }

    /// Records a captured file.
    pub(crate) fn insert(&mut self, path: String, content: Vec<u8>) {
        self.total += content.len() as u64;
        self.files.insert(path, content);
    }

    /// The captured files.
    pub(crate) fn into_map(self) -> BTreeMap<String, Vec<u8>> {
        self.files
    }
}

#[derive(Serialize)]
struct CachedRef<'a> {
    version: u32,
    index: &'a LayerIndex,
}

#[derive(Deserialize)]
struct Cached {
    version: u32,
    index: LayerIndex,
}

/// The header index of the layer blob `digest`: built by one streaming read of the blob the
/// first time, cached in the store (`meta/layer-index/<hex>`), read from the cache afterwards.
///
/// A cache entry that cannot be parsed or has an older format is rebuilt from the blob.
pub fn index_layer(store: &Store, digest: &Digest) -> Result<LayerIndex, LayerError> {
    let cache_error = |source| LayerError::IndexCache {
        digest: *digest,
        source,
    };
    if let Some(bytes) = store
        .read_meta(META_KIND, &digest.hex())
        .map_err(cache_error)?
    {
        if let Ok(cached) = serde_json::from_slice::<Cached>(&bytes) {
            if cached.version == CACHE_VERSION {
                return Ok(cached.index);
            }
        }
    }
    let blob = store
        .open_blob(digest)
        .map_err(|source| LayerError::OpenBlob {
            digest: *digest,
            source,
        })?;
    let index = read_index(digest, blob)?;
    save_index(store, digest, &index)?;
    Ok(index)
}

/// True when the header index of layer `digest` is cached in the store.
pub fn has_index(store: &Store, digest: &Digest) -> bool {
    matches!(store.read_meta(META_KIND, &digest.hex()), Ok(Some(_)))
}

/// Caches `index` as the index of the layer blob `digest`.
pub(crate) fn save_index(
    store: &Store,
    digest: &Digest,
    index: &LayerIndex,
) -> Result<(), LayerError> {
    let bytes = serde_json::to_vec(&CachedRef {
        version: CACHE_VERSION,
        index,
    })
    .map_err(|source| LayerError::EncodeIndex {
        digest: *digest,
        source,
    })?;
    store
        .write_meta(META_KIND, &digest.hex(), &bytes)
        .map_err(|source| LayerError::IndexCache {
            digest: *digest,
            source,
        })
}

/// Builds the index of a (possibly compressed) layer blob read from `blob`.
pub(crate) fn read_index(
    digest: &Digest,
    blob: impl Read + 'static,
) -> Result<LayerIndex, LayerError> {
    let read_error = |source| LayerError::ReadLayer {
        digest: *digest,
        source,
    };
    let mut archive = tar::Archive::new(decompressed(blob).map_err(read_error)?);
    let mut entries = Vec::new();
    let mut small_files = SmallFiles::default();
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let Some(index_entry) = header_entry(digest, &mut entry)? else {
            continue;
        };
        if index_entry.kind == IndexKind::File
            && small_files.wants(&index_entry.path, index_entry.size)
        {
            // The size was checked against the limit, so this read is bounded.
            let mut content = Vec::with_capacity(index_entry.size as usize);
            entry.read_to_end(&mut content).map_err(read_error)?;
            small_files.insert(index_entry.path.clone(), content);
        }
        entries.push(index_entry);
    }
    Ok(LayerIndex {
        entries,
        small_files: small_files.into_map(),
    })
}

/// The index entry of one tar entry, or `None` for entries that describe nothing on the
/// file system (AUFS metadata `.wh..wh.*` other than the opaque marker).
fn header_entry<R: Read>(
    digest: &Digest,
    entry: &mut tar::Entry<'_, R>,
) -> Result<Option<IndexEntry>, LayerError> {
    let read_error = |source| LayerError::ReadLayer {
        digest: *digest,
        source,
    };
    let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let path = normalize_path(&raw_name);
    let header = entry.header();
    let entry_type = header.entry_type();
    // Global PAX headers describe the archive, not a file.
    if entry_type.is_pax_global_extensions() || entry_type.is_pax_local_extensions() {
        return Ok(None);
    }
    let mode = header.mode().map_err(read_error)? & 0o7777;
    let uid = header.uid().map_err(read_error)?;
    let gid = header.gid().map_err(read_error)?;
    let mut mtime = i64::try_from(header.mtime().map_err(read_error)?).unwrap_or(i64::MAX);
    let link_target = entry
        .link_name_bytes()
        .map(|link| String::from_utf8_lossy(&link).into_owned())
        .filter(|_| entry_type.is_symlink() || entry_type.is_hard_link());
    // The `tar` crate applies PAX `path`, `linkpath`, `size`, `uid` and `gid`, not `mtime`.
    if let Some(extensions) = entry.pax_extensions().map_err(read_error)? {
        // Records the `tar` crate cannot split (binary attribute values with newlines) are
        // skipped: only `mtime` is wanted here.
        for extension in extensions.filter_map(Result::ok) {
            if extension.key() == Ok("mtime") {
                if let Some(seconds) = extension.value().ok().and_then(parse_pax_time) {
                    mtime = seconds;
                }
            }
        }
    }
    let (parent, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path.as_str()),
    };
    let mut kind = match entry_type {
        tar::EntryType::Directory => IndexKind::Dir,
        tar::EntryType::Symlink => IndexKind::Symlink,
        tar::EntryType::Link => IndexKind::HardLink,
        tar::EntryType::Char => IndexKind::CharDevice,
        tar::EntryType::Block => IndexKind::BlockDevice,
        tar::EntryType::Fifo => IndexKind::Fifo,
        _ => IndexKind::File,
    };
    let mut indexed_path = path.clone();
    if let Some(deleted) = name.strip_prefix(".wh.") {
        if deleted == ".wh..opq" {
            kind = IndexKind::OpaqueDir;
            indexed_path = parent.to_string();
        } else if deleted.starts_with(".wh.") {
            return Ok(None);
        } else if deleted.is_empty() || deleted == "." || deleted == ".." {
            return Err(LayerError::InvalidWhiteout {
                digest: *digest,
                name: raw_name,
            });
        } else {
            kind = IndexKind::Whiteout;
            indexed_path = join(parent, deleted);
        }
    }
    let size = if kind == IndexKind::File {
        entry.size()
    } else {
        0
    };
    let link_target = link_target.map(|link| match kind {
        // Hard link targets are archive paths: normalize them like entry names.
        IndexKind::HardLink => normalize_path(&link),
        _ => link,
    });
    Ok(Some(IndexEntry {
        path: indexed_path,
        kind,
        mode,
        uid,
        gid,
        size,
        mtime,
        link_target,
    }))
}

/// Whole seconds of a PAX time (`-12`, `1700000000.25`), rounded down.
fn parse_pax_time(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = whole.parse().ok()?;
    let below_zero = whole.starts_with('-') && fraction.bytes().any(|b| b != b'0');
    Some(if below_zero { seconds - 1 } else { seconds })
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Normalizes an archive or lookup path: no leading `/` or `./`, no empty or `.` components,
/// `..` removing the previous component but never climbing above the root, no trailing `/`.
pub(crate) fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;

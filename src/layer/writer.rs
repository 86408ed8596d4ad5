//! Writing reproducible layer blobs in one streaming pass.
//!
//! The tar stream goes through a [`HashingWriter`] (the diff id and uncompressed size), the
//! encoder, and into a store [`BlobWriter`] (the blob digest and size), so no layer or file is
//! ever held in memory and nothing is read twice. Headers are normalized so that the same
//! entries always give the same bytes: see [`LayerWriter`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::layer::LayerError;
use crate::layer::compress::{Compression, Encoder};
use crate::layer::index::{self, IndexEntry, IndexKind, LayerIndex, SmallFiles};
use crate::layer::tarheader::{self, HeaderFields};
use crate::oci::digest::{Digest, HashingWriter};
use crate::store::{BlobWriter, Store};

/// Size of the buffer file contents are copied through: memory use does not depend on file
/// sizes.
const COPY_BUFFER: usize = 64 * 1024;

/// Tar pads every entry to this block size.
const BLOCK: u64 = 512;

/// One entry to write into a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    /// Relative, `/`-separated path, without a leading or trailing `/`.
    ///
    /// For [`EntryKind::Whiteout`] the path deleted; for [`EntryKind::OpaqueDir`] the directory
    /// made opaque.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits plus setuid, setgid and sticky (`0o7777`); other bits are dropped.
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes, stored as `SCHILY.xattr.<name>` PAX records.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// The kind of a [`LayerEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of `size` bytes read from `source`.
    File {
        /// Where the content comes from.
        source: FileSource,
        /// The content size; a source of another size is an error.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink {
        /// The link text, stored as is.
        target: String,
    },
    /// A hard link to an earlier entry.
    HardLink {
        /// The layer path linked to.
        target: String,
    },
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// Deletes the path from the layers below: written as `<dir>/.wh.<name>`.
    Whiteout,
    /// Hides the lower layers' contents of the directory: written as `<dir>/.wh..wh..opq`.
    OpaqueDir,
}

impl EntryKind {
    /// The kind a layer index records for an entry of this kind.
    pub fn index_kind(&self) -> IndexKind {
        match self {
            EntryKind::File { .. } => IndexKind::File,
            EntryKind::Dir => IndexKind::Dir,
            EntryKind::Symlink { .. } => IndexKind::Symlink,
            EntryKind::HardLink { .. } => IndexKind::HardLink,
            EntryKind::CharDevice { .. } => IndexKind::CharDevice,
            EntryKind::BlockDevice { .. } => IndexKind::BlockDevice,
            EntryKind::Fifo => IndexKind::Fifo,
            EntryKind::Whiteout => IndexKind::Whiteout,
            EntryKind::OpaqueDir => IndexKind::OpaqueDir,
        }
    }
}

/// Where a file entry's content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSource {
    /// A file on disk, streamed through a fixed-size buffer.
    Path(PathBuf),
    /// Bytes in memory (small generated files).
    Bytes(Vec<u8>),
}

/// The content of a file entry, ready to be copied.
enum Content<'e> {
    Bytes(&'e [u8]),
    File(File, &'e Path),
}

impl<'e> Content<'e> {
    /// Opens the source and checks its size against the entry's.
    fn open(path: &str, source: &'e FileSource, size: u64) -> Result<Self, LayerError> {
        let mismatch = |actual| LayerError::SizeMismatch {
            path: path.to_string(),
            declared: size,
            actual,
        };
        match source {
            FileSource::Bytes(bytes) if bytes.len() as u64 != size => {
                Err(mismatch(bytes.len() as u64))
            }
            FileSource::Bytes(bytes) => Ok(Content::Bytes(bytes)),
            FileSource::Path(file_path) => {
                let read_error = |source| LayerError::ReadSource {
                    path: path.to_string(),
                    file: file_path.clone(),
                    source,
                };
                let file = File::open(file_path).map_err(read_error)?;
                let actual = file.metadata().map_err(read_error)?.len();
                if actual != size {
                    return Err(mismatch(actual));
                }
                Ok(Content::File(file, file_path))
            }
        }
    }
}

/// A layer blob committed into the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the compressed blob, which is in the store.
    pub digest: Digest,
    /// Digest of the uncompressed tar (the image config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The OCI layer media type matching the compression.
    pub media_type: &'static str,
}

/// Compares two layer paths in component-wise byte order.
///
/// Paths are split at `/` and the component lists compared lexicographically, each component
/// by its bytes. A path therefore sorts right after its parent directory and a directory's
/// whole subtree comes before its next sibling: `a`, `a/b`, `a/b/c`, `a.b`, `ab` (plain byte
/// order would put `a.b` before `a/b` since `.` is below `/`). Extraction relies on this:
/// every directory exists before anything is written into it.
pub fn compare_paths(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Where an entry goes in the canonical order: its path, and an opaque marker after the
/// directory entry of the same path (the marker lives inside that directory).
fn order_key(entry: &LayerEntry) -> (&str, bool) {
    (&entry.path, matches!(entry.kind, EntryKind::OpaqueDir))
}

fn compare_keys(a: (&str, bool), b: (&str, bool)) -> Ordering {
    compare_paths(a.0, b.0).then(a.1.cmp(&b.1))
}

/// Puts entries in the canonical order [`LayerWriter::append`] requires: component-wise byte
/// order of paths (see [`compare_paths`]), so parents come before their children, with an
/// [`EntryKind::OpaqueDir`] right after the directory entry of the same path. Stable.
pub fn sort_entries(entries: &mut [LayerEntry]) {
    entries.sort_by(|a, b| compare_keys(order_key(a), order_key(b)));
}

type Output = HashingWriter<Encoder<BufWriter<BlobWriter>>>;

/// Streams entries into a layer blob.
///
/// Headers are normalized for reproducibility: USTAR headers (readable by every tar
/// implementation) with a PAX extended header only when a path or link target does not fit,
/// a number is outside the octal range (ids above 2,097,151, sizes of 8 GiB and more, times
/// before 1970 or after 2242), or extended attributes are present; empty user and group
/// names; the entry's mtime and no access or change times; the mode as given; device numbers
/// only on devices; directories named with a trailing `/` like Docker does. Whiteouts are
/// empty regular files with mode 0 and owner 0 carrying the entry's mtime.
pub struct LayerWriter<'a> {
    store: &'a Store,
    compression: Compression,
    out: Output,
    previous: Option<(String, bool)>,
    // Whether each path written so far is a directory: nothing may go below a non-directory.
    written: HashMap<String, bool>,
    entries: Vec<IndexEntry>,
    small_files: SmallFiles,
    buffer: Vec<u8>,
    // The entry whose failure left a partial entry in the stream.
    failed: Option<String>,
}

impl<'a> LayerWriter<'a> {
    /// Starts a layer blob in `store`.
    pub fn new(store: &'a Store, compression: Compression) -> Result<Self, LayerError> {
        let blob = store
            .blob_writer()
            .map_err(|source| LayerError::StartBlob { source })?;
        let encoder = compression
            .encoder(BufWriter::with_capacity(COPY_BUFFER, blob))
            .map_err(|source| LayerError::StartEncoder { source })?;
        Ok(LayerWriter {
            store,
            compression,
            out: HashingWriter::new(encoder),
            previous: None,
            written: HashMap::new(),
            entries: Vec::new(),
            small_files: SmallFiles::default(),
            buffer: vec![0; COPY_BUFFER],
            failed: None,
        })
    }

    /// Appends one entry; entries must come in canonical order (error otherwise).
    ///
    /// See [`sort_entries`]. An entry below a non-directory of this layer (including a
    /// whiteout) is refused, as is a second entry for a path. Refused entries leave the
    /// layer as it was; a failure while writing (an I/O error, a file changing size while
    /// it is copied) makes every later call fail with [`LayerError::Incomplete`].
    pub fn append(&mut self, entry: &LayerEntry) -> Result<(), LayerError> {
        if let Some(path) = &self.failed {
            return Err(LayerError::Incomplete { path: path.clone() });
        }
        validate_path(&entry.path)?;
        self.check_order(entry)?;
        let fields = header_fields(entry)?;
        let header = tarheader::encode(&fields).map_err(|reason| LayerError::InvalidEntry {
            path: entry.path.clone(),
            reason,
        })?;
        // Opened and measured before any byte goes out, so that the usual failures (a
        // missing file, a wrong size) do not leave a partial entry in the stream.
        let content = match &entry.kind {
            EntryKind::File { source, size } => Some(Content::open(&entry.path, source, *size)?),
            _ => None,
        };
        let capture = content.is_some() && self.small_files.wants(&entry.path, fields.size);
        match self.write_entry(&entry.path, &header, content, fields.size, capture) {
            Ok(Some(captured)) => self.small_files.insert(entry.path.clone(), captured),
            Ok(None) => {}
            Err(error) => {
                self.failed = Some(entry.path.clone());
                return Err(error);
            }
        }

        let is_dir = matches!(entry.kind, EntryKind::Dir | EntryKind::OpaqueDir);
        // An opaque marker does not replace the directory entry that may precede it.
        self.written.entry(entry.path.clone()).or_insert(is_dir);
        let opaque = matches!(entry.kind, EntryKind::OpaqueDir);
        self.previous = Some((entry.path.clone(), opaque));
        self.entries.push(index_entry(entry, &fields));
        Ok(())
    }

    fn check_order(&self, entry: &LayerEntry) -> Result<(), LayerError> {
        if let Some((previous, opaque)) = &self.previous {
            match compare_keys((previous, *opaque), order_key(entry)) {
                Ordering::Less => {}
                Ordering::Equal => {
                    return Err(LayerError::Duplicate {
                        path: entry.path.clone(),
                    });
                }
                Ordering::Greater => {
                    return Err(LayerError::OutOfOrder {
                        path: entry.path.clone(),
                        previous: previous.clone(),
                    });
                }
            }
        }
        // The opaque marker is written inside its directory, so the directory itself must
        // not be a non-directory of this layer either.
        let own = matches!(entry.kind, EntryKind::OpaqueDir).then_some(entry.path.as_str());
        let ancestors = entry.path.match_indices('/').map(|(i, _)| &entry.path[..i]);
        for parent in ancestors.chain(own) {
            if self.written.get(parent) == Some(&false) {
                return Err(LayerError::ParentNotDirectory {
                    path: entry.path.clone(),
                    parent: parent.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Writes the header, the content and its padding; returns the content if `capture`.
    fn write_entry(
        &mut self,
        path: &str,
        header: &[u8],
        content: Option<Content<'_>>,
        size: u64,
        capture: bool,
    ) -> Result<Option<Vec<u8>>, LayerError> {
        let write_error = |source| LayerError::WriteEntry {
            path: path.to_string(),
            source,
        };
        self.out.write_all(header).map_err(write_error)?;
        let Some(content) = content else {
            return Ok(None);
        };
        let mut captured = capture.then(Vec::new);
        match content {
            Content::Bytes(bytes) => {
                self.out.write_all(bytes).map_err(write_error)?;
                if let Some(captured) = captured.as_mut() {
                    captured.extend_from_slice(bytes);
                }
            }
            Content::File(file, file_path) => {
                self.copy_file(path, file, file_path, size, captured.as_mut())?;
            }
        }
        let padding = (BLOCK - size % BLOCK) % BLOCK;
        // `padding` is below 512, so the cast cannot truncate.
        self.out
            .write_all(&[0; BLOCK as usize][..padding as usize])
            .map_err(write_error)?;
        Ok(captured)
    }

    /// Streams exactly `size` bytes of `file` through the fixed buffer.
    fn copy_file(
        &mut self,
        path: &str,
        file: File,
        file_path: &Path,
        size: u64,
        mut captured: Option<&mut Vec<u8>>,
    ) -> Result<(), LayerError> {
        let write_error = |source| LayerError::WriteEntry {
            path: path.to_string(),
            source,
        };
        let read_error = |source| LayerError::ReadSource {
            path: path.to_string(),
            file: file_path.to_path_buf(),
            source,
        };
        let mismatch = |actual| LayerError::SizeMismatch {
            path: path.to_string(),
            declared: size,
            actual,
        };
        // Never read past the declared size: the header is already written, so a file that
        // grew meanwhile must be reported rather than silently truncated.
        let mut limited = file.take(size);
        let mut copied = 0u64;
        loop {
            let n = match limited.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            let chunk = &self.buffer[..n];
            self.out.write_all(chunk).map_err(write_error)?;
            if let Some(captured) = captured.as_mut() {
                captured.extend_from_slice(chunk);
            }
            copied += n as u64;
        }
        if copied < size {
            return Err(mismatch(copied));
        }
        let mut file = limited.into_inner();
        let mut probe = [0u8; 1];
        if file.read(&mut probe).map_err(read_error)? > 0 {
            // The real size is unknown without reading on; report at least one byte more.
            let actual = file.metadata().map_or(0, |m| m.len()).max(size + 1);
            return Err(mismatch(actual));
        }
        Ok(())
    }

    /// Finishes the tar and the compression and commits the blob; returns the layer and the
    /// index of what was written.
    ///
    /// The index is also cached in the store, so [`index::index_layer`] on the new blob does
    /// not read it.
    pub fn finish(mut self) -> Result<(Layer, LayerIndex), LayerError> {
        if let Some(path) = self.failed {
            return Err(LayerError::Incomplete { path });
        }
        let finish_error = |source| LayerError::Finish { source };
        // The end-of-archive marker: two zero blocks.
        self.out
            .write_all(&[0; 2 * BLOCK as usize])
            .map_err(finish_error)?;
        let (encoder, diff_id, uncompressed_size) = self.out.finish();
        let buffered = encoder.finish().map_err(finish_error)?;
        let blob = buffered
            .into_inner()
            .map_err(|e| finish_error(e.into_error()))?;
        let (digest, size) = blob
            .commit(None)
            .map_err(|source| LayerError::Commit { source })?;
        let layer_index = LayerIndex {
            entries: self.entries,
            small_files: self.small_files.into_map(),
        };
        index::save_index(self.store, &digest, &layer_index)?;
        let layer = Layer {
            digest,
            diff_id,
            size,
            uncompressed_size,
            media_type: self.compression.media_type(),
        };
        Ok((layer, layer_index))
    }
}

fn validate_path(path: &str) -> Result<(), LayerError> {
    let invalid = |reason| {
        Err(LayerError::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return invalid("the path is empty");
    }
    if path.contains('\0') {
        return invalid("the path contains a NUL byte");
    }
    if path.starts_with('/') || path.ends_with('/') {
        return invalid("the path must not start or end with `/`");
    }
    for component in path.split('/') {
        match component {
            "" => return invalid("the path has an empty component"),
            "." | ".." => return invalid("the path has a `.` or `..` component"),
            // Such a name would be read back as a whiteout by every runtime.
            c if c.starts_with(".wh.") => {
                return invalid("names starting with `.wh.` are reserved");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The tar header of an entry: its tar name, type, link and numbers after normalization.
fn header_fields(entry: &LayerEntry) -> Result<HeaderFields<'_>, LayerError> {
    let invalid = |reason: &str| LayerError::InvalidEntry {
        path: entry.path.clone(),
        reason: reason.to_string(),
    };
    let (parent, base) = match entry.path.rsplit_once('/') {
        Some((parent, base)) => (format!("{parent}/"), base),
        None => (String::new(), entry.path.as_str()),
    };
    let mut fields = HeaderFields {
        name: entry.path.clone(),
        entry_type: tar::EntryType::Regular,
        link: None,
        mode: entry.mode & 0o7777,
        uid: entry.uid,
        gid: entry.gid,
        mtime: entry.mtime,
        size: 0,
        device: None,
        xattrs: &entry.xattrs,
    };
    match &entry.kind {
        EntryKind::File { size, .. } => fields.size = *size,
        EntryKind::Dir => {
            fields.entry_type = tar::EntryType::Directory;
            fields.name.push('/');
        }
        EntryKind::Symlink { target } => {
            if target.is_empty() || target.contains('\0') {
                return Err(invalid(
                    "a symlink target must be non-empty and without NUL bytes",
                ));
            }
            fields.entry_type = tar::EntryType::Symlink;
            fields.link = Some(target.clone());
        }
        EntryKind::HardLink { target } => {
            validate_path(target)
                .map_err(|_| invalid("a hard link target must be a layer path"))?;
            fields.entry_type = tar::EntryType::Link;
            fields.link = Some(target.clone());
        }
        EntryKind::CharDevice { major, minor } => {
            fields.entry_type = tar::EntryType::Char;
            fields.device = Some((*major, *minor));
        }
        EntryKind::BlockDevice { major, minor } => {
            fields.entry_type = tar::EntryType::Block;
            fields.device = Some((*major, *minor));
        }
        EntryKind::Fifo => fields.entry_type = tar::EntryType::Fifo,
        EntryKind::Whiteout | EntryKind::OpaqueDir => {
            fields.name = match entry.kind {
                EntryKind::Whiteout => format!("{parent}.wh.{base}"),
                _ => format!("{}/.wh..wh..opq", entry.path),
            };
            // A whiteout's owner and mode mean nothing; fixing them keeps layers comparable.
            fields.mode = 0;
            fields.uid = 0;
            fields.gid = 0;
        }
    }
    Ok(fields)
}

/// What [`index::index_layer`] reads back from the header of this entry.
fn index_entry(entry: &LayerEntry, fields: &HeaderFields<'_>) -> IndexEntry {
    let kind = entry.kind.index_kind();
    IndexEntry {
        path: entry.path.clone(),
        kind,
        mode: fields.mode,
        uid: fields.uid,
        gid: fields.gid,
        size: fields.size,
        mtime: fields.mtime,
        link_target: fields.link.clone(),
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;

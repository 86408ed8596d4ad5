//! Tar layers: writing reproducible layer blobs into the store, indexing their headers, a
//! merged read-only view of a layer stack, and applying layers onto a directory.
//!
//! Layers follow the OCI image-spec changeset format: a tar whose `.wh.<name>` entries delete
//! `<name>` from the layers below and whose `.wh..wh..opq` entries hide everything a lower
//! layer had in their directory.

pub mod compress;
pub mod extract;
pub mod index;
mod tarheader;
pub mod view;
pub mod writer;

use std::io;
use std::path::PathBuf;

pub use compress::{Compression, decompressed};
pub use extract::{ExtractError, ExtractOptions, ExtractStats, apply_layer};
pub use index::{IndexEntry, IndexKind, LayerIndex, index_layer};
pub use view::FsView;
pub use writer::{EntryKind, FileSource, Layer, LayerEntry, LayerWriter, sort_entries};

use crate::oci::digest::Digest;
use crate::store::StoreError;

/// Why writing, indexing, viewing or applying a layer failed.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The store could not provide a temporary blob to write the layer into.
    #[error("failed to start a layer blob in the store")]
    StartBlob {
        /// What the store reported.
        #[source]
        source: StoreError,
    },
    /// The compressor could not be set up.
    #[error("failed to start the layer compressor")]
    StartEncoder {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing an entry into the layer stream failed.
    #[error("failed to write layer entry `{path}`")]
    WriteEntry {
        /// The entry's layer path.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file providing an entry's content could not be read.
    #[error("failed to read `{}` for layer entry `{path}`", file.display())]
    ReadSource {
        /// The entry's layer path.
        path: String,
        /// The file on disk.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An entry's content did not have the size its entry declared (the file changed while
    /// the layer was written, or the caller got the size wrong).
    #[error("layer entry `{path}` declares {declared} bytes but its content has {actual}")]
    SizeMismatch {
        /// The entry's layer path.
        path: String,
        /// The size in the entry.
        declared: u64,
        /// The size found.
        actual: u64,
    },
    /// An entry's path is not a clean relative layer path.
    #[error("invalid layer entry path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A link target or extended attribute cannot be represented in a tar header.
    #[error("invalid layer entry `{path}`: {reason}")]
    InvalidEntry {
        /// The entry's layer path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry came before one it must follow in the canonical order.
    #[error("layer entry `{path}` is out of canonical order: it must come before `{previous}`")]
    OutOfOrder {
        /// The entry being appended.
        path: String,
        /// The entry appended before it.
        previous: String,
    },
    /// The same path was appended twice.
    #[error("duplicate layer entry `{path}`")]
    Duplicate {
        /// The repeated path.
        path: String,
    },
    /// An entry lies below an entry of the same layer that is not a directory.
    #[error("layer entry `{path}` lies below `{parent}`, which is not a directory in this layer")]
    ParentNotDirectory {
        /// The entry being appended.
        path: String,
        /// The non-directory ancestor.
        parent: String,
    },
    /// An earlier entry failed after part of it was written, so the layer cannot be used.
    #[error("layer is incomplete: writing entry `{path}` failed")]
    Incomplete {
        /// The entry that failed.
        path: String,
    },
    /// Finishing the compressed stream failed.
    #[error("failed to finish the layer stream")]
    Finish {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The finished blob could not be committed into the store.
    #[error("failed to commit the layer blob into the store")]
    Commit {
        /// What the store reported.
        #[source]
        source: StoreError,
    },
    /// The layer blob could not be opened.
    #[error("failed to open layer blob `{digest}`")]
    OpenBlob {
        /// The blob's digest.
        digest: Digest,
        /// What the store reported.
        #[source]
        source: StoreError,
    },
    /// The layer blob could not be decompressed or parsed as a tar.
    #[error("failed to read layer `{digest}`")]
    ReadLayer {
        /// The blob's digest.
        digest: Digest,
        /// The I/O or format error.
        #[source]
        source: io::Error,
    },
    /// A whiteout entry names nothing that can be deleted.
    #[error("layer `{digest}` has an invalid whiteout `{name}`")]
    InvalidWhiteout {
        /// The blob's digest.
        digest: Digest,
        /// The entry name in the tar.
        name: String,
    },
    /// The cached index of a layer could not be read or written.
    #[error("failed to access the cached index of layer `{digest}`")]
    IndexCache {
        /// The blob's digest.
        digest: Digest,
        /// What the store reported.
        #[source]
        source: StoreError,
    },
    /// The index of a layer could not be serialized.
    #[error("failed to serialize the index of layer `{digest}`")]
    EncodeIndex {
        /// The blob's digest.
        digest: Digest,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// Resolving a path met a symlink loop or more symlinks than a kernel would follow.
    #[error("too many levels of symbolic links resolving `{path}`")]
    SymlinkLoop {
        /// The path being resolved.
        path: String,
    },
    /// Applying a layer onto a directory failed.
    #[error("failed to apply a layer")]
    Extract(#[from] extract::ExtractError),
}

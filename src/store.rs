//! The content-addressed store on disk: blobs by digest, small metadata, scratch space.
//!
//! Layout under the root:
//!
//! - `blobs/sha256/<hex>`: immutable blobs, only ever created by renaming a complete, fsynced
//!   and verified temporary file into place, so a reader never sees a partial blob;
//! - `tmp/`: temporary files and directories with unique random names;
//! - `meta/<kind>/<key>`: small cached metadata, also replaced atomically.
//!
//! Several processes may share one store: every writer has its own temporary file and the final
//! rename is atomic, so two writers of the same blob both succeed and leave one intact copy.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::{TempDir, TempPath};

use crate::oci::digest::{Digest, HashingWriter};

/// A content-addressed blob store rooted at a directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("failed to {op} `{}`", path.display())]
    Io {
        /// What was being done, such as `create directory`.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The blob is not in the store.
    #[error("blob `{digest}` is not in the store at `{}`", root.display())]
    BlobMissing {
        /// The digest asked for.
        digest: Digest,
        /// The store's root.
        root: PathBuf,
    },
    /// Written content does not have the digest it was expected to have.
    #[error("blob digest mismatch: expected `{expected}`, got `{actual}`")]
    DigestMismatch {
        /// The digest the caller announced.
        expected: Digest,
        /// The digest of what was actually written.
        actual: Digest,
    },
    /// A metadata kind or key is not a plain file name.
    #[error("invalid metadata name `{name}`: expected a non-empty name without `/`")]
    InvalidMetaName {
        /// The offending kind or key.
        name: String,
    },
}

/// Builds a `map_err` closure attaching the operation and path to an I/O error.
fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Temporary files get world-readable permissions (before the umask) because tempfile's default
/// of 0600 would follow the blob when it is hard-linked into an output layout.
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

/// Fsyncs a directory so that a rename into it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

impl Store {
    /// Opens (creating if needed) a store rooted at `root`: `blobs/sha256/`, `tmp/`, `meta/`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in [store.blobs_dir(), store.tmp_dir(), store.root.join("meta")] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        store.sweep_tmp();
        Ok(store)
    }

    /// Removes what killed builds left in `tmp/`: every temporary name carries its process
    /// id, and an entry whose process is gone is nobody's.
    ///
    /// Processes of other PID namespaces sharing the store are invisible here; their entries
    /// would be removed too, so a store is not to be shared across PID namespaces while in use.
    fn sweep_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = temp_owner(&name.to_string_lossy()) else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }

    /// `$XDG_CACHE_HOME/rust-image-action` or `~/.cache/rust-image-action`.
    pub fn default_root() -> PathBuf {
        default_root_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Whether the blob `digest` is in the store.
    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Opens the blob `digest` for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|source| self.blob_error(digest, &path, "open blob", source))
    }

    /// Opens the blob `digest` for a streaming read of `size` bytes that fails at the end unless
    /// they have that digest, so a damaged blob cannot slip silently into an output.
    pub fn open_blob_verified(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<VerifiedBlob, StoreError> {
        Ok(VerifiedBlob {
            file: self.open_blob(digest)?,
            hasher: Some(HashingWriter::new(io::sink())),
            digest: *digest,
            remaining: size,
        })
    }

    /// Reads the whole blob `digest` into memory; meant for manifests and configs.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|source| self.blob_error(digest, &path, "read blob", source))
    }

    /// The size in bytes of the blob `digest`.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.blob_path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|source| self.blob_error(digest, &path, "stat blob", source))
    }

    /// A missing blob is a distinct error because callers report it differently from I/O
    /// failures (it usually means a build step or import did not happen).
    fn blob_error(
        &self,
        digest: &Digest,
        path: &Path,
        op: &'static str,
        e: io::Error,
    ) -> StoreError {
        if e.kind() == io::ErrorKind::NotFound {
            StoreError::BlobMissing {
                digest: *digest,
                root: self.root.clone(),
            }
        } else {
            StoreError::Io {
                op,
                path: path.to_path_buf(),
                source: e,
            }
        }
    }

    /// Stores `bytes` as a blob and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.has(&digest) {
            return Ok(digest);
        }
        let mut writer = self.blob_writer()?;
        let path = writer.temp_path.to_path_buf();
        writer
            .write_all(bytes)
            .map_err(io_err("write temporary file", &path))?;
        writer.commit(Some(&digest)).map(|(digest, _)| digest)
    }

    /// A writer into a unique temporary file under `tmp/`, hashing as it goes.
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp = self.tmp_dir();
        let file = temp_file_builder(&owned_prefix("blob-"))
            .tempfile_in(&tmp)
            .map_err(io_err("create temporary file in", &tmp))?;
        let (file, temp_path) = file.into_parts();
        Ok(BlobWriter {
            inner: HashingWriter::new(BufWriter::with_capacity(256 * 1024, file)),
            temp_path,
            blobs_dir: self.blobs_dir(),
        })
    }

    /// Small cached metadata (layer indexes, ...): `meta/<kind>/<key>`, written atomically.
    pub fn read_meta(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.meta_path(kind, key)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                op: "read metadata",
                path,
                source,
            }),
        }
    }

    /// Writes `meta/<kind>/<key>` atomically: readers see the old or the new content, whole.
    pub fn write_meta(&self, kind: &str, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.meta_path(kind, key)?;
        let dir = self.root.join("meta").join(kind);
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let tmp = self.tmp_dir();
        let mut file = temp_file_builder(&owned_prefix("meta-"))
            .tempfile_in(&tmp)
            .map_err(io_err("create temporary file in", &tmp))?;
        file.write_all(bytes)
            .and_then(|()| file.as_file().sync_all())
            .map_err(io_err("write temporary file", file.path()))?;
        file.persist(&path).map_err(|e| StoreError::Io {
            op: "rename metadata into place at",
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    fn meta_path(&self, kind: &str, key: &str) -> Result<PathBuf, StoreError> {
        for name in [kind, key] {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return Err(StoreError::InvalidMetaName {
                    name: name.to_string(),
                });
            }
        }
        Ok(self.root.join("meta").join(kind).join(key))
    }

    /// A fresh private directory under `tmp/` removed on drop (for extraction, scratch files).
    pub fn temp_dir(&self) -> Result<TempDir, StoreError> {
        let tmp = self.tmp_dir();
        tempfile::Builder::new()
            .prefix(&owned_prefix("dir-"))
            .tempdir_in(&tmp)
            .map_err(io_err("create temporary directory in", &tmp))
    }
}

/// `KIND-PID-`: temporary names say which process owns them (see `Store::sweep_tmp`).
fn owned_prefix(kind: &str) -> String {
    format!("{kind}{}-", std::process::id())
}

/// The process id in a temporary name made with [`owned_prefix`].
fn temp_owner(name: &str) -> Option<u32> {
    let (_, rest) = name.split_once('-')?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// The XDG rule: `$XDG_CACHE_HOME` counts only when absolute, else `$HOME/.cache`; without a
/// home directory the system temporary directory is the last resort.
fn default_root_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let xdg = xdg_cache_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = || {
        home.map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|h| h.join(".cache"))
    };
    xdg.or_else(home)
        .unwrap_or_else(std::env::temp_dir)
        .join("rust-image-action")
}

/// A blob being read and verified: see [`Store::open_blob_verified`].
///
/// The last `read` returns an [`io::ErrorKind::InvalidData`] error wrapping
/// [`StoreError::DigestMismatch`] if the content does not match, or an
/// [`io::ErrorKind::UnexpectedEof`] error if the blob is shorter than announced.
pub struct VerifiedBlob {
    file: File,
    /// `None` once the end was reached and checked.
    hasher: Option<HashingWriter<io::Sink>>,
    digest: Digest,
    remaining: u64,
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // End of the blob: check once, then behave like any exhausted reader.
            if let Some(hasher) = self.hasher.take() {
                let (_, actual, _) = hasher.finish();
                if actual != self.digest {
                    let error = StoreError::DigestMismatch {
                        expected: self.digest,
                        actual,
                    };
                    return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                }
            }
            return Ok(0);
        }
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..max])?;
        if n == 0 {
            let message = format!("blob `{}` is shorter than its size", self.digest);
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, message));
        }
        hasher.write_all(&buf[..n])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Writes one blob into the store: see [`Store::blob_writer`].
///
/// Dropping it without [`BlobWriter::commit`] removes its temporary file.
pub struct BlobWriter {
    inner: HashingWriter<BufWriter<File>>,
    /// Removes the temporary file when dropped, which covers every early return and panic.
    temp_path: TempPath,
    blobs_dir: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.inner.written()
    }

    /// fsyncs, verifies `expected` if given, renames into place atomically (if the blob already
    /// exists the temp file is just removed); never leaves a partial blob under blobs/.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let BlobWriter {
            inner,
            temp_path,
            blobs_dir,
        } = self;
        let (buffered, digest, size) = inner.finish();
        let file = buffered.into_inner().map_err(|e| StoreError::Io {
            op: "flush temporary file",
            path: temp_path.to_path_buf(),
            source: e.into_error(),
        })?;
        file.sync_all()
            .map_err(io_err("sync temporary file", &temp_path))?;
        drop(file);
        if let Some(&expected) = expected.filter(|&&e| e != digest) {
            return Err(StoreError::DigestMismatch {
                expected,
                actual: digest,
            });
        }
        let dest = blobs_dir.join(digest.hex());
        // Blobs are only ever renamed into place after verification, so an existing one of the
        // right size is this content; a wrong size means someone damaged it, and replacing it
        // repairs the store.
        if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == size) {
            return Ok((digest, size));
        }
        // rename(2) atomically replaces a concurrent writer's identical blob, so both succeed.
        temp_path.persist(&dest).map_err(|e| StoreError::Io {
            op: "rename blob into place at",
            path: dest.clone(),
            source: e.error,
        })?;
        sync_dir(&blobs_dir)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open store");
        (dir, store)
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn opening_sweeps_what_dead_processes_left_in_tmp() {
        let (dir, store) = store();
        let live = store.temp_dir().expect("temp dir");
        // A process id that cannot be running: above the kernel's maximum.
        let dead = store.tmp_dir().join("dir-4294967-abc");
        fs::create_dir_all(dead.join("upper/etc")).expect("dead dir");
        fs::write(store.tmp_dir().join("blob-4294967-x"), b"partial").expect("dead file");
        fs::write(store.tmp_dir().join("unowned"), b"kept").expect("other file");
        let reopened = Store::open(dir.path()).expect("reopen");
        let left = entries(&reopened.tmp_dir());
        let live_name = live
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(left, vec![live_name, "unowned".to_string()]);
    }

    #[test]
    fn open_creates_the_layout() {
        let (dir, _store) = store();
        for sub in ["blobs/sha256", "tmp", "meta"] {
            assert!(dir.path().join(sub).is_dir(), "{sub}");
        }
    }

    #[test]
    fn written_blobs_read_back() {
        let (_dir, store) = store();
        let digest = store.write_blob(b"hello").expect("write");
        assert_eq!(digest, Digest::of(b"hello"));
        assert!(store.has(&digest));
        assert_eq!(store.read_blob(&digest).expect("read"), b"hello");
        assert_eq!(store.blob_size(&digest).expect("size"), 5);
        let mut text = String::new();
        io::Read::read_to_string(&mut store.open_blob(&digest).expect("open"), &mut text)
            .expect("read");
        assert_eq!(text, "hello");
        // Writing the same content again is a no-op that still succeeds.
        assert_eq!(store.write_blob(b"hello").expect("rewrite"), digest);
        assert!(entries(&store.root.join("tmp")).is_empty());
    }

    #[test]
    fn missing_blobs_are_reported_as_missing() {
        let (_dir, store) = store();
        let digest = Digest::of(b"absent");
        assert!(!store.has(&digest));
        for result in [
            store.read_blob(&digest).map(|_| ()),
            store.open_blob(&digest).map(|_| ()),
            store.blob_size(&digest).map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(StoreError::BlobMissing { .. })),
                "{result:?}"
            );
        }
    }

    #[test]
    fn digest_mismatch_leaves_nothing_behind() {
        let (_dir, store) = store();
        let mut writer = store.blob_writer().expect("writer");
        writer.write_all(b"actual content").expect("write");
        assert_eq!(writer.bytes_written(), 14);
        let expected = Digest::of(b"other content");
        let error = writer.commit(Some(&expected)).expect_err("must fail");
        assert!(
            matches!(error, StoreError::DigestMismatch { expected: e, actual: a }
                if e == expected && a == Digest::of(b"actual content")),
            "{error:?}"
        );
        assert!(entries(&store.blobs_dir()).is_empty());
        assert!(entries(&store.tmp_dir()).is_empty());
    }

    #[test]
    fn dropped_writer_leaves_no_temp_file() {
        let (_dir, store) = store();
        let mut writer = store.blob_writer().expect("writer");
        writer.write_all(&[7; 100_000]).expect("write");
        assert_eq!(entries(&store.tmp_dir()).len(), 1);
        drop(writer);
        assert!(entries(&store.tmp_dir()).is_empty());
        assert!(entries(&store.blobs_dir()).is_empty());
    }

    #[test]
    fn verified_reads_check_size_and_digest() {
        fn check(store: &Store, digest: &Digest, size: u64, expected: Result<&[u8], &str>) {
            let mut content = Vec::new();
            let result = store
                .open_blob_verified(digest, size)
                .map_err(|e| e.to_string())
                .and_then(|mut r| {
                    io::Read::read_to_end(&mut r, &mut content).map_err(|e| e.to_string())
                });
            match expected {
                Ok(bytes) => assert_eq!((result, &content[..]), (Ok(bytes.len()), bytes)),
                Err(message) => assert_eq!(result, Err(message.to_string())),
            }
        }
        let (_dir, store) = store();
        let digest = store.write_blob(b"verified").expect("write");
        check(&store, &digest, 8, Ok(b"verified"));
        check(
            &store,
            &digest,
            9,
            Err(&format!("blob `{digest}` is shorter than its size")),
        );
        let prefix = Digest::of(b"verifie");
        check(
            &store,
            &digest,
            7,
            Err(&format!(
                "blob digest mismatch: expected `{digest}`, got `{prefix}`"
            )),
        );
        fs::write(store.blob_path(&digest), b"VERIFIED").expect("damage");
        let actual = Digest::of(b"VERIFIED");
        check(
            &store,
            &digest,
            8,
            Err(&format!(
                "blob digest mismatch: expected `{digest}`, got `{actual}`"
            )),
        );
    }

    #[test]
    fn damaged_blob_is_replaced_on_rewrite() {
        let (_dir, store) = store();
        let digest = store.write_blob(b"precious").expect("write");
        fs::write(store.blob_path(&digest), b"trunc").expect("damage");
        let mut writer = store.blob_writer().expect("writer");
        writer.write_all(b"precious").expect("write");
        writer.commit(Some(&digest)).expect("commit");
        assert_eq!(store.read_blob(&digest).expect("read"), b"precious");
    }

    #[test]
    fn meta_round_trips_and_is_replaced() {
        let (_dir, store) = store();
        assert_eq!(store.read_meta("layer-index", "abc").expect("read"), None);
        store
            .write_meta("layer-index", "abc", b"one")
            .expect("write");
        store
            .write_meta("layer-index", "abc", b"two")
            .expect("write");
        assert_eq!(
            store
                .read_meta("layer-index", "abc")
                .expect("read")
                .as_deref(),
            Some(&b"two"[..])
        );
        assert!(entries(&store.tmp_dir()).is_empty());
    }

    #[test]
    fn meta_names_must_be_plain() {
        let (_dir, store) = store();
        for (kind, key) in [
            ("", "k"),
            ("k", ""),
            ("..", "k"),
            ("k", "a/b"),
            ("k", "."),
            ("a\0", "k"),
        ] {
            let result = store.write_meta(kind, key, b"x");
            assert!(
                matches!(result, Err(StoreError::InvalidMetaName { .. })),
                "{kind:?} {key:?}"
            );
            assert!(store.read_meta(kind, key).is_err(), "{kind:?} {key:?}");
        }
    }

    #[test]
    fn temp_dirs_are_under_tmp_and_removed_on_drop() {
        let (_dir, store) = store();
        let temp = store.temp_dir().expect("temp dir");
        assert!(temp.path().starts_with(store.tmp_dir()));
        let path = temp.path().to_path_buf();
        drop(temp);
        assert!(!path.exists());
    }

    #[test]
    fn default_root_follows_xdg() {
        fn check(xdg: Option<&str>, home: Option<&str>, expected: &Path) {
            let root = default_root_from(xdg.map(OsString::from), home.map(OsString::from));
            assert_eq!(root, expected, "XDG_CACHE_HOME={xdg:?} HOME={home:?}");
        }
        let tmp = std::env::temp_dir().join("rust-image-action");
        check(
            Some("/x/cache"),
            Some("/home/u"),
            Path::new("/x/cache/rust-image-action"),
        );
        check(
            None,
            Some("/home/u"),
            Path::new("/home/u/.cache/rust-image-action"),
        );
        check(
            Some("relative"),
            Some("/home/u"),
            Path::new("/home/u/.cache/rust-image-action"),
        );
        check(
            Some(""),
            Some("/home/u"),
            Path::new("/home/u/.cache/rust-image-action"),
        );
        check(None, None, &tmp);
        assert!(Store::default_root().ends_with("rust-image-action"));
    }

    #[test]
    fn error_messages_name_the_object() {
        fn check(error: StoreError, expected: &str) {
            assert_eq!(error.to_string(), expected);
        }
        let d = Digest::of(b"");
        check(
            StoreError::Io {
                op: "open blob",
                path: "/s/b".into(),
                source: io::Error::other("x"),
            },
            "failed to open blob `/s/b`",
        );
        check(
            StoreError::BlobMissing {
                digest: d,
                root: "/s".into(),
            },
            &format!("blob `{d}` is not in the store at `/s`"),
        );
        check(
            StoreError::DigestMismatch {
                expected: d,
                actual: d,
            },
            &format!("blob digest mismatch: expected `{d}`, got `{d}`"),
        );
    }

    /// Content for the concurrency workload: `shared` blobs every writer writes, and blobs
    /// unique to `worker`. Big enough (1 MiB) that concurrent writes really overlap.
    fn workload_blobs(worker: &str) -> Vec<Vec<u8>> {
        let blob = |seed: &str| -> Vec<u8> {
            let mut content = Vec::with_capacity(1 << 20);
            while content.len() < 1 << 20 {
                content.extend_from_slice(seed.as_bytes());
                content.extend_from_slice(&(content.len() as u64).to_le_bytes());
            }
            content
        };
        vec![
            blob("shared-a"),
            blob("shared-b"),
            blob(&format!("own-{worker}")),
        ]
    }

    /// Writes the workload through small chunks so writers interleave, verifying each commit.
    fn run_workload(root: &Path, worker: &str) {
        let store = Store::open(root).expect("open store");
        for content in workload_blobs(worker) {
            let mut writer = store.blob_writer().expect("writer");
            for chunk in content.chunks(4096) {
                writer.write_all(chunk).expect("write");
            }
            let (digest, size) = writer.commit(Some(&Digest::of(&content))).expect("commit");
            assert_eq!(size, content.len() as u64);
            assert_eq!(
                store.read_blob(&digest).expect("read back").len(),
                content.len()
            );
        }
    }

    fn assert_store_intact(root: &Path, workers: &[String]) {
        let store = Store::open(root).expect("open store");
        let mut expected: Vec<String> = workers
            .iter()
            .flat_map(|w| workload_blobs(w))
            .map(|c| Digest::of(&c).hex())
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(entries(&store.blobs_dir()), expected);
        for hex in &expected {
            let content = fs::read(store.blobs_dir().join(hex)).expect("read blob");
            assert_eq!(&Digest::of(&content).hex(), hex, "blob {hex} is damaged");
        }
        assert!(
            entries(&store.tmp_dir()).is_empty(),
            "temporary files left behind"
        );
    }

    #[test]
    fn concurrent_threads_with_separate_handles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workers: Vec<String> = (0..6).map(|i| format!("thread-{i}")).collect();
        std::thread::scope(|scope| {
            for worker in &workers {
                scope.spawn(|| run_workload(dir.path(), worker));
            }
        });
        assert_store_intact(dir.path(), &workers);
    }

    const CHILD_ROOT: &str = "RUST_IMAGE_ACTION_STORE_TEST_ROOT";
    const CHILD_WORKER: &str = "RUST_IMAGE_ACTION_STORE_TEST_WORKER";

    /// Run directly, this is a single-process run of the workload; spawned by
    /// [`concurrent_processes`] with the environment variables set, it is one of the processes.
    #[test]
    fn workload_child() {
        match (std::env::var_os(CHILD_ROOT), std::env::var(CHILD_WORKER)) {
            (Some(root), Ok(worker)) => run_workload(Path::new(&root), &worker),
            _ => {
                let dir = tempfile::tempdir().expect("tempdir");
                run_workload(dir.path(), "solo");
                assert_store_intact(dir.path(), &["solo".to_string()]);
            }
        }
    }

    #[test]
    fn concurrent_processes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("test binary");
        let workers: Vec<String> = (0..4).map(|i| format!("process-{i}")).collect();
        let children: Vec<_> = workers
            .iter()
            .map(|worker| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "store::tests::workload_child",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ROOT, dir.path())
                    .env(CHILD_WORKER, worker)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn child")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().expect("wait child");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "child failed: {stdout}");
            // Guards against the filter matching nothing, which would pass vacuously.
            assert!(stdout.contains("1 passed"), "child ran no test: {stdout}");
        }
        assert_store_intact(dir.path(), &workers);
    }
}

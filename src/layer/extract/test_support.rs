//! Helpers for the extraction tests: tarballs written header by header (so hostile names
//! reach the extractor exactly as given) and snapshots of directory trees.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{ExtractError, ExtractOptions, ExtractStats, apply_layer_with, resolve::Resolution};

/// One member of a test tarball.
#[derive(Debug, Clone)]
pub(super) struct TarEntry {
    name: Vec<u8>,
    kind: EntryType,
    data: Vec<u8>,
    link: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    atime: u64,
    device: (u32, u32),
    pax: Vec<(String, Vec<u8>)>,
    long_name: bool,
}

impl TarEntry {
    fn new(name: &[u8], kind: EntryType, mode: u32) -> TarEntry {
        TarEntry {
            name: name.to_vec(),
            kind,
            data: Vec::new(),
            link: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            atime: 0,
            device: (0, 0),
            pax: Vec::new(),
            long_name: false,
        }
    }

    /// A regular file.
    pub(super) fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> TarEntry {
        let mut entry = TarEntry::new(name.as_ref(), EntryType::Regular, 0o644);
        entry.data = data.as_ref().to_vec();
        entry
    }

    /// A directory.
    pub(super) fn dir(name: impl AsRef<[u8]>) -> TarEntry {
        TarEntry::new(name.as_ref(), EntryType::Directory, 0o755)
    }

    /// A symlink.
    pub(super) fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> TarEntry {
        let mut entry = TarEntry::new(name.as_ref(), EntryType::Symlink, 0o777);
        entry.link = target.as_ref().to_vec();
        entry
    }

    /// A hard link.
    pub(super) fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> TarEntry {
        let mut entry = TarEntry::new(name.as_ref(), EntryType::Link, 0o644);
        entry.link = target.as_ref().to_vec();
        entry
    }

    /// A device node or fifo.
    pub(super) fn node(
        name: impl AsRef<[u8]>,
        kind: EntryType,
        major: u32,
        minor: u32,
    ) -> TarEntry {
        let mut entry = TarEntry::new(name.as_ref(), kind, 0o640);
        entry.device = (major, minor);
        entry
    }

    /// A whiteout-style marker (an empty regular file with that name).
    pub(super) fn marker(name: impl AsRef<[u8]>) -> TarEntry {
        TarEntry::file(name, b"")
    }

    /// Sets the permission bits.
    pub(super) fn mode(mut self, mode: u32) -> TarEntry {
        self.mode = mode;
        self
    }

    /// Sets the owner and group.
    pub(super) fn owner(mut self, uid: u64, gid: u64) -> TarEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the modification time (seconds).
    pub(super) fn mtime(mut self, mtime: u64) -> TarEntry {
        self.mtime = mtime;
        self
    }

    /// Sets the GNU access time (seconds).
    pub(super) fn atime(mut self, atime: u64) -> TarEntry {
        self.atime = atime;
        self
    }

    /// Adds a PAX record.
    pub(super) fn pax(mut self, key: &str, value: impl AsRef<[u8]>) -> TarEntry {
        self.pax.push((key.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sends the name through a GNU long-name member even when it is short.
    pub(super) fn long_name(mut self) -> TarEntry {
        self.long_name = true;
        self
    }
}

/// Appends a header and its data, padded to the block size.
fn push_member(out: &mut Vec<u8>, header: &mut Header, data: &[u8]) {
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    let padding = (512 - data.len() % 512) % 512;
    out.resize(out.len() + padding, 0);
}

/// A GNU long name (`L`) or long link (`K`) member.
fn push_long(out: &mut Vec<u8>, kind: EntryType, value: &[u8]) {
    let mut header = Header::new_gnu();
    header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    header.set_entry_type(kind);
    header.set_mode(0);
    header.set_mtime(0);
    let mut data = value.to_vec();
    data.push(0);
    header.set_size(data.len() as u64);
    push_member(out, &mut header, &data);
}

/// One PAX record, whose length prefix counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// Copies `value` into a fixed header field, truncating like a writer without long names.
fn fill(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes a tarball with the names and link targets exactly as given (no validation).
pub(super) fn build_tar(entries: &[TarEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        if !entry.pax.is_empty() {
            let mut data = Vec::new();
            for (key, value) in &entry.pax {
                data.extend(pax_record(key, value));
            }
            let mut header = Header::new_ustar();
            fill(&mut header.as_old_mut().name, b"PaxHeaders/entry");
            header.set_entry_type(EntryType::XHeader);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            push_member(&mut out, &mut header, &data);
        }
        if entry.long_name || entry.name.len() > 100 {
            push_long(&mut out, EntryType::GNULongName, &entry.name);
        }
        if entry.link.len() > 100 {
            push_long(&mut out, EntryType::GNULongLink, &entry.link);
        }
        let mut header = Header::new_gnu();
        fill(&mut header.as_old_mut().name, &entry.name);
        fill(&mut header.as_old_mut().linkname, &entry.link);
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(entry.mtime);
        header.set_size(entry.data.len() as u64);
        if let Some(gnu) = header.as_gnu_mut().filter(|_| entry.atime != 0) {
            gnu.set_atime(entry.atime);
        }
        if matches!(entry.kind, EntryType::Char | EntryType::Block) {
            header
                .set_device_major(entry.device.0)
                .expect("device major fits");
            header
                .set_device_minor(entry.device.1)
                .expect("device minor fits");
        }
        push_member(&mut out, &mut header, &entry.data);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Applies `entries` as one layer onto `root`.
pub(super) fn apply(
    root: &Path,
    entries: &[TarEntry],
    options: &ExtractOptions,
    resolution: Resolution,
) -> Result<ExtractStats, ExtractError> {
    apply_layer_with(root, build_tar(entries).as_slice(), options, resolution)
}

/// Everything that identifies one file system object for "nothing changed" comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    kind: &'static str,
    ino: u64,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    content: Vec<u8>,
}

/// The object at `path` (not followed), `None` when nothing is there.
pub(super) fn node(path: &Path) -> Option<Node> {
    let meta = fs::symlink_metadata(path).ok()?;
    let file_type = meta.file_type();
    let (kind, content) = if file_type.is_symlink() {
        (
            "symlink",
            fs::read_link(path)
                .ok()?
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else if file_type.is_dir() {
        ("dir", Vec::new())
    } else if file_type.is_file() {
        ("file", fs::read(path).ok()?)
    } else if file_type.is_fifo() {
        ("fifo", Vec::new())
    } else {
        ("other", Vec::new())
    };
    Some(Node {
        kind,
        ino: meta.ino(),
        size: meta.size(),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        nlink: meta.nlink(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        content,
    })
}

/// Every object under `dir` (itself included, as the empty path), not following symlinks.
pub(super) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let full = dir.join(&rel);
        let Some(found) = node(&full) else { continue };
        if found.kind == "dir" {
            for child in fs::read_dir(&full).expect("readable snapshot dir") {
                pending.push(rel.join(child.expect("dir entry").file_name()));
            }
        }
        out.insert(rel, found);
    }
    out
}

/// The names directly inside `dir`, sorted.
pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

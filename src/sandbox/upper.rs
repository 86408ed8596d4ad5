//! A step's layer from an overlay upper directory: only what the step changed is there, so
//! the cost is that of the change, never of the root.
//!
//! Overlay stores deletions as character devices 0:0 (whiteouts) and directories that hide
//! everything below as `trusted.overlay.opaque=y`; those become `.wh.NAME` and
//! `.wh..wh..opq` entries. Everything else is taken as it is: files (hard links between them
//! kept), directories, symlinks, devices, fifos, their owners, modes, times and xattrs.
//!
//! Left out: the mount points the sandbox had to create (they are empty and were not the
//! step's doing), and directories that only overlay's copy-up put there (a directory is
//! copied up when anything inside it changes; if nothing inside it made it into the layer
//! and its owner and mode are those of the layers below, it carries no change).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rustix::fs::FileType;

use super::SandboxError;
use crate::layer::extract::OVERLAY_OPAQUE_XATTR;
use crate::layer::index::{FsView, IndexKind};
use crate::layer::writer::{EntryKind, FileSource, LayerEntry, sort_entries};

/// The layer entries for the changes recorded in `upper`.
///
/// `created` lists the mount points (relative paths) the sandbox created; `lower` is the view
/// of the stage's layers; with `epoch`, times are clamped to it.
pub fn snapshot_upper(
    upper: &Path,
    created: &[String],
    lower: &FsView,
    epoch: Option<i64>,
) -> Result<Vec<LayerEntry>, SandboxError> {
    let created: BTreeSet<&str> = created.iter().map(String::as_str).collect();
    let mut walker = Walker {
        created: &created,
        epoch,
        entries: Vec::new(),
        links: HashMap::new(),
    };
    walker.walk_dir(upper, "")?;
    let mut entries = walker.entries;
    drop_copied_up_dirs(&mut entries, lower);
    sort_entries(&mut entries);
    link_hard_links(&mut entries, &walker.links);
    Ok(entries)
}

struct Walker<'a> {
    created: &'a BTreeSet<&'a str>,
    epoch: Option<i64>,
    entries: Vec<LayerEntry>,
    /// Files with more than one link: their device and inode, by path.
    links: HashMap<String, (u64, u64)>,
}

fn snapshot_error(path: &Path, action: &str, error: impl std::fmt::Display) -> SandboxError {
    SandboxError::Snapshot(format!("{action} `{}`: {error}", path.display()))
}

impl Walker<'_> {
    fn walk_dir(&mut self, dir: &Path, relative: &str) -> Result<(), SandboxError> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| snapshot_error(dir, "read", e))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| snapshot_error(dir, "read", e))?;
        names.sort();
        for name in names {
            let Some(name) = name.to_str() else {
                // FIXME: file names that are not UTF-8 are refused; fixed: byte paths in
                // `LayerEntry`.
                return Err(snapshot_error(
                    &dir.join(&name),
                    "store",
                    "the file name is not UTF-8",
                ));
            };
            let path = if relative.is_empty() {
                name.to_string()
            } else {
                format!("{relative}/{name}")
            };
            self.visit(&dir.join(name), path)?;
        }
        Ok(())
    }

    fn visit(&mut self, disk: &Path, path: String) -> Result<(), SandboxError> {
        let stat = rustix::fs::lstat(disk).map_err(|e| snapshot_error(disk, "stat", e))?;
        let file_type = FileType::from_raw_mode(stat.st_mode);
        let mtime = match self.epoch {
            Some(epoch) => stat.st_mtime.min(epoch),
            None => stat.st_mtime,
        };
        let is_created = self.created.contains(path.as_str());
        let kind = match file_type {
            FileType::CharacterDevice if stat.st_rdev == 0 => {
                self.entries.push(entry(
                    path,
                    EntryKind::Whiteout,
                    0,
                    0,
                    0,
                    0,
                    BTreeMap::new(),
                ));
                return Ok(());
            }
            FileType::Directory => {
                let xattrs = read_xattrs(disk)?;
                let opaque = lgetxattr_small(disk, OVERLAY_OPAQUE_XATTR)?.as_deref() == Some(b"y");
                let before = self.entries.len();
                if !is_created || opaque {
                    self.entries.push(entry(
                        path.clone(),
                        EntryKind::Dir,
                        stat.st_mode,
                        stat.st_uid.into(),
                        stat.st_gid.into(),
                        mtime,
                        xattrs,
                    ));
                }
                if opaque {
                    self.entries.push(entry(
                        path.clone(),
                        EntryKind::OpaqueDir,
                        0,
                        0,
                        0,
                        0,
                        BTreeMap::new(),
                    ));
                }
                self.walk_dir(disk, &path)?;
                if is_created && !opaque && self.entries.len() > before {
                    // A created mount point the step also wrote into (below the mount):
                    // keep the directory itself too.
                    self.entries.insert(
                        before,
                        entry(
                            path,
                            EntryKind::Dir,
                            stat.st_mode,
                            stat.st_uid.into(),
                            stat.st_gid.into(),
                            mtime,
                            BTreeMap::new(),
                        ),
                    );
                }
                return Ok(());
            }
            FileType::RegularFile => {
                if is_created && stat.st_size == 0 {
                    return Ok(());
                }
                if stat.st_nlink > 1 {
                    self.links.insert(path.clone(), (stat.st_dev, stat.st_ino));
                }
                EntryKind::File {
                    source: FileSource::Path(disk.to_path_buf()),
                    size: stat.st_size as u64,
                }
            }
            FileType::Symlink => {
                let target =
                    std::fs::read_link(disk).map_err(|e| snapshot_error(disk, "read link", e))?;
                let Some(target) = target.to_str() else {
                    return Err(snapshot_error(
                        disk,
                        "store",
                        "the link target is not UTF-8",
                    ));
                };
                EntryKind::Symlink {
                    target: target.to_string(),
                }
            }
            FileType::CharacterDevice => EntryKind::CharDevice {
                major: rustix::fs::major(stat.st_rdev),
                minor: rustix::fs::minor(stat.st_rdev),
            },
            FileType::BlockDevice => EntryKind::BlockDevice {
                major: rustix::fs::major(stat.st_rdev),
                minor: rustix::fs::minor(stat.st_rdev),
            },
            FileType::Fifo => EntryKind::Fifo,
            // Sockets cannot be stored in a layer; Docker leaves them out too.
            _ => return Ok(()),
        };
        let xattrs = if matches!(file_type, FileType::Symlink) {
            BTreeMap::new()
        } else {
            read_xattrs(disk)?
        };
        self.entries.push(entry(
            path,
            kind,
            stat.st_mode,
            stat.st_uid.into(),
            stat.st_gid.into(),
            mtime,
            xattrs,
        ));
        Ok(())
    }
}

fn entry(
    path: String,
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: BTreeMap<String, Vec<u8>>,
) -> LayerEntry {
    LayerEntry {
        path,
        kind,
        mode: mode & 0o7777,
        uid,
        gid,
        mtime,
        xattrs,
    }
}

/// Removes directory entries that only overlay's copy-up (or a mount point inside them)
/// put into the upper directory.
fn drop_copied_up_dirs(entries: &mut Vec<LayerEntry>, lower: &FsView) {
    let mut has_child: BTreeSet<String> = BTreeSet::new();
    let mut opaque: BTreeSet<String> = BTreeSet::new();
    for e in entries.iter() {
        if e.kind == EntryKind::OpaqueDir {
            opaque.insert(e.path.clone());
            continue;
        }
        if e.kind == EntryKind::Dir {
            continue;
        }
        let mut path = e.path.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            has_child.insert(parent.to_string());
            path = parent;
        }
    }
    // A directory with a kept sub-directory counts as having content too.
    let dirs: Vec<String> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .map(|e| e.path.clone())
        .collect();
    // Below an opaque directory nothing of the lower layers shows, so nothing there is a
    // mere copy-up.
    let under_opaque = |path: &str| {
        let mut path = path;
        while let Some((parent, _)) = path.rsplit_once('/') {
            if opaque.contains(parent) {
                return true;
            }
            path = parent;
        }
        false
    };
    let unchanged = |e: &LayerEntry| {
        !under_opaque(&e.path)
            && lower.lookup(&e.path).is_some_and(|l| {
                l.kind == IndexKind::Dir
                    && l.mode == e.mode
                    && l.uid == e.uid
                    && l.gid == e.gid
                    && e.xattrs.is_empty()
            })
    };
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    // Deepest first, so a parent sees whether its children stayed.
    for dir in dirs.iter().rev() {
        let e = entries
            .iter()
            .find(|e| &e.path == dir && e.kind == EntryKind::Dir);
        let Some(e) = e else { continue };
        let child_dir_kept = dirs.iter().any(|d| {
            !dropped.contains(d)
                && d.len() > dir.len()
                && d.starts_with(dir.as_str())
                && d.as_bytes()[dir.len()] == b'/'
        });
        if !has_child.contains(dir) && !child_dir_kept && !opaque.contains(dir) && unchanged(e) {
            dropped.insert(dir.clone());
        }
    }
    entries.retain(|e| !(e.kind == EntryKind::Dir && dropped.contains(&e.path)));
}

/// Turns the second and later paths of a multiply-linked file into hard links to the first
/// (in layer order), so the tar holds the content once and extraction links them again.
fn link_hard_links(entries: &mut [LayerEntry], links: &HashMap<String, (u64, u64)>) {
    let mut first: HashMap<(u64, u64), String> = HashMap::new();
    for e in entries.iter_mut() {
        if !matches!(e.kind, EntryKind::File { .. }) {
            continue;
        }
        let Some(key) = links.get(&e.path) else {
            continue;
        };
        match first.get(key) {
            Some(target) => {
                e.kind = EntryKind::HardLink {
                    target: target.clone(),
                };
            }
            None => {
                first.insert(*key, e.path.clone());
            }
        }
    }
}

/// The extended attributes worth keeping in a layer: all but overlay's own, SELinux labels
/// (the host's policy, not the image's) and `system.*` (ACLs are kept by Docker only as
/// mode bits).
fn read_xattrs(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, SandboxError> {
    let mut out = BTreeMap::new();
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(size) => size,
        Err(rustix::io::Errno::NOTSUP) => return Ok(out),
        Err(e) => return Err(snapshot_error(path, "list xattrs of", e)),
    };
    if size == 0 {
        return Ok(out);
    }
    let mut names = vec![0u8; size];
    let size = rustix::fs::llistxattr(path, &mut names[..])
        .map_err(|e| snapshot_error(path, "list xattrs of", e))?;
    for name in names[..size].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with("trusted.overlay.")
            || name == "security.selinux"
            || name.starts_with("system.")
        {
            continue;
        }
        if let Some(value) = lgetxattr_small(path, name)? {
            out.insert(name.to_string(), value);
        }
    }
    Ok(out)
}

/// One xattr's value, `None` when the file lacks it.
fn lgetxattr_small(path: &Path, name: &str) -> Result<Option<Vec<u8>>, SandboxError> {
    let mut buffer = vec![0u8; 64 * 1024];
    match rustix::fs::lgetxattr(path, name, &mut buffer[..]) {
        Ok(size) => {
            buffer.truncate(size);
            Ok(Some(buffer))
        }
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => Ok(None),
        Err(e) => Err(snapshot_error(path, &format!("read xattr {name} of"), e)),
    }
}

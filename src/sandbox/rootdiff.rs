//! Metadata snapshots of a directory tree and the layer entries between two of them: how the
//! `container` and `chroot` backends find what a step changed without an overlay.
//!
//! A [`TreeSnapshot`] records, for every path under a root on the root's file system, what
//! `lstat` says (kind, mode, owner, size, modification and change times in nanoseconds,
//! inode, link count, device number), the symlink target and a hash of the extended
//! attributes a layer keeps. [`diff`] turns two snapshots into [`LayerEntry`]s. The change
//! time is what makes this reliable: `chmod`, `chown`, `setcap`, a new hard link and a rewrite
//! that restores size and modification time all move it, and nothing but the kernel can set it.
//! The kernel stamps change times from a clock that advances once per tick, so a file changed
//! just before a scan is also hashed then and compared by content afterwards, as git does
//! with its "racy" index entries.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::layer::writer::{EntryKind, FileSource, LayerEntry, sort_entries};

use super::SandboxError;

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket: recorded, never put in a layer (tar has no sockets; Docker skips them).
    Socket,
}

/// The metadata of one path, as compared between snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeMeta {
    /// What the path is.
    pub kind: NodeKind,
    /// `st_mode & 0o7777`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// Hard link count.
    pub nlink: u64,
    /// Device number of a device node (0 otherwise).
    pub rdev: u64,
    /// The link text of a symlink.
    pub target: Option<OsString>,
    /// A hash of the kept extended attributes (names and values); `None` when there are none.
    pub xattrs: Option<u64>,
}

/// The metadata of every path under a root, by path relative to the root.
#[derive(Clone, Debug, Default)]
pub struct TreeSnapshot {
    nodes: HashMap<PathBuf, NodeMeta>,
    // Content hashes of the regular files changed so shortly before the scan that a later
    // change might get the same (coarse) change time: git's "racy" entries.
    racy: HashMap<PathBuf, [u8; 32]>,
}

/// Files whose change time is this close to the scan's start are hashed: the kernel stamps
/// inodes from a clock that advances once per tick (up to 10 ms), so two changes within one
/// tick can carry the same change time.
const RACY_WINDOW_NS: i128 = 50_000_000;

impl TreeSnapshot {
    /// The metadata recorded for `path` (relative to the root).
    pub fn get(&self, path: &Path) -> Option<&NodeMeta> {
        self.nodes.get(path)
    }

    /// How many paths were recorded (the root itself is not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Drops `path` (relative) and everything below it, so that neither a change nor a
    /// deletion is reported there: emulated mount targets.
    pub fn forget(&mut self, path: &Path) {
        self.nodes.retain(|p, _| !p.starts_with(path));
        self.racy.retain(|p, _| !p.starts_with(path));
    }

    /// For each of `paths` (relative) whose metadata differs from `before` only by its change
    /// time, takes `before`'s: directories whose entries the sandbox itself added and removed
    /// again (around an emulated mount), with their modification time put back.
    pub fn ignore_ctime(&mut self, before: &TreeSnapshot, paths: &[PathBuf]) {
        for path in paths {
            let (Some(now), Some(old)) = (self.nodes.get_mut(path), before.nodes.get(path)) else {
                continue;
            };
            let settled = NodeMeta {
                ctime_ns: old.ctime_ns,
                ..now.clone()
            };
            if settled == *old {
                now.ctime_ns = old.ctime_ns;
            }
        }
    }
}

/// Records every path under `root` on `root`'s file system (directories of another file
/// system are not entered).
///
/// Paths in `skip` (absolute, as `root` is spelled) and every mount point below `root`
/// (from `/proc/self/mountinfo`) are left out with everything below them. A path that
/// disappears while it is being read is left out too; any other failure is an error.
pub fn scan(root: &Path, skip: &[PathBuf]) -> Result<TreeSnapshot, SandboxError> {
    let failed = |op: &str, path: &Path, e: io::Error| {
        SandboxError::Snapshot(format!("failed to {op} `{}`: {e}", path.display()))
    };
    let root_meta = fs::metadata(root).map_err(|e| failed("stat the root", root, e))?;
    let mut skipped: HashSet<PathBuf> = skip.iter().cloned().collect();
    for mount in mount_points_under(root)? {
        skipped.insert(mount);
    }
    let mut snapshot = TreeSnapshot::default();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let children = match fs::read_dir(&dir) {
            Ok(children) => children,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed("read directory", &dir, e)),
        };
        for child in children {
            let child = child.map_err(|e| failed("read directory", &dir, e))?;
            let path = child.path();
            if skipped.contains(&path) {
                continue;
            }
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed("stat", &path, e)),
            };
            // A directory on another file system is a mount the step does not own. Only
            // directories: an overlay whose layers span file systems reports other devices
            // for its files, and mounted files are in mountinfo anyway.
            if meta.is_dir() && meta.dev() != root_meta.dev() {
                continue;
            }
            let node = match node_meta(&path, &meta) {
                Ok(node) => node,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed("read the metadata of", &path, e)),
            };
            if node.kind == NodeKind::Dir {
                pending.push(path.clone());
            }
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if node.kind == NodeKind::File && node.ctime_ns >= started - RACY_WINDOW_NS {
                match content_hash(&path) {
                    Ok(hash) => {
                        snapshot.racy.insert(relative.clone(), hash);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(failed("read", &path, e)),
                }
            }
            snapshot.nodes.insert(relative, node);
        }
    }
    Ok(snapshot)
}

fn content_hash(path: &Path) -> io::Result<[u8; 32]> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().into())
}

/// Whether `path` changed between the snapshots: any metadata, or, for a file that was racy
/// in `before`, its content.
fn is_changed(before: &TreeSnapshot, path: &Path, node: &NodeMeta, root: &Path) -> bool {
    if node.kind == NodeKind::Socket {
        return false;
    }
    if before.nodes.get(path) != Some(node) {
        return true;
    }
    match before.racy.get(path) {
        // A file that cannot be read now is reported, so the layer writer names the problem.
        Some(hash) => content_hash(&root.join(path)).map_or(true, |now| now != *hash),
        None => false,
    }
}

fn node_meta(path: &Path, meta: &fs::Metadata) -> io::Result<NodeMeta> {
    let file_type = meta.file_type();
    let kind = if file_type.is_dir() {
        NodeKind::Dir
    } else if file_type.is_symlink() {
        NodeKind::Symlink
    } else if file_type.is_char_device() {
        NodeKind::CharDevice
    } else if file_type.is_block_device() {
        NodeKind::BlockDevice
    } else if file_type.is_fifo() {
        NodeKind::Fifo
    } else if file_type.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    };
    let target = match kind {
        NodeKind::Symlink => Some(fs::read_link(path)?.into_os_string()),
        _ => None,
    };
    let xattrs = read_xattrs(path)?;
    let xattrs = (!xattrs.is_empty()).then(|| {
        let mut hasher = DefaultHasher::new();
        xattrs.hash(&mut hasher);
        hasher.finish()
    });
    let nanos = |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    Ok(NodeMeta {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size(),
        mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        ino: meta.ino(),
        nlink: meta.nlink(),
        rdev: meta.rdev(),
        target,
        xattrs,
    })
}

/// Whether a layer keeps the extended attribute `name`: file capabilities and user
/// attributes travel with images; SELinux labels belong to the host, `trusted.overlay.*` to
/// the overlay driver and `system.*` (ACLs) is not carried by Docker either.
fn keep_xattr(name: &str) -> bool {
    name == "security.capability" || name.starts_with("user.")
}

/// The kept extended attributes of `path` (not following a symlink), by name.
pub fn read_xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut attributes = BTreeMap::new();
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(0) => return Ok(attributes),
        Ok(size) => size,
        Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::PERM => {
            return Ok(attributes);
        }
        Err(e) => return Err(e.into()),
    };
    let mut names = vec![0u8; size];
    let length = rustix::fs::llistxattr(path, &mut names[..])?;
    for name in names[..length].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if !keep_xattr(name) {
            continue;
        }
        let size = match rustix::fs::lgetxattr_query(path, name) {
            Ok(size) => size,
            // Removed between the listing and the read.
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut value = vec![0u8; size];
        let length = rustix::fs::lgetxattr(path, name, &mut value[..])?;
        value.truncate(length);
        attributes.insert(name.to_string(), value);
    }
    Ok(attributes)
}

/// The layer entries that turn the tree of `before` into the tree of `after`, both scanned
/// under `root`; file contents are read from `root` when the layer is written.
///
/// New and changed paths (any metadata difference) become entries; a deleted path becomes a
/// whiteout unless its parent went too or stopped being a directory (the parent's own entry
/// covers it). Hard links among the changed files point to the first of their group in layer
/// order. Every parent directory of an entry is included, as BuildKit does. With `epoch`,
/// modification times are clamped to it. Entries come sorted for the layer writer.
pub fn diff(
    before: &TreeSnapshot,
    after: &TreeSnapshot,
    root: &Path,
    epoch: Option<i64>,
) -> Result<Vec<LayerEntry>, SandboxError> {
    let changed: BTreeSet<&Path> = after
        .nodes
        .iter()
        .filter(|(path, node)| is_changed(before, path, node, root))
        .map(|(path, _)| path.as_path())
        .collect();
    let deleted: BTreeSet<&Path> = before
        .nodes
        .keys()
        .filter(|path| !after.nodes.contains_key(*path))
        .filter(|path| match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => after
                .nodes
                .get(parent)
                .is_some_and(|p| p.kind == NodeKind::Dir),
            _ => true,
        })
        .map(|path| path.as_path())
        .collect();
    let mut parents: BTreeSet<&Path> = BTreeSet::new();
    for path in changed.iter().chain(&deleted) {
        for ancestor in path.ancestors().skip(1) {
            if ancestor.as_os_str().is_empty() || !parents.insert(ancestor) {
                break;
            }
        }
    }
    let links = hard_links(after, &changed)?;
    let mut entries = Vec::with_capacity(changed.len() + deleted.len() + parents.len());
    for path in changed.iter().chain(parents.difference(&changed)) {
        let Some(node) = after.nodes.get(*path) else {
            continue;
        };
        let mut entry = entry_for(root, path, node, epoch)?;
        if let Some(target) = links.get(path) {
            entry.kind = EntryKind::HardLink {
                target: target.clone(),
            };
        }
        entries.push(entry);
    }
    for path in deleted {
        let parent_mtime = path
            .parent()
            .and_then(|parent| after.nodes.get(parent))
            .map_or(0, |parent| seconds(parent.mtime_ns));
        entries.push(LayerEntry {
            path: layer_path(path)?,
            kind: EntryKind::Whiteout,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: clamp(parent_mtime, epoch),
            xattrs: BTreeMap::new(),
        });
    }
    sort_entries(&mut entries);
    Ok(entries)
}

/// For each changed non-directory sharing its inode with another changed one, the layer path
/// of the group's first member in layer order (which is written as the file itself).
fn hard_links<'a>(
    after: &TreeSnapshot,
    changed: &BTreeSet<&'a Path>,
) -> Result<HashMap<&'a Path, String>, SandboxError> {
    let mut groups: HashMap<u64, Vec<(String, &'a Path)>> = HashMap::new();
    for path in changed {
        let node = &after.nodes[*path];
        if node.kind != NodeKind::Dir && node.nlink > 1 {
            groups
                .entry(node.ino)
                .or_default()
                .push((layer_path(path)?, path));
        }
    }
    let mut links = HashMap::new();
    for mut group in groups.into_values().filter(|g| g.len() > 1) {
        group.sort_by(|a, b| crate::layer::writer::compare_paths(&a.0, &b.0));
        let target = group[0].0.clone();
        for (_, path) in &group[1..] {
            links.insert(*path, target.clone());
        }
    }
    Ok(links)
}

fn entry_for(
    root: &Path,
    path: &Path,
    node: &NodeMeta,
    epoch: Option<i64>,
) -> Result<LayerEntry, SandboxError> {
    let absolute = root.join(path);
    let (major, minor) = (
        rustix::fs::major(node.rdev as rustix::fs::Dev),
        rustix::fs::minor(node.rdev as rustix::fs::Dev),
    );
    let kind = match node.kind {
        NodeKind::File => EntryKind::File {
            source: FileSource::Path(absolute.clone()),
            size: node.size,
        },
        NodeKind::Dir => EntryKind::Dir,
        NodeKind::Symlink => {
            let target = node.target.as_deref().unwrap_or_default();
            EntryKind::Symlink {
                target: utf8(path, target.as_bytes(), "symlink target")?,
            }
        }
        NodeKind::CharDevice => EntryKind::CharDevice { major, minor },
        NodeKind::BlockDevice => EntryKind::BlockDevice { major, minor },
        NodeKind::Fifo => EntryKind::Fifo,
        NodeKind::Socket => unreachable_socket(path)?,
    };
    let xattrs = match node.xattrs {
        Some(_) => read_xattrs(&absolute).map_err(|e| {
            SandboxError::Snapshot(format!(
                "failed to read the extended attributes of `{}`: {e}",
                absolute.display()
            ))
        })?,
        None => BTreeMap::new(),
    };
    Ok(LayerEntry {
        path: layer_path(path)?,
        kind,
        mode: node.mode,
        uid: u64::from(node.uid),
        gid: u64::from(node.gid),
        mtime: clamp(seconds(node.mtime_ns), epoch),
        xattrs,
    })
}

/// Sockets are filtered out before entries are made; reaching one is a bug worth a message.
fn unreachable_socket(path: &Path) -> Result<EntryKind, SandboxError> {
    Err(SandboxError::Snapshot(format!(
        "`{}` is a socket, which a layer cannot hold",
        path.display()
    )))
}

fn layer_path(path: &Path) -> Result<String, SandboxError> {
    utf8(path, path.as_os_str().as_bytes(), "path")
}

fn utf8(path: &Path, bytes: &[u8], what: &str) -> Result<String, SandboxError> {
    // FIXME: layer entries carry `String` paths, so a step creating a name that is not UTF-8
    // fails; fixed means byte paths through `LayerEntry` and the tar header encoder.
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        SandboxError::Snapshot(format!(
            "the {what} of `{}` is not valid UTF-8, which layers written by this builder \
             cannot hold\nhint: rename it inside the RUN step",
            path.display()
        ))
    })
}

fn seconds(nanos: i128) -> i64 {
    i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(i64::MAX)
}

fn clamp(mtime: i64, epoch: Option<i64>) -> i64 {
    match epoch {
        Some(epoch) => mtime.min(epoch),
        None => mtime,
    }
}

/// Every mount point strictly below `root` (as `root` is spelled), from
/// `/proc/self/mountinfo`.
pub fn mount_points_under(root: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let text = fs::read_to_string("/proc/self/mountinfo").map_err(|e| {
        SandboxError::Snapshot(format!("failed to read `/proc/self/mountinfo`: {e}"))
    })?;
    // The kernel lists canonical paths; the caller's spelling of `root` may differ.
    let canonical = fs::canonicalize(root).map_err(|e| {
        SandboxError::Snapshot(format!("failed to resolve `{}`: {e}", root.display()))
    })?;
    let mut mounts = Vec::new();
    for point in parse_mountinfo(&text) {
        if let Ok(below) = point.strip_prefix(&canonical) {
            if !below.as_os_str().is_empty() {
                mounts.push(root.join(below));
            }
        }
    }
    Ok(mounts)
}

/// The mount points (fifth field) of mountinfo text, with the kernel's octal escapes of
/// space, tab, newline and backslash decoded.
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape_octal(field.as_bytes()))))
        .collect()
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let digits = field.get(i + 1..i + 4);
        match digits {
            Some(d) if field[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            _ => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "rootdiff_tests.rs"]
mod tests;

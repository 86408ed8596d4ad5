//! Snapshots of hand-made upper directories and unpacking into overlay form (needs root:
//! device nodes and `trusted.*` xattrs).

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{FileType, Mode, XattrFlags};

use super::unpack::{chain_ids, unpacked_layers};
use super::upper::snapshot_upper;
use crate::build::LayerRecord;
use crate::layer::extract::OVERLAY_OPAQUE_XATTR;
use crate::layer::index::{FsView, IndexEntry, IndexKind, LayerIndex};
use crate::layer::writer::{EntryKind, FileSource, LayerEntry};
use crate::store::Store;

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests make device nodes and trusted.* xattrs: run them as root (CI does)"
    );
}

fn dir_entry(path: &str, mode: u32) -> IndexEntry {
    IndexEntry {
        path: path.to_string(),
        kind: IndexKind::Dir,
        mode,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
        link_target: None,
    }
}

fn lower_view(entries: Vec<IndexEntry>) -> FsView {
    FsView::new(vec![Arc::new(LayerIndex {
        entries,
        small_files: BTreeMap::new(),
    })])
}

/// `(path, kind)` pairs, the kinds shortened, for table comparisons.
fn summary(entries: &[LayerEntry]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::File { size, .. } => format!("file {size}"),
                EntryKind::Dir => format!("dir {:o}", e.mode),
                EntryKind::Symlink { target } => format!("symlink {target}"),
                EntryKind::HardLink { target } => format!("hardlink {target}"),
                EntryKind::CharDevice { major, minor } => format!("char {major}:{minor}"),
                EntryKind::BlockDevice { major, minor } => format!("block {major}:{minor}"),
                EntryKind::Fifo => "fifo".to_string(),
                EntryKind::Whiteout => "whiteout".to_string(),
                EntryKind::OpaqueDir => "opaque".to_string(),
            };
            (e.path.clone(), kind)
        })
        .collect()
}

fn mknod(path: &Path, file_type: FileType, dev: u64) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        file_type,
        Mode::from_raw_mode(0o644),
        dev,
    )
    .unwrap();
}

#[test]
fn upper_directories_become_exactly_the_changes() {
    require_root();
    let temp = tempfile::tempdir().unwrap();
    let upper = temp.path();
    let mk = |p: &str| std::fs::create_dir_all(upper.join(p)).unwrap();
    // Copied up only because something below changed: kept through its child.
    mk("etc");
    std::fs::write(upper.join("etc/new.conf"), "x=1\n").unwrap();
    // Copied up only for a mount point: same metadata as below, nothing kept inside.
    mk("var/lib");
    // A deletion and an opaque directory.
    mknod(&upper.join("etc/old.conf"), FileType::CharacterDevice, 0);
    mk("srv");
    rustix::fs::setxattr(
        upper.join("srv"),
        OVERLAY_OPAQUE_XATTR,
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();
    std::fs::write(upper.join("srv/only"), "").unwrap();
    // A mode change on a directory.
    mk("tmp");
    std::fs::set_permissions(upper.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    // Links, nodes, a capability.
    std::fs::write(upper.join("a"), "same inode").unwrap();
    std::fs::hard_link(upper.join("a"), upper.join("b")).unwrap();
    symlink("/etc/new.conf", upper.join("link")).unwrap();
    mknod(&upper.join("fifo"), FileType::Fifo, 0);
    mknod(
        &upper.join("tty9"),
        FileType::CharacterDevice,
        rustix::fs::makedev(4, 9),
    );
    std::fs::write(upper.join("ping"), "elf").unwrap();
    let capability = [
        1u8, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    rustix::fs::setxattr(
        upper.join("ping"),
        "security.capability",
        &capability,
        XattrFlags::empty(),
    )
    .unwrap();
    // Mount points the sandbox created: left out.
    mk("proc");
    std::fs::write(upper.join("etc/hosts"), "").unwrap();

    let lower = lower_view(vec![
        dir_entry("etc", 0o755),
        dir_entry("var", 0o755),
        dir_entry("var/lib", 0o755),
        dir_entry("srv", 0o755),
        dir_entry("tmp", 0o755),
    ]);
    let created = vec!["proc".to_string(), "etc/hosts".to_string()];
    let entries = snapshot_upper(upper, &created, &lower, Some(100)).unwrap();
    let expected: Vec<(String, String)> = [
        ("a", "file 10"),
        ("b", "hardlink a"),
        ("etc", "dir 755"),
        ("etc/new.conf", "file 4"),
        ("etc/old.conf", "whiteout"),
        ("fifo", "fifo"),
        ("link", "symlink /etc/new.conf"),
        ("ping", "file 3"),
        ("srv", "dir 755"),
        ("srv", "opaque"),
        ("srv/only", "file 0"),
        ("tmp", "dir 1777"),
        ("tty9", "char 4:9"),
    ]
    .iter()
    .map(|(p, k)| (p.to_string(), k.to_string()))
    .collect();
    let mut actual = summary(&entries);
    actual.sort();
    assert_eq!(actual, expected);
    let ping = entries.iter().find(|e| e.path == "ping").unwrap();
    assert_eq!(
        ping.xattrs.get("security.capability").map(Vec::as_slice),
        Some(&capability[..])
    );
    let srv = entries
        .iter()
        .find(|e| e.path == "srv" && e.kind == EntryKind::Dir)
        .unwrap();
    assert!(
        srv.xattrs.is_empty(),
        "overlay's own xattrs stay out: {:?}",
        srv.xattrs
    );
    assert!(
        entries.iter().all(|e| e.mtime <= 100),
        "times are clamped to the epoch"
    );
}

/// A layer written with the project's writer, as a record the builder would hold.
fn layer(store: &Store, entries: &[LayerEntry]) -> LayerRecord {
    super::test_support::layer(store, entries.to_vec())
}

fn entry(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
    LayerEntry {
        path: path.to_string(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: 1000,
        xattrs: BTreeMap::new(),
    }
}

fn file(path: &str, content: &str) -> LayerEntry {
    entry(
        path,
        EntryKind::File {
            source: FileSource::Bytes(content.as_bytes().to_vec()),
            size: content.len() as u64,
        },
        0o644,
    )
}

#[test]
fn layers_unpack_once_into_overlay_form() {
    require_root();
    let temp = tempfile::tempdir().unwrap();
    let store = Store::open(temp.path()).unwrap();
    let base = layer(
        &store,
        &[
            entry("tmp", EntryKind::Dir, 0o1777),
            file("tmp/old", "old"),
            entry("srv", EntryKind::Dir, 0o750),
            file("srv/a", "a"),
        ],
    );
    // No `tmp` entry of its own: its implicit `tmp` must keep the base's 1777.
    let top = layer(
        &store,
        &[
            file("tmp/new", "new"),
            entry("tmp/old", EntryKind::Whiteout, 0),
            entry("srv", EntryKind::Dir, 0o750),
            entry("srv", EntryKind::OpaqueDir, 0),
        ],
    );
    let layers = vec![base, top];
    let (dirs, stats) = unpacked_layers(&store, &layers).unwrap();
    assert_eq!((stats.extracted, stats.reused), (2, 0));
    let chains = chain_ids(&layers);
    assert_eq!(
        dirs[1].file_name().unwrap().to_str().unwrap(),
        chains[1].hex()
    );
    let top_dir = &dirs[1];
    let meta = rustix::fs::lstat(top_dir.join("tmp/old")).unwrap();
    assert_eq!(
        FileType::from_raw_mode(meta.st_mode),
        FileType::CharacterDevice
    );
    assert_eq!(
        meta.st_rdev, 0,
        "a whiteout is the 0:0 device overlayfs reads"
    );
    let mut value = [0u8; 8];
    let size =
        rustix::fs::lgetxattr(top_dir.join("srv"), OVERLAY_OPAQUE_XATTR, &mut value[..]).unwrap();
    assert_eq!(&value[..size], b"y");
    let tmp = std::fs::metadata(top_dir.join("tmp")).unwrap();
    assert_eq!(
        tmp.permissions().mode() & 0o7777,
        0o1777,
        "implicit parents inherit from below"
    );
    assert!(!top_dir.join("srv/.wh..wh..opq").exists());
    // A second build of the same layers extracts nothing.
    let (again, stats) = unpacked_layers(&store, &layers).unwrap();
    assert_eq!((stats.extracted, stats.reused), (0, 2));
    assert_eq!(again, dirs);
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
}

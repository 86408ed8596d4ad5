//! Tests of tree snapshots and their diff: one case per kind of change a RUN step can make.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rustix::fs::{CWD, FileType, Mode, XattrFlags};

use super::*;

/// One line per entry: kind, path and what tells entries of that kind apart.
fn describe(entry: &LayerEntry) -> String {
    let path = &entry.path;
    match &entry.kind {
        EntryKind::File { size, .. } => format!("file {path} {size}"),
        EntryKind::Dir => format!("dir {path}"),
        EntryKind::Symlink { target } => format!("symlink {path} -> {target}"),
        EntryKind::HardLink { target } => format!("link {path} => {target}"),
        EntryKind::CharDevice { major, minor } => format!("char {path} {major}:{minor}"),
        EntryKind::BlockDevice { major, minor } => format!("block {path} {major}:{minor}"),
        EntryKind::Fifo => format!("fifo {path}"),
        EntryKind::Whiteout => format!("whiteout {path}"),
        EntryKind::OpaqueDir => format!("opaque {path}"),
    }
}

fn require_root(what: &str) {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root ({what}); run the tests as root, as CI does"
    );
}

/// Builds a tree with `setup`, waits past the racy window unless `racy`, scans, applies
/// `change`, scans again and returns the diff.
fn run_diff(setup: impl FnOnce(&Path), change: impl FnOnce(&Path), racy: bool) -> Vec<LayerEntry> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    setup(root);
    if !racy {
        std::thread::sleep(Duration::from_millis(60));
    }
    let before = scan(root, &[]).expect("scan before");
    change(root);
    let after = scan(root, &[]).expect("scan after");
    diff(&before, &after, root, None).expect("diff")
}

fn check(setup: impl FnOnce(&Path), change: impl FnOnce(&Path), expected: &[&str]) {
    let entries = run_diff(setup, change, false);
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, expected);
}

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent");
    }
    fs::write(path, content).expect("write");
}

fn set_mtime(path: &Path, seconds: u64) {
    let file = fs::File::options().write(true).open(path).expect("open");
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .expect("set mtime");
}

#[test]
fn unchanged_tree_gives_no_entries() {
    check(
        |root| {
            write(&root.join("a/b"), "x");
            symlink("a/b", root.join("l")).expect("symlink");
        },
        |_| {},
        &[],
    );
}

#[test]
fn new_file_comes_with_its_parent_directories() {
    check(
        |root| fs::create_dir_all(root.join("a/b")).expect("mkdir"),
        |root| write(&root.join("a/b/new"), "hello"),
        &["dir a", "dir a/b", "file a/b/new 5"],
    );
}

#[test]
fn new_nested_directories() {
    check(
        |_| {},
        |root| fs::create_dir_all(root.join("x/y/z")).expect("mkdir"),
        &["dir x", "dir x/y", "dir x/y/z"],
    );
}

#[test]
fn rewrite_with_same_size_and_restored_mtime_is_caught() {
    check(
        |root| {
            write(&root.join("f"), "aaaa");
            set_mtime(&root.join("f"), 1_600_000_000);
        },
        |root| {
            write(&root.join("f"), "bbbb");
            set_mtime(&root.join("f"), 1_600_000_000);
        },
        &["file f 4"],
    );
}

#[test]
fn racy_rewrite_within_one_clock_tick_is_caught_by_content() {
    // No pause between creating and changing the file: its change time may well stay the
    // same, and only the content hash taken at the first scan can tell.
    let entries = run_diff(
        |root| {
            write(&root.join("f"), "aaaa");
            set_mtime(&root.join("f"), 1_600_000_000);
        },
        |root| {
            write(&root.join("f"), "bbbb");
            set_mtime(&root.join("f"), 1_600_000_000);
        },
        true,
    );
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, ["file f 4"]);
}

#[test]
fn racy_file_left_alone_is_not_reported() {
    let entries = run_diff(|root| write(&root.join("f"), "aaaa"), |_| {}, true);
    assert_eq!(entries, []);
}

#[test]
fn deleted_file_is_a_whiteout_in_its_directory() {
    check(
        |root| {
            write(&root.join("d/gone"), "1");
            write(&root.join("d/kept"), "2");
        },
        |root| fs::remove_file(root.join("d/gone")).expect("rm"),
        &["dir d", "whiteout d/gone"],
    );
}

#[test]
fn deleted_directory_is_one_whiteout() {
    check(
        |root| {
            write(&root.join("d/e/f"), "1");
            write(&root.join("d/e/g/h"), "2");
        },
        |root| fs::remove_dir_all(root.join("d/e")).expect("rm -r"),
        &["dir d", "whiteout d/e"],
    );
}

#[test]
fn deleted_top_level_path_needs_no_parent() {
    check(
        |root| write(&root.join("top/f"), "1"),
        |root| fs::remove_dir_all(root.join("top")).expect("rm -r"),
        &["whiteout top"],
    );
}

#[test]
fn recreated_directory_whites_out_its_old_children() {
    check(
        |root| write(&root.join("d/old"), "1"),
        |root| {
            fs::remove_dir_all(root.join("d")).expect("rm -r");
            write(&root.join("d/new"), "2");
        },
        &["dir d", "file d/new 1", "whiteout d/old"],
    );
}

#[test]
fn chmod_is_caught_with_the_new_mode() {
    let entries = run_diff(
        |root| write(&root.join("f"), "x"),
        |root| {
            fs::set_permissions(root.join("f"), fs::Permissions::from_mode(0o4750)).expect("chmod")
        },
        false,
    );
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, ["file f 1"]);
    assert_eq!(entries[0].mode, 0o4750);
}

#[test]
fn chown_is_caught_with_the_new_owner() {
    require_root("chown");
    let entries = run_diff(
        |root| write(&root.join("f"), "x"),
        |root| std::os::unix::fs::chown(root.join("f"), Some(1000), Some(1001)).expect("chown"),
        false,
    );
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, ["file f 1"]);
    assert_eq!((entries[0].uid, entries[0].gid), (1000, 1001));
}

#[test]
fn directory_replaced_by_symlink_needs_no_whiteouts_below() {
    check(
        |root| {
            write(&root.join("a/x"), "1");
            write(&root.join("a/y/z"), "2");
        },
        |root| {
            fs::remove_dir_all(root.join("a")).expect("rm -r");
            symlink("elsewhere", root.join("a")).expect("symlink");
        },
        &["symlink a -> elsewhere"],
    );
}

#[test]
fn file_replaced_by_directory_brings_its_contents() {
    check(
        |root| write(&root.join("a"), "file"),
        |root| {
            fs::remove_file(root.join("a")).expect("rm");
            write(&root.join("a/z"), "1");
        },
        &["dir a", "file a/z 1"],
    );
}

#[test]
fn retargeted_symlink_is_caught() {
    check(
        |root| symlink("one", root.join("l")).expect("symlink"),
        |root| {
            fs::remove_file(root.join("l")).expect("rm");
            symlink("two", root.join("l")).expect("symlink");
        },
        &["symlink l -> two"],
    );
}

#[test]
fn new_hard_link_points_to_the_first_path() {
    // Linking changes the inode's link count and change time, so the old name is part of
    // the change and can be the target.
    check(
        |root| write(&root.join("b"), "data"),
        |root| fs::hard_link(root.join("b"), root.join("a")).expect("ln"),
        &["file a 4", "link b => a"],
    );
}

#[test]
fn new_files_linked_together_are_one_file_and_links() {
    check(
        |_| {},
        |root| {
            write(&root.join("d/one"), "x");
            fs::hard_link(root.join("d/one"), root.join("d/two")).expect("ln");
            fs::hard_link(root.join("d/one"), root.join("c")).expect("ln");
        },
        &["file c 1", "dir d", "link d/one => c", "link d/two => c"],
    );
}

#[test]
fn user_xattr_is_caught_and_carried() {
    let entries = run_diff(
        |root| write(&root.join("f"), "x"),
        |root| {
            rustix::fs::lsetxattr(root.join("f"), "user.note", b"v1", XattrFlags::empty())
                .expect("setxattr (user.* needs ext4 or tmpfs)")
        },
        false,
    );
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, ["file f 1"]);
    assert_eq!(
        entries[0].xattrs,
        BTreeMap::from([("user.note".to_string(), b"v1".to_vec())])
    );
}

#[test]
fn file_capability_is_caught_and_carried() {
    require_root("setting security.capability");
    // A VFS_CAP_REVISION_2 record with the effective flag, granting CAP_NET_RAW (bit 13).
    let mut capability = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        capability.extend_from_slice(&word.to_le_bytes());
    }
    let value = capability.clone();
    let entries = run_diff(
        |root| write(&root.join("ping"), "elf"),
        move |root| {
            rustix::fs::lsetxattr(
                root.join("ping"),
                "security.capability",
                &value,
                XattrFlags::empty(),
            )
            .expect("setcap")
        },
        false,
    );
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, ["file ping 3"]);
    assert_eq!(
        entries[0].xattrs.get("security.capability"),
        Some(&capability)
    );
}

#[test]
fn dropped_xattrs_are_not_carried() {
    require_root("setting trusted.* attributes");
    let entries = run_diff(
        |root| write(&root.join("f"), "x"),
        |root| {
            rustix::fs::lsetxattr(
                root.join("f"),
                "trusted.overlay.opaque",
                b"y",
                XattrFlags::empty(),
            )
            .expect("setxattr trusted")
        },
        false,
    );
    // The change time moved, so the file is listed, but without the overlay's attribute.
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, ["file f 1"]);
    assert!(entries[0].xattrs.is_empty(), "{:?}", entries[0].xattrs);
}

#[test]
fn fifo_is_caught() {
    check(
        |_| {},
        |root| {
            rustix::fs::mknodat(CWD, root.join("pipe"), FileType::Fifo, Mode::from(0o640), 0)
                .expect("mkfifo")
        },
        &["fifo pipe"],
    );
}

#[test]
fn char_device_is_caught_with_its_numbers() {
    require_root("mknod");
    let entries = run_diff(
        |root| fs::create_dir(root.join("dev")).expect("mkdir"),
        |root| {
            let device = rustix::fs::makedev(1, 3);
            rustix::fs::mknodat(
                CWD,
                root.join("dev/null"),
                FileType::CharacterDevice,
                Mode::from(0o666),
                device,
            )
            .expect("mknod");
            // mknod applies the umask.
            fs::set_permissions(root.join("dev/null"), fs::Permissions::from_mode(0o666))
                .expect("chmod");
        },
        false,
    );
    let got: Vec<String> = entries.iter().map(describe).collect();
    assert_eq!(got, ["dir dev", "char dev/null 1:3"]);
    assert_eq!(entries[1].mode, 0o666);
}

#[test]
fn sockets_are_left_out() {
    check(
        |_| {},
        |root| {
            let listener = std::os::unix::net::UnixListener::bind(root.join("sock"));
            drop(listener.expect("bind"));
        },
        &[],
    );
}

#[test]
fn epoch_clamps_modification_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let before = scan(root, &[]).expect("scan");
    write(&root.join("new"), "x");
    write(&root.join("old"), "y");
    set_mtime(&root.join("old"), 500);
    let after = scan(root, &[]).expect("scan");
    let entries = diff(&before, &after, root, Some(1000)).expect("diff");
    let times: Vec<(&str, i64)> = entries.iter().map(|e| (e.path.as_str(), e.mtime)).collect();
    assert_eq!(times, [("new", 1000), ("old", 500)]);
}

#[test]
fn file_entries_read_from_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let before = scan(root, &[]).expect("scan");
    write(&root.join("f"), "abc");
    let after = scan(root, &[]).expect("scan");
    let entries = diff(&before, &after, root, None).expect("diff");
    let EntryKind::File { source, .. } = &entries[0].kind else {
        panic!("not a file: {:?}", entries[0]);
    };
    let FileSource::Path(path) = source else {
        panic!("not a path source: {source:?}");
    };
    assert_eq!(fs::read(path).expect("read source"), b"abc");
}

#[test]
fn skipped_paths_are_not_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(&root.join("keep/a"), "1");
    write(&root.join("skip/b"), "2");
    let snapshot = scan(root, &[root.join("skip")]).expect("scan");
    assert!(snapshot.get(Path::new("keep/a")).is_some());
    assert!(snapshot.get(Path::new("skip")).is_none());
    assert!(snapshot.get(Path::new("skip/b")).is_none());
    assert_eq!(snapshot.len(), 2);
}

#[test]
fn forget_drops_a_subtree_from_the_comparison() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(&root.join("cache/x"), "1");
    let mut before = scan(root, &[]).expect("scan");
    fs::remove_dir_all(root.join("cache")).expect("rm");
    let mut after = scan(root, &[]).expect("scan");
    before.forget(Path::new("cache"));
    after.forget(Path::new("cache"));
    assert_eq!(diff(&before, &after, root, None).expect("diff"), []);
}

#[test]
fn ignore_ctime_settles_only_change_time_differences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir(root.join("quiet")).expect("mkdir");
    fs::create_dir(root.join("busy")).expect("mkdir");
    std::thread::sleep(Duration::from_millis(60));
    let before = scan(root, &[]).expect("scan");
    let quiet_mtime = fs::metadata(root.join("quiet"))
        .expect("stat")
        .modified()
        .expect("mtime");
    for name in ["quiet", "busy"] {
        write(&root.join(name).join("tmp"), "x");
        fs::remove_file(root.join(name).join("tmp")).expect("rm");
    }
    fs::File::open(root.join("quiet"))
        .and_then(|d| d.set_modified(quiet_mtime))
        .expect("restore mtime");
    let mut after = scan(root, &[]).expect("scan");
    after.ignore_ctime(&before, &[PathBuf::from("quiet"), PathBuf::from("busy")]);
    let got: Vec<String> = diff(&before, &after, root, None)
        .expect("diff")
        .iter()
        .map(describe)
        .collect();
    assert_eq!(got, ["dir busy"]);
}

#[test]
fn mountinfo_mount_points_are_unescaped() {
    let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                60 27 0:50 / /mnt/with\\040space rw - tmpfs tmpfs rw\n\
                61 27 0:51 / /back\\134slash rw - tmpfs tmpfs rw\n";
    assert_eq!(
        parse_mountinfo(text),
        [
            PathBuf::from("/proc"),
            PathBuf::from("/mnt/with space"),
            PathBuf::from("/back\\slash"),
        ]
    );
}

#[test]
fn mount_points_under_root_exclude_the_root_itself() {
    let mounts = mount_points_under(Path::new("/")).expect("mountinfo");
    assert!(mounts.contains(&PathBuf::from("/proc")), "{mounts:?}");
    assert!(!mounts.contains(&PathBuf::from("/")), "{mounts:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        mount_points_under(dir.path()).expect("mountinfo"),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn other_file_systems_are_not_crossed() {
    // `/dev` is a mount point (devtmpfs) in every environment this runs in; scanning a root
    // above it must not list what is inside, even when mountinfo is not consulted.
    let snapshot = scan(Path::new("/dev"), &[]).expect("scan /dev");
    assert!(snapshot.get(Path::new("shm")).is_none());
    assert!(snapshot.get(Path::new("pts")).is_none());
}

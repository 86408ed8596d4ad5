//! Tests of ordinary layers: entry kinds, replacement rules, whiteouts, metadata.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rustix::fs::{FileType, Mode};
use tar::EntryType;

use super::resolve::{Created, MAX_SYMLINK_HOPS, Resolution, Root};
use super::test_support::{TarEntry as E, apply, build_tar, node};
use super::{ExtractError, ExtractOptions, apply_layer, normalize, parse_pax_time};

const MODES: [Resolution; 2] = [Resolution::Auto, Resolution::Manual];

fn all_options() -> ExtractOptions {
    ExtractOptions {
        same_owner: true,
        devices: true,
        xattrs: true,
        overlay_whiteouts: false,
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

#[test]
fn normalize_clamps_dot_dot_and_strips_prefixes() {
    let cases: &[(&str, &[&str])] = &[
        ("a/b", &["a", "b"]),
        ("./a/./b/", &["a", "b"]),
        ("/abs/x", &["abs", "x"]),
        ("../escape", &["escape"]),
        ("a/../../escape", &["escape"]),
        ("a/b/../c", &["a", "c"]),
        ("..", &[]),
        ("./", &[]),
        ("//a//b", &["a", "b"]),
        (".wh...", &[".wh..."]),
    ];
    for (name, expected) in cases {
        let got: Vec<&[u8]> = normalize(name.as_bytes());
        let expected: Vec<&[u8]> = expected.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(got, expected, "normalize({name:?})");
    }
}

#[test]
fn pax_times_parse_with_fractions_and_signs() {
    let cases: &[(&str, Option<(i64, i64)>)] = &[
        ("1234567890", Some((1_234_567_890, 0))),
        ("1234567890.5", Some((1_234_567_890, 500_000_000))),
        ("1.123456789999", Some((1, 123_456_789))),
        ("-1.25", Some((-2, 750_000_000))),
        ("-3", Some((-3, 0))),
        ("", None),
        ("abc", None),
        ("1.2x", None),
    ];
    for (text, expected) in cases {
        let got = parse_pax_time(text.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(got, *expected, "parse_pax_time({text:?})");
    }
}

#[test]
fn regular_entries_are_created() {
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path();
        let layer = [
            E::dir("etc/"),
            E::file("etc/hostname", "box\n"),
            E::file("./usr/lib/deep/nested/file.txt", "nested"),
            E::symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
            E::symlink("bin", "usr/bin"),
            E::hardlink("etc/hostname.bak", "etc/hostname"),
            E::hardlink("usr/link-to-link", "bin"),
        ];
        let stats = apply(root, &layer, &all_options(), resolution).expect("apply");
        assert_eq!(stats.entries, 7);
        assert_eq!(stats.bytes, 4 + 6);
        assert_eq!(stats.skipped, 0);
        assert_eq!(read(&root.join("etc/hostname")), "box\n");
        assert_eq!(read(&root.join("usr/lib/deep/nested/file.txt")), "nested");
        // Implied parents get mode 0755.
        assert_eq!(lstat(&root.join("usr/lib/deep")).mode() & 0o7777, 0o755);
        assert_eq!(
            fs::read_link(root.join("etc/localtime")).expect("readlink"),
            Path::new("/usr/share/zoneinfo/UTC")
        );
        let original = lstat(&root.join("etc/hostname"));
        let link = lstat(&root.join("etc/hostname.bak"));
        assert_eq!(original.ino(), link.ino());
        assert_eq!(original.nlink(), 2);
        // A hard link to a symlink links the symlink itself, not what it points to.
        let linked = lstat(&root.join("usr/link-to-link"));
        assert!(linked.file_type().is_symlink());
        assert_eq!(linked.ino(), lstat(&root.join("bin")).ino());
    }
}

#[test]
fn whiteouts_remove_lower_entries() {
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path();
        let lower = [
            E::file("a/f1", "1"),
            E::file("a/f2", "2"),
            E::file("b/x/y", "y"),
            E::symlink("c", "/a"),
        ];
        apply(root, &lower, &all_options(), resolution).expect("lower");
        let upper = [
            E::marker("a/.wh.f1"),
            E::marker(".wh.b"),
            E::marker(".wh.c"),
            E::marker(".wh.never-existed"),
        ];
        let stats = apply(root, &upper, &all_options(), resolution).expect("upper");
        assert_eq!(stats.entries, 4);
        assert!(node(&root.join("a/f1")).is_none());
        assert_eq!(read(&root.join("a/f2")), "2");
        assert!(node(&root.join("b")).is_none());
        // The symlink itself is removed, not the directory it points to.
        assert!(node(&root.join("c")).is_none());
        assert!(root.join("a").is_dir());
        for marker in ["a/.wh.f1", ".wh.b", ".wh.c", ".wh.never-existed"] {
            assert!(
                node(&root.join(marker)).is_none(),
                "{marker} must not be created"
            );
        }
    }
}

#[test]
fn opaque_dir_hides_lower_entries_but_keeps_this_layers() {
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path();
        let lower = [
            E::file("d/old", "old"),
            E::file("d/sub/old-deep", "old"),
            E::file("d/gone/x", "x"),
            E::file("other/keep", "keep"),
        ];
        apply(root, &lower, &all_options(), resolution).expect("lower");
        let upper = [
            E::dir("d/"),
            E::file("d/new", "new"),
            E::dir("d/sub/"),
            E::file("d/sub/new-deep", "new"),
            E::marker("d/.wh..wh..opq"),
            E::file("d/later", "later"),
        ];
        apply(root, &upper, &all_options(), resolution).expect("upper");
        assert_eq!(read(&root.join("d/new")), "new");
        assert_eq!(read(&root.join("d/later")), "later");
        assert_eq!(read(&root.join("d/sub/new-deep")), "new");
        assert!(node(&root.join("d/old")).is_none());
        assert!(
            node(&root.join("d/sub/old-deep")).is_none(),
            "lower content of a merged dir"
        );
        assert!(node(&root.join("d/gone")).is_none());
        assert!(node(&root.join("d/.wh..wh..opq")).is_none());
        assert_eq!(read(&root.join("other/keep")), "keep");
    }
}

#[test]
fn kinds_replace_each_other() {
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path();
        let options = all_options();
        apply(
            root,
            &[E::file("x/f", "f"), E::file("p", "p"), E::file("t", "orig")],
            &options,
            resolution,
        )
        .expect("layer 1");
        apply(
            root,
            &[
                E::symlink("x", "t-dir"),
                E::dir("p/"),
                E::file("p/q", "q"),
                E::symlink("l", "t"),
            ],
            &options,
            resolution,
        )
        .expect("layer 2");
        assert!(
            lstat(&root.join("x")).file_type().is_symlink(),
            "dir replaced by symlink"
        );
        assert!(lstat(&root.join("p")).is_dir(), "file replaced by dir");
        assert_eq!(read(&root.join("p/q")), "q");
        apply(
            root,
            &[
                E::dir("x/"),
                E::file("x/g", "g"),
                E::file("l", "new"),
                E::file("p", "file again"),
            ],
            &options,
            resolution,
        )
        .expect("layer 3");
        assert!(lstat(&root.join("x")).is_dir(), "symlink replaced by dir");
        assert_eq!(read(&root.join("x/g")), "g");
        assert!(
            node(&root.join("x/f")).is_none(),
            "old dir contents are gone"
        );
        assert!(
            node(&root.join("t-dir")).is_none(),
            "nothing created at the old link target"
        );
        assert!(
            lstat(&root.join("l")).is_file(),
            "symlink replaced by a file"
        );
        assert_eq!(read(&root.join("l")), "new");
        assert_eq!(
            read(&root.join("t")),
            "orig",
            "never written through the symlink"
        );
        assert!(lstat(&root.join("p")).is_file(), "dir replaced by file");
        assert_eq!(read(&root.join("p")), "file again");
    }
}

#[test]
fn existing_directory_is_merged_and_gets_new_metadata() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    apply(
        root,
        &[E::dir("d/").mode(0o700), E::file("d/keep", "k")],
        &all_options(),
        Resolution::Auto,
    )
    .expect("lower");
    let before = lstat(&root.join("d")).ino();
    apply(
        root,
        &[E::dir("d/").mode(0o1777).mtime(77), E::file("d/add", "a")],
        &all_options(),
        Resolution::Auto,
    )
    .expect("upper");
    let meta = lstat(&root.join("d"));
    assert_eq!(meta.ino(), before, "kept, not recreated");
    assert_eq!(meta.mode() & 0o7777, 0o1777);
    assert_eq!(meta.mtime(), 77);
    assert_eq!(read(&root.join("d/keep")), "k");
    assert_eq!(read(&root.join("d/add")), "a");
}

#[test]
fn xattrs_are_set_when_enabled() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    // Version 2 file capability: effective, CAP_NET_BIND_SERVICE permitted.
    let mut capability = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        capability.extend_from_slice(&word.to_le_bytes());
    }
    let layer = [
        E::file("f", "x")
            .pax("SCHILY.xattr.user.test", "hello")
            .owner(1000, 1000),
        E::dir("d/").pax("SCHILY.xattr.user.test", "dir"),
        E::file("cap", "x")
            .mode(0o755)
            .owner(1000, 1000)
            .pax("SCHILY.xattr.security.capability", &capability),
        E::file("trusted", "x").pax("SCHILY.xattr.trusted.secret", "no"),
    ];
    let options = ExtractOptions {
        same_owner: is_root(),
        devices: false,
        xattrs: true,
        overlay_whiteouts: false,
    };
    apply(root, &layer, &options, Resolution::Auto).expect("apply");
    let get = |path: &str, key: &str| {
        let mut buf = vec![0u8; 256];
        rustix::fs::lgetxattr(root.join(path), key, &mut buf[..]).map(|n| buf[..n].to_vec())
    };
    assert_eq!(get("f", "user.test").expect("user.test"), b"hello");
    assert_eq!(get("d", "user.test").expect("dir user.test"), b"dir");
    assert!(
        get("trusted", "trusted.secret").is_err(),
        "trusted.* is never set"
    );
    if is_root() {
        // Set after chown, which would otherwise have dropped it.
        assert_eq!(
            get("cap", "security.capability").expect("capability"),
            capability
        );
    }

    let temp = tempfile::tempdir().expect("tempdir");
    let off = ExtractOptions {
        xattrs: false,
        overlay_whiteouts: false,
        ..options
    };
    apply(temp.path(), &layer[..1], &off, Resolution::Auto).expect("apply");
    let mut buf = [0u8; 64];
    assert!(rustix::fs::lgetxattr(temp.path().join("f"), "user.test", &mut buf[..]).is_err());
}

#[test]
fn owners_and_special_mode_bits() {
    if !is_root() {
        // Without CAP_CHOWN only the mode half can be checked.
        let temp = tempfile::tempdir().expect("tempdir");
        let options = ExtractOptions {
            same_owner: false,
            ..all_options()
        };
        apply(
            temp.path(),
            &[E::file("s", "x").mode(0o4755)],
            &options,
            Resolution::Auto,
        )
        .expect("apply");
        assert_eq!(lstat(&temp.path().join("s")).mode() & 0o7777, 0o4755);
        return;
    }
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path();
        let layer = [
            E::file("usr/bin/su", "x").mode(0o4755).owner(1234, 5678),
            E::dir("shared/").mode(0o2775).owner(42, 43),
            E::dir("tmp/").mode(0o1777),
            E::symlink("link", "usr/bin/su").owner(7, 8),
            E::file("private", "x").mode(0o600).owner(9, 9),
        ];
        apply(root, &layer, &all_options(), resolution).expect("apply");
        let su = lstat(&root.join("usr/bin/su"));
        assert_eq!(
            (su.uid(), su.gid(), su.mode() & 0o7777),
            (1234, 5678, 0o4755)
        );
        let shared = lstat(&root.join("shared"));
        assert_eq!(
            (shared.uid(), shared.gid(), shared.mode() & 0o7777),
            (42, 43, 0o2775)
        );
        assert_eq!(lstat(&root.join("tmp")).mode() & 0o7777, 0o1777);
        let link = lstat(&root.join("link"));
        assert_eq!(
            (link.uid(), link.gid()),
            (7, 8),
            "lchown on the link itself"
        );
        assert_eq!(lstat(&root.join("private")).mode() & 0o7777, 0o600);

        let temp = tempfile::tempdir().expect("tempdir");
        let options = ExtractOptions {
            same_owner: false,
            ..all_options()
        };
        apply(temp.path(), &layer, &options, resolution).expect("apply");
        let su = lstat(&temp.path().join("usr/bin/su"));
        assert_eq!(
            (su.uid(), su.mode() & 0o7777),
            (0, 0o4755),
            "owner not taken from the tar"
        );
    }
}

#[test]
fn times_of_files_dirs_and_symlinks() {
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path();
        let layer = [
            E::dir("d/").mtime(2_000),
            E::dir("d/e/").mtime(4_000),
            E::file("d/e/y", "y").mtime(1_000),
            E::file("d/x", "x").mtime(1_000).atime(5_000),
            E::symlink("d/s", "x").mtime(3_000),
            E::file("p", "p").pax("mtime", "1234567890.5"),
            E::file("d/late", "z"),
        ];
        apply(root, &layer, &all_options(), resolution).expect("apply");
        let mtime = |p: &str| {
            let m = lstat(&root.join(p));
            (m.mtime(), m.mtime_nsec())
        };
        assert_eq!(
            mtime("d"),
            (2_000, 0),
            "dir time restored after its contents"
        );
        assert_eq!(mtime("d/e"), (4_000, 0));
        assert_eq!(mtime("d/x"), (1_000, 0));
        assert_eq!(lstat(&root.join("d/x")).atime(), 5_000);
        assert_eq!(mtime("d/s"), (3_000, 0), "symlink's own time");
        assert_eq!(mtime("p"), (1_234_567_890, 500_000_000));
    }
}

/// Whether this process may create a node of `file_type`, found by trying.
fn can_mknod(file_type: FileType, dev: u64) -> bool {
    let probe = tempfile::tempdir().expect("tempdir");
    let dir =
        rustix::fs::open(probe.path(), rustix::fs::OFlags::PATH, Mode::empty()).expect("open");
    rustix::fs::mknodat(&dir, "probe", file_type, Mode::from_raw_mode(0o600), dev).is_ok()
}

#[test]
fn devices_and_fifos_are_created_or_skipped_by_capability() {
    let char_ok = can_mknod(FileType::CharacterDevice, rustix::fs::makedev(1, 3));
    let block_ok = can_mknod(FileType::BlockDevice, rustix::fs::makedev(7, 200));
    let fifo_ok = can_mknod(FileType::Fifo, 0);
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path();
        let layer = [
            E::node("dev/null2", EntryType::Char, 1, 3).mode(0o666),
            E::node("dev/loop9", EntryType::Block, 7, 200),
            E::node("run/fifo", EntryType::Fifo, 0, 0).mode(0o620),
        ];
        let stats = apply(root, &layer, &all_options(), resolution).expect("apply");
        let expected_skips = [char_ok, block_ok, fifo_ok]
            .iter()
            .filter(|ok| !**ok)
            .count();
        assert_eq!(stats.skipped, expected_skips as u64);
        let check =
            |path: &str, ok: bool, is_kind: fn(&fs::FileType) -> bool, dev: Option<(u32, u32)>| {
                let meta = fs::symlink_metadata(root.join(path));
                if !ok {
                    assert!(meta.is_err(), "{path} skipped");
                    return;
                }
                let meta = meta.expect("node created");
                assert!(is_kind(&meta.file_type()), "{path} kind");
                if let Some((major, minor)) = dev {
                    assert_eq!(
                        meta.rdev(),
                        rustix::fs::makedev(major, minor),
                        "{path} rdev"
                    );
                }
            };
        check("dev/null2", char_ok, |t| t.is_char_device(), Some((1, 3)));
        check(
            "dev/loop9",
            block_ok,
            |t| t.is_block_device(),
            Some((7, 200)),
        );
        check("run/fifo", fifo_ok, |t| t.is_fifo(), None);
        if fifo_ok {
            assert_eq!(lstat(&root.join("run/fifo")).mode() & 0o7777, 0o620);
        }

        let temp = tempfile::tempdir().expect("tempdir");
        let off = ExtractOptions {
            devices: false,
            ..all_options()
        };
        let stats = apply(temp.path(), &layer, &off, resolution).expect("apply");
        assert_eq!(stats.skipped, 3);
        assert!(node(&temp.path().join("dev/null2")).is_none());
        assert!(node(&temp.path().join("run/fifo")).is_none());
    }
}

#[test]
fn hard_link_errors_name_the_entry_and_target() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    let err = apply(
        root,
        &[E::hardlink("a/b", "c")],
        &all_options(),
        Resolution::Auto,
    )
    .expect_err("missing target");
    assert!(matches!(err, ExtractError::HardLink { .. }), "{err:?}");
    assert_eq!(err.to_string(), "failed to create hard link `a/b` to `c`");
    let source = std::error::Error::source(&err).expect("cause attached");
    assert!(source.to_string().contains("No such file"), "{source}");

    let err = apply(
        root,
        &[E::dir("d/"), E::hardlink("l", "d")],
        &all_options(),
        Resolution::Auto,
    )
    .expect_err("directory target");
    assert_eq!(
        err.to_string(),
        "invalid entry `l`: hard link target is a directory"
    );
    assert!(node(&root.join("l")).is_none());
}

#[test]
fn invalid_entries_are_refused_with_their_names() {
    let cases: &[(E, &str)] = &[
        (
            E::marker(".wh..."),
            "invalid entry `.wh...`: whiteout escapes its directory",
        ),
        (
            E::marker("d/.wh.."),
            "invalid entry `d/.wh..`: whiteout escapes its directory",
        ),
        (
            E::marker("d/.wh."),
            "invalid entry `d/.wh.`: whiteout escapes its directory",
        ),
        (
            E::file("a/.wh.x/y", "y"),
            "invalid entry `a/.wh.x/y`: a parent directory is a whiteout",
        ),
        (
            E::symlink("s", ""),
            "invalid entry `s`: link without a target",
        ),
        (
            E::node("weird", EntryType::new(b'Z'), 0, 0),
            "unsupported type `Z` of entry `weird`",
        ),
    ];
    for (entry, message) in cases {
        let temp = tempfile::tempdir().expect("tempdir");
        let err = apply(
            temp.path(),
            std::slice::from_ref(entry),
            &all_options(),
            Resolution::Auto,
        )
        .expect_err(message);
        assert_eq!(err.to_string(), *message);
    }
}

#[test]
fn symlink_loops_end_with_an_error() {
    for resolution in MODES {
        let temp = tempfile::tempdir().expect("tempdir");
        let layer = [
            E::symlink("a", "b"),
            E::symlink("b", "/a"),
            E::file("a/file", "x"),
        ];
        let err = apply(temp.path(), &layer, &all_options(), resolution).expect_err("loop");
        assert_eq!(
            err.to_string(),
            "failed to resolve parent directory of `a/file`"
        );
        let source = std::error::Error::source(&err).expect("cause");
        assert!(source.to_string().contains("symbolic links"), "{source}");
    }
}

#[test]
fn entries_naming_the_root_and_global_headers_are_skipped() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    let before = lstat(root);
    let layer = [
        E::dir("./").mode(0o700),
        E::dir("/").mode(0o700),
        E::node("pax_global_header", EntryType::XGlobalHeader, 0, 0),
        E::marker(".wh..wh.plnk"),
        E::file("kept", "k"),
    ];
    let stats = apply(root, &layer, &all_options(), Resolution::Auto).expect("apply");
    assert_eq!((stats.entries, stats.skipped), (5, 4));
    assert_eq!(lstat(root).mode(), before.mode());
    assert!(node(&root.join("pax_global_header")).is_none());
    assert!(node(&root.join(".wh..wh.plnk")).is_none());
    assert_eq!(read(&root.join("kept")), "k");
}

#[test]
fn missing_root_and_truncated_tar_are_errors() {
    let temp = tempfile::tempdir().expect("tempdir");
    let missing = temp.path().join("nope");
    let err = apply_layer(&missing, &[][..], &all_options()).expect_err("missing root");
    assert!(matches!(err, ExtractError::OpenRoot { .. }));
    assert!(
        err.to_string()
            .starts_with("failed to open extraction root `"),
        "{err}"
    );

    let mut tar = build_tar(&[E::file("big", vec![7u8; 4096])]);
    tar.truncate(512 + 1000);
    let err = apply_layer(temp.path(), tar.as_slice(), &all_options()).expect_err("truncated");
    assert_eq!(err.to_string(), "failed to write file `big`");
}

#[test]
fn resolver_follows_symlinks_inside_root_on_both_paths() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path();
    fs::create_dir_all(root.join("a/b")).expect("mkdir");
    std::os::unix::fs::symlink("a", root.join("rel")).expect("symlink");
    std::os::unix::fs::symlink("/a/b", root.join("abs")).expect("symlink");
    std::os::unix::fs::symlink("../../../a", root.join("a/up")).expect("symlink");
    std::os::unix::fs::symlink("l2", root.join("l1")).expect("symlink");
    std::os::unix::fs::symlink("l1", root.join("l2")).expect("symlink");
    fs::write(root.join("file"), "x").expect("write");
    let target = lstat(&root.join("a/b")).ino();
    let ok_cases: &[&[&str]] = &[
        &["a", "b"],
        &["rel", "b"],
        &["abs"],
        &["a", "up", "b"],
        &["a", "..", "a", "b"],
    ];
    let err_cases: &[(&[&str], rustix::io::Errno)] = &[
        (&["l1"], rustix::io::Errno::LOOP),
        (&["file"], rustix::io::Errno::NOTDIR),
        (&["missing"], rustix::io::Errno::NOENT),
    ];
    for resolution in MODES {
        let resolver = Root::open(root, resolution).expect("open root");
        for case in ok_cases {
            let components: Vec<&[u8]> = case.iter().map(|c| c.as_bytes()).collect();
            let fd = resolver.open_dir(&components, None).expect("resolve");
            assert_eq!(
                rustix::fs::fstat(&fd).expect("fstat").st_ino,
                target,
                "{case:?}"
            );
        }
        for (case, errno) in err_cases {
            let components: Vec<&[u8]> = case.iter().map(|c| c.as_bytes()).collect();
            let err = resolver.open_dir(&components, None).expect_err("must fail");
            assert_eq!(err.raw_os_error(), Some(errno.raw_os_error()), "{case:?}");
        }
        let mut created = Created::default();
        let fd = resolver
            .open_dir(&[b"abs", b"new", b"deeper"], Some(&mut created))
            .expect("create");
        assert_eq!(
            rustix::fs::fstat(&fd).expect("fstat").st_ino,
            lstat(&root.join("a/b/new/deeper")).ino()
        );
        let holder =
            rustix::fs::fstat(resolver.open_dir(&[b"a", b"b"], None).expect("a/b").as_fd())
                .expect("fstat");
        assert!(
            created.contains(holder.st_dev, holder.st_ino, b"new"),
            "implied dirs recorded"
        );
        fs::remove_dir_all(root.join("a/b/new")).expect("cleanup");
        match resolution {
            Resolution::Auto => assert!(resolver.openat2_hits() >= 5, "openat2 answered"),
            Resolution::Manual => assert_eq!(resolver.openat2_hits(), 0, "manual walk only"),
        }
    }
    // The hop limit is what ends a loop, and a chain just under it still resolves.
    let chain = tempfile::tempdir().expect("tempdir");
    fs::create_dir(chain.path().join("end")).expect("mkdir");
    std::os::unix::fs::symlink("end", chain.path().join("c0")).expect("symlink");
    for i in 1..MAX_SYMLINK_HOPS {
        std::os::unix::fs::symlink(format!("c{}", i - 1), chain.path().join(format!("c{i}")))
            .expect("symlink");
    }
    let resolver = Root::open(chain.path(), Resolution::Manual).expect("open");
    let last = format!("c{}", MAX_SYMLINK_HOPS - 1);
    resolver
        .open_dir(&[last.as_bytes()], None)
        .expect("255 hops resolve");
    std::os::unix::fs::symlink(&last, chain.path().join("over")).expect("symlink");
    let err = resolver.open_dir(&[b"over"], None).expect_err("256 hops");
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::LOOP.raw_os_error())
    );
}

//! Tests of emulated mounts: each source kind in place during the step, the root as it was
//! afterwards.

use std::os::unix::fs::symlink;

use super::*;
use crate::sandbox::test_support::{require_root, store};

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    store: Store,
}

fn fixture() -> Fixture {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir root");
    Fixture {
        _tmp: tmp,
        root,
        store,
    }
}

fn provision<'a>(target: &str, content: Content<'a>) -> Provision<'a> {
    Provision {
        target: target.to_string(),
        content,
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
}

#[test]
fn cache_on_the_same_file_system_is_moved_in_and_back() {
    let f = fixture();
    let host = f.store.temp_dir().expect("temp dir");
    let cache = host.path().join("cache");
    fs::create_dir(&cache).expect("mkdir");
    fs::write(cache.join("old"), "1").expect("write");
    let mounts = [provision(
        "/root/.cache",
        Content::Kept {
            host: &cache,
            read_only: false,
        },
    )];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    assert!(!cache.exists(), "moved, not copied");
    assert_eq!(read(&f.root.join("root/.cache/old")), "1");
    fs::write(f.root.join("root/.cache/new"), "2").expect("write");
    assert_eq!(emulated.excluded(), [PathBuf::from("root/.cache")]);
    emulated.teardown().expect("teardown");
    assert_eq!(read(&cache.join("new")), "2");
    assert!(!f.root.join("root").exists(), "created parents are removed");
}

#[test]
fn cache_on_another_file_system_is_copied_in_and_back() {
    let f = fixture();
    let host = tempfile::tempdir_in("/dev/shm").expect("tempdir on tmpfs");
    fs::write(host.path().join("old"), "1").expect("write");
    let mounts = [provision(
        "/cache",
        Content::Kept {
            host: host.path(),
            read_only: false,
        },
    )];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    assert!(
        host.path().join("old").exists(),
        "copied, the host keeps its copy meanwhile"
    );
    fs::write(f.root.join("cache/new"), "2").expect("write");
    fs::remove_file(f.root.join("cache/old")).expect("rm");
    emulated.teardown().expect("teardown");
    assert_eq!(read(&host.path().join("new")), "2");
    assert!(!host.path().join("old").exists());
    assert!(!f.root.join("cache").exists());
}

#[test]
fn read_only_cache_discards_writes() {
    let f = fixture();
    let host = f.store.temp_dir().expect("temp dir");
    fs::write(host.path().join("old"), "1").expect("write");
    let mounts = [provision(
        "/cache",
        Content::Kept {
            host: host.path(),
            read_only: true,
        },
    )];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    fs::write(f.root.join("cache/new"), "2").expect("write");
    emulated.teardown().expect("teardown");
    assert!(!host.path().join("new").exists());
    assert_eq!(read(&host.path().join("old")), "1");
}

#[test]
fn what_was_at_the_target_comes_back() {
    let f = fixture();
    fs::create_dir(f.root.join("etc")).expect("mkdir");
    fs::write(f.root.join("etc/hosts"), "the image's").expect("write");
    let content = Content::File {
        bytes: b"127.0.0.1 localhost\n",
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let mounts = [provision("/etc/hosts", content)];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    assert_eq!(read(&f.root.join("etc/hosts")), "127.0.0.1 localhost\n");
    emulated.teardown().expect("teardown");
    assert_eq!(read(&f.root.join("etc/hosts")), "the image's");
}

#[test]
fn tmpfs_is_an_empty_world_writable_directory() {
    let f = fixture();
    let mounts = [provision("/a/b/scratch", Content::EmptyDir)];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    let meta = fs::metadata(f.root.join("a/b/scratch")).expect("stat");
    assert_eq!(meta.mode() & 0o7777, 0o1777);
    fs::write(f.root.join("a/b/scratch/x"), "x").expect("write");
    emulated.teardown().expect("teardown");
    assert!(!f.root.join("a").exists());
}

#[test]
fn secret_has_its_mode_and_owner_and_is_gone_after() {
    require_root("chown to another user");
    let f = fixture();
    let content = Content::File {
        bytes: b"s3cret",
        mode: 0o400,
        uid: 1000,
        gid: 1001,
    };
    let mounts = [provision("/run/secrets/token", content)];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    let path = f.root.join("run/secrets/token");
    let meta = fs::metadata(&path).expect("stat");
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o400, 1000, 1001)
    );
    assert_eq!(read(&path), "s3cret");
    emulated.teardown().expect("teardown");
    assert!(!path.exists());
    assert!(!f.root.join("run").exists());
}

#[test]
fn context_is_copied_with_links_and_removed_after() {
    let f = fixture();
    let context = tempfile::tempdir().expect("tempdir");
    fs::create_dir(context.path().join("src")).expect("mkdir");
    fs::write(context.path().join("src/main.c"), "int main;").expect("write");
    symlink("src/main.c", context.path().join("link")).expect("symlink");
    let mounts = [provision("/ctx", Content::Copied(context.path()))];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    assert_eq!(read(&f.root.join("ctx/src/main.c")), "int main;");
    assert_eq!(
        fs::read_link(f.root.join("ctx/link")).expect("readlink"),
        Path::new("src/main.c")
    );
    fs::write(f.root.join("ctx/src/main.c"), "changed").expect("write");
    emulated.teardown().expect("teardown");
    assert!(!f.root.join("ctx").exists());
    assert_eq!(read(&context.path().join("src/main.c")), "int main;");
}

#[test]
fn layers_are_merged_with_overlay_whiteouts_and_opaque_directories() {
    require_root("overlay whiteouts are device nodes");
    let f = fixture();
    let lower = tempfile::tempdir().expect("tempdir");
    let upper = tempfile::tempdir().expect("tempdir");
    let top = tempfile::tempdir().expect("tempdir");
    for name in ["x", "y"] {
        fs::create_dir_all(lower.path().join("app/d")).expect("mkdir");
        fs::write(lower.path().join("app/d").join(name), name).expect("write");
    }
    fs::create_dir_all(lower.path().join("app/hidden")).expect("mkdir");
    fs::write(lower.path().join("app/hidden/old"), "old").expect("write");
    fs::create_dir_all(upper.path().join("app/d")).expect("mkdir");
    rustix::fs::mknodat(
        CWD,
        upper.path().join("app/d/y"),
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .expect("whiteout");
    fs::write(upper.path().join("app/d/z"), "z").expect("write");
    fs::create_dir_all(top.path().join("app/hidden")).expect("mkdir");
    rustix::fs::lsetxattr(
        top.path().join("app/hidden"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("opaque");
    fs::write(top.path().join("app/hidden/new"), "new").expect("write");
    let dirs = [
        lower.path().to_path_buf(),
        upper.path().to_path_buf(),
        top.path().to_path_buf(),
    ];
    let mounts = [provision(
        "/mnt",
        Content::Layers {
            dirs: &dirs,
            subpath: "app",
        },
    )];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    let mut names: Vec<String> = walk(&f.root.join("mnt"));
    names.sort();
    assert_eq!(names, ["d", "d/x", "d/z", "hidden", "hidden/new"]);
    emulated.teardown().expect("teardown");
    assert!(!f.root.join("mnt").exists());
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for child in fs::read_dir(&current).expect("read_dir") {
            let path = child.expect("entry").path();
            out.push(
                path.strip_prefix(dir)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned(),
            );
            if fs::symlink_metadata(&path).expect("stat").is_dir() {
                pending.push(path);
            }
        }
    }
    out
}

#[test]
fn missing_layer_subpath_is_an_error() {
    let f = fixture();
    let lower = tempfile::tempdir().expect("tempdir");
    let dirs = [lower.path().to_path_buf()];
    let mounts = [provision(
        "/mnt",
        Content::Layers {
            dirs: &dirs,
            subpath: "nope",
        },
    )];
    let error = Emulated::setup("test", &f.root, &f.store, &mounts)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        error.contains("`nope` does not exist in the mounted layers"),
        "{error}"
    );
    assert!(!f.root.join("mnt").exists());
}

#[test]
fn failed_setup_undoes_the_mounts_already_in_place() {
    let f = fixture();
    let missing = f.root.join("../no-such-context");
    let mounts = [
        provision("/first", Content::EmptyDir),
        provision("/second", Content::Copied(&missing)),
    ];
    let error = Emulated::setup("test", &f.root, &f.store, &mounts)
        .err()
        .expect("must fail")
        .to_string();
    assert!(error.contains("emulate the mount at `/second`"), "{error}");
    assert!(!f.root.join("first").exists());
}

#[test]
fn parents_get_their_modification_time_back() {
    let f = fixture();
    fs::create_dir(f.root.join("var")).expect("mkdir");
    let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    fs::File::open(f.root.join("var"))
        .and_then(|d| d.set_modified(old))
        .expect("mtime");
    let mounts = [provision("/var/cache", Content::EmptyDir)];
    let emulated = Emulated::setup("test", &f.root, &f.store, &mounts).expect("setup");
    let settled = emulated.teardown().expect("teardown");
    assert_eq!(settled, [PathBuf::from("var")]);
    let mtime = fs::metadata(f.root.join("var"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(mtime, old);
}

#[test]
fn targets_resolve_inside_the_root() {
    let f = fixture();
    fs::create_dir_all(f.root.join("real/dir")).expect("mkdir");
    symlink("/real", f.root.join("abs")).expect("symlink");
    symlink("../../../real", f.root.join("escape")).expect("symlink");
    symlink("real/dir", f.root.join("rel")).expect("symlink");
    let cases = [
        ("/abs/dir/x", "real/dir/x"),
        ("/escape/dir", "real/dir"),
        ("/rel/../y", "real/y"),
        ("/../../etc", "etc"),
        ("/missing/a/b", "missing/a/b"),
    ];
    for (target, expected) in cases {
        let resolved = resolve_in_root(&f.root, target).expect("resolve");
        assert_eq!(resolved, f.root.join(expected), "{target}");
    }
    symlink("loop", f.root.join("loop")).expect("symlink");
    let error = resolve_in_root(&f.root, "/loop").expect_err("loop");
    assert!(error.contains("too many levels"), "{error}");
}

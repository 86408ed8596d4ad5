//! Tests of stage roots: chain extension, recognising a step's own layer, wiping, and
//! protected paths surviving wipes and layers.

use std::fs;

use super::*;
use crate::layer::writer::EntryKind;
use crate::sandbox::test_support::{self, dir, file, layer, require_root, store, whiteout};

fn opaque(path: &str) -> LayerEntry {
    LayerEntry {
        kind: EntryKind::OpaqueDir,
        ..dir(path)
    }
}

fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path)).unwrap_or_else(|e| format!("<{e}>"))
}

#[test]
fn extending_chain_applies_only_the_new_layers() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    let base = layer(&store, vec![dir("etc"), file("etc/a", "base")]);
    let top = layer(&store, vec![dir("etc"), file("etc/b", "top")]);
    let mut stage = StageRoot::new("test", &root, &[]).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare base");
    assert_eq!(read(&root, "etc/a"), "base");
    // A change the base layer would undo if it were applied again.
    fs::write(root.join("etc/a"), "touched").expect("write");
    stage
        .prepare(&store, &[base.clone(), top.clone()])
        .expect("prepare top");
    assert_eq!(read(&root, "etc/a"), "touched");
    assert_eq!(read(&root, "etc/b"), "top");
}

#[test]
fn another_chain_wipes_and_unpacks_everything() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    fs::write(root.join("leftover"), "x").expect("write");
    let one = layer(&store, vec![file("one", "1")]);
    let two = layer(&store, vec![file("two", "2")]);
    let mut stage = StageRoot::new("test", &root, &[]).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&one))
        .expect("prepare one");
    assert!(
        !root.join("leftover").exists(),
        "an unknown root is wiped first"
    );
    stage
        .prepare(&store, std::slice::from_ref(&two))
        .expect("prepare two");
    assert!(!root.join("one").exists());
    assert_eq!(read(&root, "two"), "2");
}

#[test]
fn layer_written_from_the_step_is_not_applied_again() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    let base = layer(&store, vec![file("a", "base")]);
    let mut stage = StageRoot::new("test", &root, &[]).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    // The step wrote `made`; the builder turns exactly that into a layer.
    let step_entries = vec![file("made", "by step")];
    let step_layer = layer(&store, step_entries.clone());
    fs::write(root.join("made"), "still the step's file").expect("write");
    stage.stepped(std::slice::from_ref(&base), &step_entries);
    let copy = layer(&store, vec![file("copied", "c")]);
    stage
        .prepare(&store, &[base.clone(), step_layer.clone(), copy])
        .expect("prepare after step");
    assert_eq!(read(&root, "made"), "still the step's file");
    assert_eq!(read(&root, "copied"), "c");
}

#[test]
fn a_different_layer_after_a_step_starts_over() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    let base = layer(&store, vec![file("a", "base")]);
    let mut stage = StageRoot::new("test", &root, &[]).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    fs::write(root.join("made"), "x").expect("write");
    stage.stepped(std::slice::from_ref(&base), &[file("made", "x")]);
    let other = layer(&store, vec![file("other", "o")]);
    stage.prepare(&store, &[base, other]).expect("prepare");
    assert!(
        !root.join("made").exists(),
        "the step's files belong to no layer now"
    );
    assert_eq!(read(&root, "other"), "o");
}

#[test]
fn protected_paths_survive_wipes_and_layers() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("etc")).expect("mkdir");
    fs::create_dir_all(root.join("ria")).expect("mkdir");
    fs::write(root.join("etc/hosts"), "engine's hosts").expect("write");
    fs::write(root.join("ria/rust-image-action"), "binary").expect("write");
    fs::write(root.join("etc/old"), "x").expect("write");
    let protected = [root.join("etc/hosts"), root.join("ria")];
    let base = layer(
        &store,
        vec![
            dir("etc"),
            file("etc/hosts", "image's hosts"),
            file("etc/os-release", "busybox"),
            dir("ria"),
            file("ria/other", "from the image"),
        ],
    );
    let mut stage = StageRoot::new("test", &root, &protected).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    assert_eq!(read(&root, "etc/hosts"), "engine's hosts");
    assert_eq!(read(&root, "ria/rust-image-action"), "binary");
    assert!(
        !root.join("ria/other").exists(),
        "entries below a protected path are dropped"
    );
    assert_eq!(read(&root, "etc/os-release"), "busybox");
    assert!(!root.join("etc/old").exists(), "the rest of `etc` is wiped");
}

#[test]
fn long_names_pass_through_the_filter() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("keep")).expect("mkdir");
    let long = format!("deep/{}/file", "n".repeat(150));
    let long_protected = format!("keep/{}", "p".repeat(150));
    let base = layer(
        &store,
        vec![
            dir("deep"),
            dir(&format!("deep/{}", "n".repeat(150))),
            file(&long, "long"),
            dir("keep"),
            file(&long_protected, "dropped"),
        ],
    );
    let mut stage = StageRoot::new("test", &root, &[root.join("keep")]).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    assert_eq!(read(&root, &long), "long");
    assert!(!root.join(&long_protected).exists());
}

#[test]
fn layer_deleting_what_holds_a_protected_path_is_refused() {
    let cases: &[(Vec<LayerEntry>, &str)] = &[
        (
            vec![whiteout("etc")],
            "it deletes `/etc`, which holds `/etc/hosts`",
        ),
        (
            vec![test_support::symlink("etc", "private/etc")],
            "it turns `/etc`, which holds `/etc/hosts`, into a non-directory",
        ),
        (
            vec![dir("etc"), whiteout("etc/hosts")],
            "it deletes `/etc/hosts`",
        ),
        (
            vec![dir("etc"), opaque("etc")],
            "it empties `/etc`, which holds `/etc/hosts`",
        ),
    ];
    for (entries, expected) in cases {
        let (tmp, store) = store();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("etc")).expect("mkdir");
        fs::write(root.join("etc/hosts"), "engine's").expect("write");
        let bad = layer(&store, entries.clone());
        let mut stage =
            StageRoot::new("test", &root, &[root.join("etc/hosts")]).expect("stage root");
        let error = stage
            .prepare(&store, std::slice::from_ref(&bad))
            .expect_err("must be refused")
            .to_string();
        assert!(error.contains(expected), "{error}");
        assert!(
            error.contains("hint: use `--isolation namespace`"),
            "{error}"
        );
        assert_eq!(read(&root, "etc/hosts"), "engine's");
    }
}

#[test]
fn missing_blob_is_reported_with_its_digest() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    let (_other_tmp, other_store) = test_support::store();
    let elsewhere = layer(&other_store, vec![file("a", "1")]);
    let mut stage = StageRoot::new("test", &root, &[]).expect("stage root");
    let error = stage
        .prepare(&store, std::slice::from_ref(&elsewhere))
        .expect_err("missing blob")
        .to_string();
    assert!(
        error.contains(&elsewhere.descriptor.digest.to_string()),
        "{error}"
    );
    assert!(error.contains("not in the store"), "{error}");
}

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn wipe_keeps_mounts_below_the_root() {
    require_root("mounting a tmpfs");
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    let mount = root.join("var/mnt");
    fs::create_dir_all(&mount).expect("mkdir");
    rustix::mount::mount(
        "tmpfs",
        &mount,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .expect("mount tmpfs");
    let _mounted = Mounted(mount.clone());
    fs::write(mount.join("inside"), "keep me").expect("write");
    fs::write(root.join("var/outside"), "x").expect("write");
    let base = layer(
        &store,
        vec![dir("var"), dir("var/mnt"), file("var/mnt/image", "no")],
    );
    let mut stage = StageRoot::new("test", &root, &[]).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    assert_eq!(read(&root, "var/mnt/inside"), "keep me");
    assert!(
        !mount.join("image").exists(),
        "nothing is unpacked into a mount"
    );
    assert!(!root.join("var/outside").exists());
}

#[test]
fn remove_tree_refuses_to_cross_into_a_mount() {
    require_root("mounting a tmpfs");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mount = tmp.path().join("a/m");
    fs::create_dir_all(&mount).expect("mkdir");
    rustix::mount::mount(
        "tmpfs",
        &mount,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .expect("mount tmpfs");
    let _mounted = Mounted(mount.clone());
    fs::write(mount.join("inside"), "keep me").expect("write");
    let dev = fs::metadata(tmp.path()).expect("stat").dev();
    let error = remove_tree(&tmp.path().join("a"), dev).expect_err("must refuse");
    assert!(
        error.contains("another file system is mounted there"),
        "{error}"
    );
    assert_eq!(read(&mount, "inside"), "keep me");
}

#[test]
fn pax_path_records_are_read() {
    let data = b"30 mtime=1700000000.123456789\n20 path=a/very/long\n";
    assert_eq!(pax_path(data), Some(b"a/very/long".to_vec()));
    assert_eq!(pax_path(b"12 uid=1000\n"), None);
}

#[test]
fn opaque_root_of_a_foreign_layer_is_refused() {
    // Our writer cannot express it, other tools can: `.wh..wh..opq` at the top.
    let index = LayerIndex {
        entries: vec![crate::layer::index::IndexEntry {
            path: String::new(),
            kind: IndexKind::OpaqueDir,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            link_target: None,
        }],
        small_files: Default::default(),
    };
    let error = check_protected(&index, &["etc/hosts".to_string()]).expect_err("refused");
    assert_eq!(error, "it empties `/`, which holds `/etc/hosts`");
    assert_eq!(check_protected(&index, &[]), Ok(false));
}

#[test]
fn step_without_changes_keeps_the_chain() {
    let (tmp, store) = store();
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    let base = layer(&store, vec![file("a", "base")]);
    let mut stage = StageRoot::new("test", &root, &[]).expect("stage root");
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    fs::write(root.join("a"), "touched").expect("write");
    // A step with no changes adds no layer: the same chain comes back.
    stage.stepped(std::slice::from_ref(&base), &[]);
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    assert_eq!(read(&root, "a"), "touched");
    // After a failed step nothing is known: everything is unpacked again.
    stage.invalidate();
    stage
        .prepare(&store, std::slice::from_ref(&base))
        .expect("prepare");
    assert_eq!(read(&root, "a"), "base");
}

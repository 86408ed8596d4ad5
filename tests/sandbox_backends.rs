//! The `container` and `chroot` RUN backends end to end, with the built binary as their
//! helper: real busybox steps on a stage unpacked into a temporary directory (the container
//! backend's production root `/` is never used here), their changes written as layers.
//!
//! These tests need root (chroot, chown, device nodes) and fail saying so otherwise.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rust_image_action::build::LayerRecord;
use rust_image_action::layer::{Compression, EntryKind, LayerEntry, LayerWriter};
use rust_image_action::sandbox::rootdiff::{TreeSnapshot, diff, scan};
use rust_image_action::sandbox::{
    Backend, ChrootBackend, ContainerBackend, EtcFiles, Exit, MountSource, Network, RunMount,
    RunSpec, SandboxError, SelectOptions, Step, StepResult,
};
use rust_image_action::store::Store;

fn helper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rust-image-action"))
}

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the sandbox backend tests need root (chroot, chown, mknod); run them as root, as CI does"
    );
}

/// Writes `entries` as a layer into `store`: zstd, which in a debug build compresses the
/// busybox base several times faster than gzip.
fn layer(store: &Store, entries: &[LayerEntry]) -> LayerRecord {
    let mut writer = LayerWriter::new(store, Compression::Zstd).expect("layer writer");
    for entry in entries {
        writer.append(entry).expect("append entry");
    }
    let (layer, index) = writer.finish().expect("finish layer");
    LayerRecord::built(&layer, Arc::new(index))
}

/// The busybox root file system of the test support as one layer, its entries found by
/// diffing it against nothing.
fn busybox_layer(store: &Store) -> LayerRecord {
    let dir = tempfile::tempdir().expect("tempdir");
    support::rootfs::busybox_rootfs(dir.path());
    let after = scan(dir.path(), &[]).expect("scan rootfs");
    let entries = diff(&TreeSnapshot::default(), &after, dir.path(), None).expect("diff rootfs");
    layer(store, &entries)
}

fn spec(script: &str) -> RunSpec {
    RunSpec {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/usr/bin:/bin".into(), "HOME=/root".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        network: Network::Host,
        mounts: Vec::new(),
        etc: EtcFiles {
            hosts: "127.0.0.1 localhost\n".into(),
            resolv_conf: "nameserver 192.0.2.1\n".into(),
            hostname: "buildhost\n".into(),
        },
        hostname: "buildhost".into(),
    }
}

struct Ran {
    result: StepResult,
    output: Vec<String>,
}

fn run(
    backend: &mut dyn Backend,
    store: &Store,
    layers: &[LayerRecord],
    spec: &RunSpec,
) -> Result<Ran, SandboxError> {
    let mut output = Vec::new();
    let mut collect = |line: &str| output.push(line.to_string());
    let view = rust_image_action::layer::index::FsView::new(
        layers
            .iter()
            .map(|l| std::sync::Arc::clone(&l.index))
            .collect(),
    );
    let result = backend.run(Step {
        store,
        layers,
        view: &view,
        spec,
        epoch: None,
        output: &mut collect,
    })?;
    Ok(Ran { result, output })
}

fn describe(entries: &[LayerEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::File { size, .. } => format!("file {} {size} {:o}", e.path, e.mode),
            EntryKind::Dir => format!("dir {}", e.path),
            EntryKind::Whiteout => format!("whiteout {}", e.path),
            EntryKind::Symlink { target } => format!("symlink {} -> {target}", e.path),
            EntryKind::HardLink { target } => format!("link {} => {target}", e.path),
            other => format!("{other:?} {}", e.path),
        })
        .collect()
}

struct Fixture {
    tmp: tempfile::TempDir,
    store: Store,
    base: LayerRecord,
    root: PathBuf,
}

fn fixture() -> Fixture {
    require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let base = busybox_layer(&store);
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir root");
    Fixture {
        tmp,
        store,
        base,
        root,
    }
}

fn container(f: &Fixture) -> ContainerBackend {
    let options = SelectOptions {
        env: Some(Default::default()),
        ..SelectOptions::default()
    };
    ContainerBackend::with_root(&f.root, &f.store, &options)
        .expect("container backend on a temporary root")
        .with_helper(helper())
}

#[test]
fn container_step_changes_become_a_layer_the_next_step_builds_on() {
    let f = fixture();
    let mut backend = container(&f);
    let script = "echo hello; mkdir /made; echo data > /made/f; rm /etc/group; \
                  chmod 600 /etc/passwd; ln /made/f /made/g";
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec(script),
    )
    .expect("first step");
    assert_eq!(ran.result.exit, Exit::Code(0));
    assert_eq!(ran.output, ["hello"]);
    assert!(ran.result.keep.is_none());
    assert_eq!(
        describe(&ran.result.entries),
        [
            "dir etc",
            "whiteout etc/group",
            "file etc/passwd 120 600",
            "dir made",
            "file made/f 5 644",
            "link made/g => made/f",
        ]
    );
    let step_layer = layer(&f.store, &ran.result.entries);
    let layers = [f.base.clone(), step_layer];
    let ran = run(
        &mut backend,
        &f.store,
        &layers,
        &spec("cat /made/g; test ! -e /etc/group"),
    )
    .expect("second step");
    assert_eq!(ran.result.exit, Exit::Code(0), "{:?}", ran.output);
    assert_eq!(ran.output, ["data"]);
    assert_eq!(ran.result.entries, []);
}

#[test]
fn container_failed_step_reports_its_exit_and_output() {
    let f = fixture();
    let mut backend = container(&f);
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec("echo partial > /junk; echo oops >&2; exit 3"),
    )
    .expect("the step runs");
    assert_eq!(ran.result.exit, Exit::Code(3));
    assert_eq!(ran.result.tail, ["oops"]);
    assert_eq!(ran.result.entries, []);
    // The failed step's files are gone before the next step.
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec("test ! -e /junk"),
    )
    .expect("next step");
    assert_eq!(ran.result.exit, Exit::Code(0));
}

#[test]
fn missing_program_is_a_setup_error() {
    let f = fixture();
    let mut backend = container(&f);
    let mut spec = spec("");
    spec.args = vec!["no-such-program".into()];
    let error = match run(&mut backend, &f.store, std::slice::from_ref(&f.base), &spec) {
        Ok(ran) => panic!("ran: {:?} {:?}", ran.result.exit, ran.output),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("exec: `no-such-program`: executable file not found in $PATH"),
        "{error}"
    );
}

#[test]
fn missing_program_as_another_user_is_still_reported() {
    let f = fixture();
    let mut backend = container(&f);
    let mut spec = spec("");
    spec.args = vec!["/bin/nope".into()];
    spec.uid = 1000;
    spec.gid = 1000;
    let error = run(&mut backend, &f.store, std::slice::from_ref(&f.base), &spec)
        .err()
        .expect("must fail")
        .to_string();
    assert!(error.contains("exec: `/bin/nope`"), "{error}");
}

#[test]
fn step_runs_as_its_user_in_a_created_working_directory() {
    let f = fixture();
    let mut backend = container(&f);
    let mut spec = spec("id -u; id -g; pwd; echo x > mine");
    spec.uid = 1000;
    spec.gid = 1000;
    spec.cwd = "/home/app/work".into();
    let ran = run(&mut backend, &f.store, std::slice::from_ref(&f.base), &spec).expect("step");
    assert_eq!(ran.output, ["1000", "1000", "/home/app/work"]);
    let work = ran
        .result
        .entries
        .iter()
        .find(|e| e.path == "home/app/work/mine")
        .expect("the file is in the layer");
    assert_eq!((work.uid, work.gid), (1000, 1000));
}

#[test]
fn emulated_mounts_are_in_place_and_stay_out_of_the_layer() {
    let f = fixture();
    let mut backend = container(&f);
    let cache = f.store.temp_dir().expect("temp dir");
    fs::write(cache.path().join("kept"), "old").expect("write");
    let context = tempfile::tempdir().expect("tempdir");
    fs::write(context.path().join("input"), "from the context").expect("write");
    let mut spec = spec(
        "cat /cache/kept /ctx/input /run/secrets/token; echo; echo new > /cache/added; \
         echo t > /scratch/t; stat -c %a /run/secrets/token",
    );
    spec.mounts = vec![
        RunMount {
            target: "/cache".into(),
            source: MountSource::HostPath(cache.path().to_path_buf()),
            read_only: false,
        },
        RunMount {
            target: "/ctx".into(),
            source: MountSource::Scratch(context.path().to_path_buf()),
            read_only: true,
        },
        RunMount {
            target: "/run/secrets/token".into(),
            source: MountSource::Secret {
                bytes: b"s3cret".to_vec(),
                mode: 0o400,
                uid: 0,
                gid: 0,
            },
            read_only: true,
        },
        RunMount {
            target: "/scratch".into(),
            source: MountSource::Tmpfs { size: None },
            read_only: false,
        },
    ];
    let ran = run(&mut backend, &f.store, std::slice::from_ref(&f.base), &spec).expect("step");
    assert_eq!(ran.result.exit, Exit::Code(0), "{:?}", ran.output);
    assert_eq!(ran.output, ["oldfrom the contexts3cret", "400"]);
    assert_eq!(describe(&ran.result.entries), Vec::<String>::new());
    assert_eq!(
        fs::read_to_string(cache.path().join("added")).expect("cache"),
        "new\n"
    );
    for gone in ["cache", "ctx", "run", "scratch"] {
        assert!(!f.root.join(gone).exists(), "`/{gone}` is left behind");
    }
}

#[test]
fn engine_files_never_reach_the_layer() {
    let f = fixture();
    let mut backend = container(&f);
    let script = "echo 10.0.0.1 db > /etc/hosts; echo h > /etc/hostname; echo k > /etc/kept";
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec(script),
    )
    .expect("step");
    assert_eq!(
        describe(&ran.result.entries),
        ["dir etc", "file etc/kept 2 644"]
    );
}

#[test]
fn chroot_step_gets_devices_and_etc_files_for_its_duration() {
    let f = fixture();
    let mut backend = ChrootBackend::new(&f.store)
        .expect("chroot backend")
        .with_helper(helper());
    let script = "cat /etc/hostname; echo ignored > /dev/null; test -c /dev/zero && echo zero; \
                  grep -c localhost /etc/hosts";
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec(script),
    )
    .expect("step");
    assert_eq!(ran.result.exit, Exit::Code(0), "{:?}", ran.output);
    assert_eq!(ran.output, ["buildhost", "zero", "1"]);
    assert_eq!(describe(&ran.result.entries), Vec::<String>::new());
    let root = backend.root().to_path_buf();
    assert!(
        !root.join("dev/null").exists(),
        "the device nodes are removed after the step"
    );
    assert!(!root.join("etc/hostname").exists());
    assert_eq!(
        fs::metadata(root.join("bin/busybox")).expect("stat").mode() & 0o777,
        0o755
    );
}

#[test]
fn chroot_step_cannot_see_the_host() {
    let f = fixture();
    let mut backend = ChrootBackend::new(&f.store)
        .expect("chroot backend")
        .with_helper(helper());
    let marker = f.root.join("host-only");
    fs::write(&marker, "x").expect("write");
    let script = format!("test ! -e {}; test ! -e /proc/self", marker.display());
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec(&script),
    )
    .expect("step");
    assert_eq!(ran.result.exit, Exit::Code(0), "{:?}", ran.output);
}

#[test]
fn chroot_probe_succeeds_as_root() {
    let f = fixture();
    ChrootBackend::probe_with(&helper(), &f.store).expect("chroot is permitted as root");
}

#[test]
fn chroot_probe_of_something_else_is_refused() {
    let f = fixture();
    let error = ChrootBackend::probe_with(Path::new("/bin/true"), &f.store)
        .expect_err("`true` never chroots");
    assert!(error.contains("without reporting back"), "{error}");
}

#[test]
fn helper_entry_point_is_hidden_and_checks_its_mode() {
    let help = std::process::Command::new(helper())
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(help.status.success());
    assert!(!String::from_utf8_lossy(&help.stdout).contains("__sandbox"));
    let unknown = std::process::Command::new(helper())
        .args(["__sandbox", "no-such-mode"])
        .output()
        .expect("the binary runs");
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("unknown sandbox helper mode `no-such-mode`"),
        "{stderr}"
    );
}

#[test]
fn chroot_directory_follows_the_stage_across_steps() {
    let f = fixture();
    let mut backend = ChrootBackend::new(&f.store)
        .expect("chroot backend")
        .with_helper(helper());
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec("echo 1 > /made"),
    )
    .expect("first step");
    assert_eq!(describe(&ran.result.entries), ["file made 2 644"]);
    let layers = [f.base.clone(), layer(&f.store, &ran.result.entries)];
    let ran = run(&mut backend, &f.store, &layers, &spec("cat /made")).expect("second step");
    assert_eq!(ran.output, ["1"]);
    // Another stage on the same base: the first stage's file is gone.
    let ran = run(
        &mut backend,
        &f.store,
        std::slice::from_ref(&f.base),
        &spec("test ! -e /made"),
    )
    .expect("other stage");
    assert_eq!(ran.result.exit, Exit::Code(0));
}

/// Detaches a mount on drop, so a failing assertion leaves nothing mounted.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn container_keeps_the_engines_bind_mounted_files() {
    let f = fixture();
    // What an engine does: `/etc/hosts` bind-mounted from a file of its own.
    let engine = f.tmp.path().join("engine-hosts");
    fs::write(&engine, "10.1.2.3 engine\n").expect("write");
    fs::create_dir(f.root.join("etc")).expect("mkdir");
    fs::write(f.root.join("etc/hosts"), "").expect("mount point");
    rustix::mount::mount_bind(&engine, f.root.join("etc/hosts")).expect("bind mount");
    let _mounted = Mounted(f.root.join("etc/hosts"));
    // An Alpine-like base ships its own `etc/hosts`.
    let mut entries = vec![
        LayerEntry {
            path: "etc".into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: Default::default(),
        },
        LayerEntry {
            path: "etc/hosts".into(),
            kind: EntryKind::File {
                source: rust_image_action::layer::FileSource::Bytes(b"127.0.0.1 image\n".to_vec()),
                size: 16,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: Default::default(),
        },
    ];
    rust_image_action::layer::sort_entries(&mut entries);
    let hosts_layer = layer(&f.store, &entries);
    let mut backend = container(&f);
    let layers = [f.base.clone(), hosts_layer];
    let ran = run(
        &mut backend,
        &f.store,
        &layers,
        &spec("cat /etc/hosts; echo 10.9.9.9 x >> /etc/hosts"),
    )
    .expect("step");
    assert_eq!(ran.result.exit, Exit::Code(0), "{:?}", ran.output);
    assert_eq!(ran.output, ["10.1.2.3 engine"]);
    assert_eq!(describe(&ran.result.entries), Vec::<String>::new());
    assert_eq!(
        fs::read_to_string(&engine).expect("read"),
        "10.1.2.3 engine\n10.9.9.9 x\n"
    );
}

//! A bench for RUN tests: a registry holding one base image, a store shared by the bench's
//! builds, and each build's outputs (OCI layout, docker-archive, metadata file) read back as
//! layer entries with their xattrs, a merged file tree or an image run under podman. Also
//! the leak checks: processes, mounts and the store's `tmp/`.

#![allow(
    clippy::print_stderr,
    reason = "build durations are printed for the test log, never asserted"
)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::image::{PushedImage, push_rootfs_image};
use super::image_tree::{self, ImageTree};
use super::registry::Registry;
use super::tools::{Podman, run};

/// The binary under test.
const BINARY: &str = env!("CARGO_BIN_EXE_rust-image-action");

/// How long a killed build's step gets to disappear (its parent-death signal is delivered
/// asynchronously); a limit on waiting, not a measurement.
const VANISH_LIMIT: Duration = Duration::from_secs(20);

/// Panics unless the tests run as root: the namespace backend (and mknod, chown) needs it,
/// and CI runs them as root.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the RUN integration tests need root (the namespace backend mounts overlays); \
         CI runs them as root"
    );
}

/// A number unique within this process and unlikely to repeat across runs.
pub fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed) * 7919)
}

/// A new temporary work directory named `PREFIX-PID-NONCE`, all lowercase: podman derives an
/// image name from an `oci:` path, and names must be lowercase.
pub fn work_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-{}-{}", std::process::id(), nonce()))
        .rand_bytes(0)
        .tempdir()
        .unwrap_or_else(|e| panic!("failed to create a temporary directory: {e}"))
}

/// A registry with a base image and a work directory holding the store and the builds.
pub struct Bench {
    /// The registry serving the base (and anything else a test pushes).
    pub registry: Registry,
    /// The base image every `FROM BASE` names.
    pub base: PushedImage,
    /// Contexts, outputs and the store live here.
    pub work: TempDir,
    /// The content store (`--cache-dir`) of every build of this bench.
    pub store: PathBuf,
    /// Whether builds also write a docker-archive (`--tar`); without one, [`Build::tree`]
    /// is unavailable and [`Build::podman_run`] runs the OCI layout.
    pub write_tar: bool,
    builds: AtomicU64,
}

impl Bench {
    /// A bench whose base is the root `fill` makes in an empty directory.
    pub fn new(fill: impl FnOnce(&Path)) -> Bench {
        require_root();
        let registry = Registry::start_open();
        let work = work_dir("run-test");
        let rootfs = work.path().join("rootfs");
        fs::create_dir_all(&rootfs).expect("create the base root");
        fill(&rootfs);
        let base = push_rootfs_image(&registry, "test/base:1", &rootfs);
        Bench::with_base(registry, base, work)
    }

    /// A bench on an image already in `registry`.
    pub fn with_base(registry: Registry, base: PushedImage, work: TempDir) -> Bench {
        require_root();
        let store = work.path().join("store");
        Bench {
            registry,
            base,
            work,
            store,
            write_tar: true,
            builds: AtomicU64::new(0),
        }
    }

    /// Builds `dockerfile` (`FROM BASE` names the bench's base) in an empty context.
    pub fn build(&self, dockerfile: &str, args: &[&str]) -> Build {
        self.run_build(BuildInput {
            dockerfile,
            context_files: &[],
            args,
            env: &[],
            store: &self.store,
        })
    }

    /// Like [`Bench::build`] with another store.
    pub fn build_in(&self, store: &Path, dockerfile: &str, args: &[&str]) -> Build {
        self.run_build(BuildInput {
            dockerfile,
            context_files: &[],
            args,
            env: &[],
            store,
        })
    }

    /// Like [`Bench::build`] with extra environment variables for the builder.
    pub fn build_with_env(&self, dockerfile: &str, args: &[&str], env: &[(&str, &str)]) -> Build {
        self.run_build(BuildInput {
            dockerfile,
            context_files: &[],
            args,
            env,
            store: &self.store,
        })
    }

    /// Like [`Bench::build`] with files (path, content) in the context.
    pub fn build_context(
        &self,
        dockerfile: &str,
        context_files: &[(&str, &str)],
        args: &[&str],
    ) -> Build {
        self.run_build(BuildInput {
            dockerfile,
            context_files,
            args,
            env: &[],
            store: &self.store,
        })
    }

    fn run_build(&self, input: BuildInput<'_>) -> Build {
        let number = self.builds.fetch_add(1, Ordering::Relaxed);
        let dir = self.work.path().join(format!("build-{number}"));
        let context = dir.join("context");
        fs::create_dir_all(&context).expect("create the context");
        fs::write(
            context.join("Dockerfile"),
            self.dockerfile(input.dockerfile),
        )
        .expect("write the Dockerfile");
        for (path, text) in input.context_files {
            let path = context.join(path);
            fs::create_dir_all(path.parent().expect("a parent")).expect("create a directory");
            fs::write(&path, text).expect("write a context file");
        }
        let out = dir.join("oci");
        let tar = dir.join("image.tar");
        let metadata = dir.join("metadata.json");
        let mut command = self.command(&context, input.store);
        command
            .arg("--oci-layout")
            .arg(&out)
            .arg("--metadata-file")
            .arg(&metadata)
            .args(input.args);
        if self.write_tar {
            command.arg("--tar").arg(&tar);
        }
        for (key, value) in input.env {
            command.env(key, value);
        }
        let started = Instant::now();
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("failed to start `{BINARY}`: {e}"));
        let elapsed = started.elapsed();
        let build = Build {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            out,
            tar,
            metadata,
            context,
            elapsed,
        };
        eprintln!("build {number} took {elapsed:.2?} ({})", build.status);
        build
    }

    /// `rust-image-action build CONTEXT` on the namespace backend with the bench's store.
    fn command(&self, context: &Path, store: &Path) -> Command {
        let mut command = Command::new(BINARY);
        command
            .arg("build")
            .arg(context)
            .arg("--cache-dir")
            .arg(store)
            .arg("--isolation")
            .arg("namespace")
            .arg("--insecure-registry")
            .arg(self.registry.addr())
            // Each helper re-executes the builder's own image: a `cargo build` that replaces
            // the binary while a test runs must not break it (see
            // `a_binary_replaced_during_a_build_breaks_its_later_steps`).
            .env("RIA_SANDBOX_HELPER", "/proc/self/exe")
            .stdin(Stdio::null());
        command
    }

    /// Writes `dockerfile` into a new context `name` of the work directory; returns it.
    pub fn context(&self, name: &str, dockerfile: &str) -> PathBuf {
        let context = self.work.path().join(name).join("context");
        fs::create_dir_all(&context).expect("create the context");
        fs::write(context.join("Dockerfile"), self.dockerfile(dockerfile))
            .expect("write the Dockerfile");
        context
    }

    /// The Dockerfile with every `FROM BASE` naming the bench's base.
    fn dockerfile(&self, text: &str) -> String {
        text.lines()
            .map(|line| match line.strip_prefix("FROM BASE") {
                Some(rest) => format!("FROM {}{rest}\n", self.base.reference),
                None => format!("{line}\n"),
            })
            .collect()
    }

    /// Starts a build of `dockerfile`, waits until a process with `marker` as an argument
    /// runs, kills the builder with SIGKILL and waits for the step to vanish; returns how
    /// many entries the store's `tmp/` kept.
    pub fn build_and_kill(&self, dockerfile: &str, marker: &str) -> usize {
        let context = self.context("killed", dockerfile);
        let dir = context.parent().expect("a parent").to_path_buf();
        let mut child = self
            .command(&context, &self.store)
            .arg("--oci-layout")
            .arg(dir.join("oci"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start `{BINARY}`: {e}"));
        let deadline = Instant::now() + Duration::from_secs(120);
        while processes_with(marker).is_empty() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    pipe.read_to_string(&mut stderr).ok();
                }
                panic!("the build ended ({status}) before its step started:\n{stderr}");
            }
            assert!(Instant::now() < deadline, "the step never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().expect("kill the builder");
        child.wait().expect("reap the builder");
        let deadline = Instant::now() + VANISH_LIMIT;
        while !processes_with(marker).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        entries(&self.store.join("tmp")).len()
    }

    /// Asserts that no process runs `marker`, no mount names the bench's directory and the
    /// store's `tmp/` is empty.
    pub fn assert_clean(&self, marker: &str) {
        self.assert_no_process(marker);
        self.assert_no_mount();
        let left = entries(&self.store.join("tmp"));
        assert!(left.is_empty(), "the store's tmp/ keeps {left:?}");
    }

    /// Asserts that no process has `marker` as an argument.
    pub fn assert_no_process(&self, marker: &str) {
        let found = processes_with(marker);
        assert!(found.is_empty(), "processes left running: {found:?}");
    }

    /// Asserts that this process's mount table has no mount whose point, source or options
    /// name the bench's directory (overlays of the store's layers, binds of the context).
    pub fn assert_no_mount(&self) {
        let work = self.work.path().to_string_lossy().into_owned();
        let mounts = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
        let left: Vec<&str> = mounts.lines().filter(|line| line.contains(&work)).collect();
        assert!(left.is_empty(), "mounts left behind:\n{}", left.join("\n"));
    }
}

/// What [`Bench::run_build`] needs.
struct BuildInput<'a> {
    dockerfile: &'a str,
    context_files: &'a [(&'a str, &'a str)],
    args: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
    store: &'a Path,
}

/// One finished build and where its outputs are.
pub struct Build {
    /// The builder's exit status.
    pub status: ExitStatus,
    /// What it printed on stdout (the digest).
    pub stdout: String,
    /// Its log.
    pub stderr: String,
    /// The OCI layout.
    pub out: PathBuf,
    /// The docker-archive.
    pub tar: PathBuf,
    /// The metadata file.
    pub metadata: PathBuf,
    /// The build context.
    pub context: PathBuf,
    /// How long the build took (printed, never asserted).
    pub elapsed: Duration,
}

impl Build {
    /// Panics with the log unless the build succeeded.
    pub fn success(self) -> Build {
        assert!(
            self.status.success(),
            "the build failed ({}):\n{}",
            self.status,
            self.stderr
        );
        self
    }

    /// The image manifest of the OCI layout.
    pub fn manifest(&self) -> serde_json::Value {
        let index: serde_json::Value = json_file(&self.out.join("index.json"));
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .expect("a manifest in index.json");
        serde_json::from_slice(&self.blob(digest)).expect("the manifest is JSON")
    }

    /// The image config.
    pub fn config(&self) -> serde_json::Value {
        let manifest = self.manifest();
        let digest = manifest["config"]["digest"].as_str().expect("a config");
        serde_json::from_slice(&self.blob(digest)).expect("the config is JSON")
    }

    /// The bytes of blob `digest` of the OCI layout.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let path = self.out.join("blobs/sha256").join(hex);
        fs::read(&path).unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()))
    }

    /// Every layer's entries, lowest first.
    pub fn layers(&self) -> Vec<Vec<Entry>> {
        let manifest = self.manifest();
        manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|layer| {
                let digest = layer["digest"].as_str().expect("a layer digest");
                read_layer(&self.blob(digest))
            })
            .collect()
    }

    /// The last layer's entries by path (no leading `/` or `./`, no trailing `/`).
    pub fn last_layer(&self) -> BTreeMap<String, Entry> {
        let layers = self.layers();
        let last = layers.into_iter().last().expect("at least one layer");
        last.into_iter()
            .map(|entry| (entry.path.clone(), entry))
            .collect()
    }

    /// The merged tree of every layer, whiteouts applied, with contents.
    pub fn files(&self) -> Files {
        let mut files: BTreeMap<String, Entry> = BTreeMap::new();
        for layer in self.layers() {
            let mut added = Vec::new();
            for entry in layer {
                let (dir, name) = entry.path.rsplit_once('/').unwrap_or(("", &entry.path));
                let below = |root: &str, path: &str| {
                    root.is_empty() || path.starts_with(&format!("{root}/"))
                };
                if name == ".wh..wh..opq" {
                    files.retain(|path, _| !(below(dir, path) && path != dir));
                } else if let Some(hidden) = name.strip_prefix(".wh.") {
                    let hidden = if dir.is_empty() {
                        hidden.to_string()
                    } else {
                        format!("{dir}/{hidden}")
                    };
                    files.retain(|path, _| *path != hidden && !below(&hidden, path));
                } else {
                    added.push(entry);
                }
            }
            for entry in added {
                if entry.kind != LayerKind::Dir {
                    let path = entry.path.clone();
                    files.retain(|other, _| !other.starts_with(&format!("{path}/")));
                }
                files.insert(entry.path.clone(), entry);
            }
        }
        Files(files)
    }

    /// The docker-archive read as a runtime would merge it.
    pub fn tree(&self) -> ImageTree {
        ImageTree::from_docker_archive(&self.tar).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `args` in the built image under podman (loaded from the docker-archive, no
    /// network); returns its stdout.
    pub fn podman_run(&self, args: &[&str]) -> String {
        if self.tar.exists() {
            return podman_run_archive(&self.tar, args);
        }
        let podman = Podman::new();
        let output = run(podman
            .command()
            .args(["run", "--rm", "--network=none"])
            .arg(format!("oci:{}", self.out.display()))
            .args(args));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// Loads a docker-archive into a private podman store and runs `args` (or the image's own
/// command when `args` is empty) with no network; returns its stdout.
pub fn podman_run_archive(tar: &Path, args: &[&str]) -> String {
    let podman = Podman::new();
    let loaded = run(podman.command().arg("load").arg("--input").arg(tar));
    let text = String::from_utf8_lossy(&loaded.stdout).into_owned();
    let image = text
        .lines()
        .find_map(|line| line.strip_prefix("Loaded image: "))
        .or_else(|| {
            text.lines()
                .find_map(|line| line.strip_prefix("Loaded image(s): "))
        })
        .unwrap_or_else(|| panic!("podman load named no image:\n{text}"))
        .trim()
        .to_string();
    let output = run(podman
        .command()
        .args(["run", "--rm", "--network=none", &image])
        .args(args));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The merged files of an image by path.
pub struct Files(pub BTreeMap<String, Entry>);

impl Files {
    /// The content of the file at `path` as text; panics when it is missing.
    pub fn text(&self, path: &str) -> String {
        let entry = self
            .0
            .get(path)
            .unwrap_or_else(|| panic!("`{path}` is not in the image; it has {:?}", self.0.keys()));
        String::from_utf8_lossy(&entry.data).into_owned()
    }
}

/// The kind of a layer entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry.
    HardLink,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A named pipe.
    Fifo,
}

/// One member of a layer tarball.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The path, normalized (`data/x`).
    pub path: String,
    /// What it is.
    pub kind: LayerKind,
    /// `mode & 0o7777`.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Symlink or hard link target, normalized for hard links.
    pub link: String,
    /// Device numbers.
    pub device: (u32, u32),
    /// File content.
    pub data: Vec<u8>,
    /// Extended attributes from PAX `SCHILY.xattr.` records.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Reads a (compressed) layer blob with the `tar` crate, keeping PAX xattrs.
pub fn read_layer(blob: &[u8]) -> Vec<Entry> {
    let bytes = image_tree::decompress(blob).unwrap_or_else(|e| panic!("{e}"));
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut entries = Vec::new();
    for entry in archive.entries().expect("a tar stream") {
        let mut entry = entry.expect("a tar member");
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => LayerKind::File,
            tar::EntryType::Directory => LayerKind::Dir,
            tar::EntryType::Symlink => LayerKind::Symlink,
            tar::EntryType::Link => LayerKind::HardLink,
            tar::EntryType::Char => LayerKind::Char,
            tar::EntryType::Block => LayerKind::Block,
            tar::EntryType::Fifo => LayerKind::Fifo,
            other => panic!("unexpected tar member type {other:?}"),
        };
        let mut xattrs = BTreeMap::new();
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for extension in extensions.flatten() {
                if let Ok(key) = extension.key()
                    && let Some(name) = key.strip_prefix("SCHILY.xattr.")
                {
                    xattrs.insert(name.to_string(), extension.value_bytes().to_vec());
                }
            }
        }
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let link = if kind == LayerKind::HardLink {
            normalize(&link)
        } else {
            link
        };
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read a member");
        entries.push(Entry {
            path,
            kind,
            mode: header.mode().unwrap_or(0) & 0o7777,
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            link,
            device: (
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0),
            ),
            data,
            xattrs,
        });
    }
    entries
}

fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn json_file(path: &Path) -> serde_json::Value {
    let bytes =
        fs::read(path).unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("`{}`: {e}", path.display()))
}

/// The names in `dir` (empty when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|listing| {
            listing
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Each entry of `dir` and of its subdirectories one level down, with its inode and
/// modification time: a layer extracted again shows up as a new inode or time.
pub fn entry_times(dir: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    for name in entries(dir) {
        let path = dir.join(&name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        out.insert(name.clone(), (meta.ino(), meta.mtime(), meta.mtime_nsec()));
        if meta.is_dir() {
            for inner in entries(&path) {
                if let Ok(meta) = fs::symlink_metadata(path.join(&inner)) {
                    out.insert(
                        format!("{name}/{inner}"),
                        (meta.ino(), meta.mtime(), meta.mtime_nsec()),
                    );
                }
            }
        }
    }
    out
}

/// The processes (pid and command line) with `marker` as one of their arguments.
pub fn processes_with(marker: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for pid in entries(Path::new("/proc")) {
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, shown));
        }
    }
    found
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `needle` occurs in `bytes` or, when they are gzip or zstd, in what they
/// decompress to.
fn holds(bytes: &[u8], needle: &[u8]) -> bool {
    if contains(bytes, needle) {
        return true;
    }
    let compressed =
        bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    compressed && image_tree::decompress(bytes).is_ok_and(|plain| contains(&plain, needle))
}

/// Every regular file below `dir` (symlinks not followed) holding `needle`, plainly or
/// compressed.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(listing) = fs::read_dir(&path) {
                pending.extend(listing.flatten().map(|entry| entry.path()));
            }
        } else if meta.is_file()
            && let Ok(bytes) = fs::read(&path)
            && holds(&bytes, needle)
        {
            found.push(path);
        }
    }
    found
}

/// The members of a docker-archive (and of the layer tarballs inside it) holding `needle`.
pub fn archive_members_containing(archive: &[u8], needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    if contains(archive, needle) {
        found.push("(the archive itself)".to_string());
    }
    let plain = image_tree::decompress(archive).unwrap_or_else(|e| panic!("{e}"));
    let mut outer = tar::Archive::new(plain.as_slice());
    for member in outer.entries().expect("a tar stream") {
        let mut member = member.expect("a tar member");
        let name = String::from_utf8_lossy(&member.path_bytes()).into_owned();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).expect("read a member");
        if holds(&bytes, needle) {
            found.push(name);
        }
    }
    found
}

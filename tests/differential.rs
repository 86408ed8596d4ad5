//! Differential tests: every case under `tests/data/differential/<NN-name>/` is built
//! by our builder and by the reference builder (Docker Engine 20.10 with BuildKit,
//! started privately by the tests), and the two images must agree on their runtime
//! config and on every path's kind, mode, owner, size, content and link target.
//!
//! A case directory holds a `Dockerfile` and its context. An optional `case.json`
//! (see [`CaseSpec`]) adds build arguments, a target, extra build contexts, context
//! set-up the repository cannot store (empty directories, modes, symlinks), an
//! expected failure, an equivalent Dockerfile for the reference when Docker 20.10's
//! frontend lacks a feature, or the exact differences tolerated and why.
//!
//! Every case's Dockerfile starts `ARG BASE` / `FROM ${BASE}`; the harness passes
//! `BASE` (a busybox image in a test registry), `TOOLS` (a small image with files
//! owned by a non-root user, an inherited `ENV` and `CMD`), `ONBUILD_BASE` (an image
//! with ONBUILD triggers) and `HTTP` (`127.0.0.1:PORT` of a file server started by
//! the test) to both builders. Where a value cannot come from a build argument
//! (Docker 20.10 does not expand `COPY --from=$X`), the Dockerfile says `@REGISTRY@`
//! or `@HTTP@` and the harness substitutes it before either builder reads the file.

#![allow(
    clippy::print_stdout,
    reason = "the per-case summary lines are the report of the differential run"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use support::image_tree::{self, FileInfo, Ignore, ImageTree};
use support::reference::{DockerDaemon, ReferenceBuild};

const INSTALL_HINT: &str = "install the test dependencies with scripts/install-test-deps";
const OUR_BINARY: &str = env!("CARGO_BIN_EXE_rust-image-action");

// ---------------------------------------------------------------------------
// Temporary directories

/// A directory removed (with everything in it) on drop.
struct TempDir(PathBuf);

static TEMP_SERIAL: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "ria-differential-{label}-{}-{}",
            std::process::id(),
            TEMP_SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 file server for ADD <url>

/// Serves the files of one directory on `127.0.0.1:PORT`, each with a fixed
/// `Last-Modified`. `GET /named/<file>` serves `<file>` with a
/// `Content-Disposition` naming it `named-<file>`.
struct FileServer {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

impl FileServer {
    fn start(root: PathBuf) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test file server");
        let addr = listener
            .local_addr()
            .expect("file server address")
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = serve_one(stream, &root);
                }
            }
        });
        FileServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop so it sees the flag
        let _ = TcpStream::connect(&self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers the requests of one connection (keep-alive until the client closes).
fn serve_one(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let target = parts.next().unwrap_or("/");
        let path = target.split(['?', '#']).next().unwrap_or("/");
        let (file, disposition) = match path.strip_prefix("/named/") {
            Some(name) => (name, Some(format!("named-{name}"))),
            None => (path.trim_start_matches('/'), None),
        };
        let body = if file.is_empty() || file.contains("..") {
            None
        } else {
            std::fs::read(root.join(file)).ok()
        };
        let mut head = String::new();
        let body = match body {
            Some(body) => {
                head.push_str("HTTP/1.1 200 OK\r\n");
                head.push_str(&format!("Last-Modified: {LAST_MODIFIED}\r\n"));
                head.push_str("Content-Type: application/octet-stream\r\n");
                if let Some(name) = disposition {
                    head.push_str(&format!(
                        "Content-Disposition: attachment; filename=\"{name}\"\r\n"
                    ));
                }
                body
            }
            None => {
                head.push_str("HTTP/1.1 404 Not Found\r\n");
                b"not found\n".to_vec()
            }
        };
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        if method != "HEAD" {
            writer.write_all(&body)?;
        }
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

#[test]
fn file_server_serves_files_with_last_modified() {
    let dir = TempDir::new("http");
    std::fs::write(dir.path().join("f.txt"), b"content\n").expect("write served file");
    let server = FileServer::start(dir.path().to_path_buf());
    let fetch = |target: &str| {
        let mut s = TcpStream::connect(&server.addr).expect("connect to file server");
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read response");
        text
    };
    let ok = fetch("/f.txt?v=1");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains(LAST_MODIFIED), "{ok}");
    assert!(ok.ends_with("\r\n\r\ncontent\n"), "{ok}");
    let named = fetch("/named/f.txt");
    assert!(named.contains("filename=\"named-f.txt\""), "{named}");
    let missing = fetch("/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

// ---------------------------------------------------------------------------
// Cases

/// `case.json`: everything optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    /// Extra `--build-arg`s (override the harness's own).
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    /// `--target`.
    #[serde(default)]
    target: Option<String>,
    /// `--build-context NAME=DIR` for our builder, DIR relative to the case.
    #[serde(default)]
    build_contexts: BTreeMap<String, String>,
    /// Both builders must fail, each printing this (case-insensitive).
    #[serde(default)]
    expect_error: Option<String>,
    /// The reference's failure text when it words the error differently.
    #[serde(default)]
    reference_expect_error: Option<String>,
    /// Only our builder runs (allowed with `expect_error` only); the reason.
    #[serde(default)]
    our_side_only: Option<String>,
    /// The reference builds this file of the case instead, because Docker 20.10's
    /// frontend lacks a feature; it must mean the same image.
    #[serde(default)]
    reference_dockerfile: Option<String>,
    /// Why `reference_dockerfile` is needed (required with it).
    #[serde(default)]
    reference_note: Option<String>,
    /// The exact differences tolerated, and why.
    #[serde(default)]
    known_difference: Option<KnownDifference>,
    /// Context set-up: directories to create (git keeps no empty directory).
    #[serde(default)]
    mkdirs: Vec<String>,
    /// Context set-up: symlinks to create, link path → target.
    #[serde(default)]
    symlinks: BTreeMap<String, String>,
    /// Context set-up: octal modes to set, path → mode (after `mkdirs`/`symlinks`).
    #[serde(default)]
    modes: BTreeMap<String, String>,
    /// Paths both images must have, path → `"KIND MODE UID:GID"` (e.g.
    /// `"file 0644 0:0"`), so that the builders cannot agree on a wrong result.
    #[serde(default)]
    expect_paths: BTreeMap<String, String>,
    /// Paths both images must not have.
    #[serde(default)]
    expect_absent: Vec<String>,
    /// Config values both images must have, key → JSON value.
    #[serde(default)]
    expect_config: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownDifference {
    reason: String,
    differences: Vec<String>,
}

struct Case {
    name: String,
    dir: PathBuf,
    spec: CaseSpec,
}

fn cases_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/differential")
}

/// Case directories are `NN-name`; anything else (`_http`) is support data.
fn load_cases() -> Vec<Case> {
    let root = cases_root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.len() > 3
                        && n.as_bytes()[..2].iter().all(u8::is_ascii_digit)
                        && n.as_bytes()[2] == b'-'
                })
        })
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let spec_path = dir.join("case.json");
            let spec: CaseSpec = if spec_path.exists() {
                let text = std::fs::read_to_string(&spec_path)
                    .unwrap_or_else(|e| panic!("case {name}: cannot read case.json: {e}"));
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("case {name}: bad case.json: {e}"))
            } else {
                CaseSpec::default()
            };
            assert!(
                dir.join("Dockerfile").is_file(),
                "case {name}: no Dockerfile"
            );
            assert!(
                spec.our_side_only.is_none() || spec.expect_error.is_some(),
                "case {name}: our_side_only is only for expected failures; give a \
                 reference_dockerfile instead"
            );
            assert!(
                spec.reference_dockerfile.is_none() || spec.reference_note.is_some(),
                "case {name}: reference_dockerfile needs a reference_note saying why"
            );
            Case { name, dir, spec }
        })
        .collect()
}

/// Files of a case directory that are not part of its build context.
fn is_case_metadata(name: &str) -> bool {
    name == "case.json" || name.ends_with(".reference")
}

/// Copies a case's context to `dest` with deterministic modes (0755 for
/// directories and executables, 0644 for other files: a checkout keeps only the
/// executable bit), keeping symlinks as symlinks and substituting `@REGISTRY@` and
/// `@HTTP@` in Dockerfiles.
fn copy_context(src: &Path, dest: &Path, subst: &Substitutions, top: bool) {
    std::fs::create_dir_all(dest)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dest.display()));
    set_mode(dest, 0o755);
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", src.display()))
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if top && is_case_metadata(&name_str) {
            continue;
        }
        let from = entry.path();
        let to = dest.join(&name);
        let meta = std::fs::symlink_metadata(&from)
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", from.display()));
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&from)
                .unwrap_or_else(|e| panic!("cannot read link {}: {e}", from.display()));
            std::os::unix::fs::symlink(&target, &to)
                .unwrap_or_else(|e| panic!("cannot create link {}: {e}", to.display()));
        } else if meta.is_dir() {
            copy_context(&from, &to, subst, false);
        } else {
            let bytes = std::fs::read(&from)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
            let bytes = if name_str.contains("Dockerfile") {
                subst.apply(&String::from_utf8_lossy(&bytes)).into_bytes()
            } else {
                bytes
            };
            std::fs::write(&to, bytes)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", to.display()));
            let exec = meta.permissions().mode() & 0o111 != 0;
            set_mode(&to, if exec { 0o755 } else { 0o644 });
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

struct Substitutions {
    registry: String,
    http: String,
}

impl Substitutions {
    fn apply(&self, text: &str) -> String {
        text.replace("@REGISTRY@", &self.registry)
            .replace("@HTTP@", &self.http)
    }
}

/// Applies `mkdirs`, `symlinks` and `modes` of a case to its copied context.
fn set_up_context(case: &Case, context: &Path) {
    for dir in &case.spec.mkdirs {
        let path = context.join(dir);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("case {}: cannot create {dir}: {e}", case.name));
        set_mode(&path, 0o755);
    }
    for (link, target) in &case.spec.symlinks {
        let path = context.join(link);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| {
                panic!(
                    "case {}: cannot create {}: {e}",
                    case.name,
                    parent.display()
                )
            });
        }
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path)
            .unwrap_or_else(|e| panic!("case {}: cannot create link {link}: {e}", case.name));
    }
    for (path, mode) in &case.spec.modes {
        let mode = u32::from_str_radix(mode, 8)
            .unwrap_or_else(|_| panic!("case {}: mode {mode:?} is not octal", case.name));
        set_mode(&context.join(path), mode);
    }
}

// ---------------------------------------------------------------------------
// The shared environment: registry with base images, file server, daemon

struct Environment {
    daemon: Arc<DockerDaemon>,
    registry: support::Registry,
    /// Kept alive for the cases' ADD <url>.
    _http: FileServer,
    args: BTreeMap<String, String>,
    subst: Substitutions,
    _scratch: TempDir,
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                      app:x:1000:1000:app:/home/app:/bin/sh\n\
                      builder:x:1001:100:builder:/home/builder:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\n\
                     daemon:x:1:\n\
                     staff:x:50:\n\
                     users:x:100:\n\
                     app:x:1000:\n\
                     nogroup:x:65534:\n";

/// Makes the busybox rootfs the cases rely on: known users and groups and a
/// `/var/run -> /run` symlink, whatever `busybox_rootfs` itself provides.
fn prepare_base_rootfs(rootfs: &Path) {
    support::busybox_rootfs(rootfs);
    std::fs::create_dir_all(rootfs.join("etc")).expect("create rootfs /etc");
    std::fs::write(rootfs.join("etc/passwd"), PASSWD).expect("write rootfs /etc/passwd");
    std::fs::write(rootfs.join("etc/group"), GROUP).expect("write rootfs /etc/group");
    for dir in ["run", "var", "tmp", "srv/existing"] {
        std::fs::create_dir_all(rootfs.join(dir)).expect("create rootfs directory");
    }
    let var_run = rootfs.join("var/run");
    if std::fs::symlink_metadata(&var_run).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(&var_run).expect("remove rootfs /var/run");
    } else {
        let _ = std::fs::remove_file(&var_run);
    }
    std::os::unix::fs::symlink("/run", &var_run).expect("link rootfs /var/run -> /run");
}

/// The tools image: built by the reference daemon and pushed, so both builders pull
/// the same bytes.
const TOOLS_DOCKERFILE: &str = "ARG BASE\n\
FROM ${BASE}\n\
COPY --chown=1000:1000 tools/ /opt/tools/\n\
COPY --chown=1000:50 --chmod=0750 tools/bin/tool /opt/tools/bin/tool\n\
COPY --chown=0:50 --chmod=0640 secret.conf /opt/tools/etc/secret.conf\n\
ENV TOOLS_HOME=/opt/tools GREETING=hello PATH=/opt/tools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
CMD [\"tool\", \"--help\"]\n\
LABEL org.example.tools=1 org.example.keep=inherited\n\
WORKDIR /opt/tools\n";

/// The image with triggers, for the ONBUILD case.
const ONBUILD_DOCKERFILE: &str = "ARG BASE\n\
FROM ${BASE}\n\
LABEL org.example.onbuild=parent\n\
ONBUILD COPY trigger.txt /onbuild/trigger.txt\n\
ONBUILD ENV TRIGGERED=yes\n\
ONBUILD LABEL org.example.triggered=yes\n\
ONBUILD WORKDIR /onbuild\n";

impl Environment {
    fn start() -> Environment {
        let daemon = DockerDaemon::shared();
        let registry = support::Registry::start_open();
        let addr = registry.addr().to_string();
        let scratch = TempDir::new("env");
        let rootfs = scratch.path().join("busybox");
        std::fs::create_dir_all(&rootfs).expect("create busybox rootfs directory");
        prepare_base_rootfs(&rootfs);
        support::push_rootfs_image(&registry, "busybox:latest", &rootfs);
        let base = format!("{addr}/busybox:latest");

        let tools_ctx = scratch.path().join("tools-context");
        for (path, content, mode) in [
            ("tools/bin/tool", "#!/bin/sh\necho tool \"$@\"\n", 0o755),
            ("tools/share/readme.txt", "tools readme\n", 0o644),
            ("tools/share/doc/notes.md", "# notes\n", 0o644),
            ("secret.conf", "secret=1\n", 0o644),
        ] {
            let file = tools_ctx.join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("create tools dir");
            std::fs::write(&file, content).expect("write tools file");
            set_mode(&file, mode);
        }
        std::os::unix::fs::symlink("share/readme.txt", tools_ctx.join("tools/README"))
            .expect("tools symlink");
        std::fs::write(tools_ctx.join("Dockerfile"), TOOLS_DOCKERFILE).expect("tools Dockerfile");
        let tools = format!("{addr}/tools:1");
        Self::build_and_push(&daemon, &tools_ctx, &tools, &base);

        let onbuild_ctx = scratch.path().join("onbuild-context");
        std::fs::create_dir_all(&onbuild_ctx).expect("create onbuild context");
        std::fs::write(onbuild_ctx.join("Dockerfile"), ONBUILD_DOCKERFILE)
            .expect("onbuild Dockerfile");
        let onbuild = format!("{addr}/onbuild:1");
        Self::build_and_push(&daemon, &onbuild_ctx, &onbuild, &base);

        let http = FileServer::start(cases_root().join("_http"));
        let args = BTreeMap::from([
            ("BASE".to_owned(), base),
            ("REGISTRY".to_owned(), addr.clone()),
            ("TOOLS".to_owned(), tools),
            ("ONBUILD_BASE".to_owned(), onbuild),
            ("HTTP".to_owned(), http.addr.clone()),
        ]);
        let subst = Substitutions {
            registry: addr,
            http: http.addr.clone(),
        };
        Environment {
            daemon,
            registry,
            _http: http,
            args,
            subst,
            _scratch: scratch,
        }
    }

    fn build_and_push(daemon: &DockerDaemon, context: &Path, tag: &str, base: &str) {
        let build = ReferenceBuild {
            context: context.to_path_buf(),
            dockerfile: context.join("Dockerfile"),
            tag: tag.to_owned(),
            build_args: BTreeMap::from([("BASE".to_owned(), base.to_owned())]),
            target: None,
        };
        if let Err(e) = daemon.build(&build) {
            panic!("cannot build the test image {tag} with the reference builder: {e}");
        }
        if let Err(e) = daemon.push(tag) {
            panic!("cannot push the test image {tag}: {e}");
        }
        // later builds must pull it from the registry, as our builder does
        daemon.remove_image(tag);
    }
}

// ---------------------------------------------------------------------------
// Running one case

/// What one builder did with a case.
enum Built {
    Image(Box<ImageTree>),
    Failed(String),
}

fn build_ours(
    case: &Case,
    env: &Environment,
    context: &Path,
    work: &Path,
    args: &BTreeMap<String, String>,
) -> Built {
    let out = work.join("ours.tar");
    let cache = work.join("ours-cache");
    let mut cmd = Command::new(OUR_BINARY);
    cmd.arg("build")
        .arg(context)
        .arg("-f")
        .arg(context.join("Dockerfile"))
        .arg("-t")
        .arg(format!("differential/{}:ours", case.name))
        .arg("--tar")
        .arg(&out)
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--insecure-registry")
        .arg(env.registry.addr());
    for (k, v) in args {
        cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    if let Some(target) = &case.spec.target {
        cmd.arg("--target").arg(target);
    }
    for (name, dir) in &case.spec.build_contexts {
        cmd.arg("--build-context")
            .arg(format!("{name}={}", context.join(dir).display()));
    }
    cmd.stdin(Stdio::null());
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => return Built::Failed(format!("cannot run {OUR_BINARY}: {e}")),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        return Built::Failed(format!("our builder failed ({}):\n{text}", output.status));
    }
    let digest = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !is_digest(&digest) {
        return Built::Failed(format!(
            "our builder succeeded but did not print a digest on stdout: {digest:?}"
        ));
    }
    match ImageTree::from_docker_archive(&out) {
        Ok(tree) => Built::Image(Box::new(tree)),
        Err(e) => Built::Failed(format!("cannot read our --tar output: {e}")),
    }
}

fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn build_reference(
    case: &Case,
    env: &Environment,
    context: &Path,
    work: &Path,
    args: &BTreeMap<String, String>,
) -> Built {
    let dockerfile = match &case.spec.reference_dockerfile {
        Some(file) => {
            let text = std::fs::read_to_string(case.dir.join(file))
                .unwrap_or_else(|e| panic!("case {}: cannot read {file}: {e}", case.name));
            let path = work.join("reference-dockerfile").join("Dockerfile");
            std::fs::create_dir_all(path.parent().expect("parent"))
                .expect("create reference Dockerfile directory");
            std::fs::write(&path, env.subst.apply(&text)).expect("write reference Dockerfile");
            path
        }
        None => context.join("Dockerfile"),
    };
    let tag = format!("differential/{}:reference", case.name);
    let build = ReferenceBuild {
        context: context.to_path_buf(),
        dockerfile,
        tag: tag.clone(),
        build_args: args.clone(),
        target: case.spec.target.clone(),
    };
    let out = work.join("reference.tar");
    let result = env.daemon.build_and_save(&build, &out);
    env.daemon.remove_image(&tag);
    match result {
        Err(e) => Built::Failed(e.to_string()),
        Ok(()) => match ImageTree::from_docker_archive(&out) {
            Ok(tree) => Built::Image(Box::new(tree)),
            Err(e) => Built::Failed(format!("cannot read the reference's docker save: {e}")),
        },
    }
}

/// Checks `expect_paths`, `expect_absent` and `expect_config` on one image.
fn check_expectations(spec: &CaseSpec, side: &str, tree: &ImageTree) -> Vec<String> {
    let mut out = Vec::new();
    for (path, want) in &spec.expect_paths {
        match tree.file(path) {
            None => out.push(format!("{side}: expected {path} ({want}), it is missing")),
            Some(info) => {
                let got = describe(info);
                if &got != want {
                    out.push(format!("{side}: expected {path} to be {want}, it is {got}"));
                }
            }
        }
    }
    for path in &spec.expect_absent {
        if tree.file(path).is_some() {
            out.push(format!("{side}: expected {path} to be absent, it exists"));
        }
    }
    for (key, want) in &spec.expect_config {
        let got = tree.config_value(key);
        if got.as_ref() != Some(want) {
            out.push(format!(
                "{side}: expected config {key}={want}, it is {}",
                got.map_or_else(|| "(none)".to_owned(), |v| v.to_string())
            ));
        }
    }
    out
}

/// `"KIND MODE UID:GID"` as in `expect_paths`.
fn describe(info: &FileInfo) -> String {
    format!("{} {:04o} {}:{}", info.kind, info.mode, info.uid, info.gid)
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Runs one case; `Ok` carries the summary, `Err` every problem found.
fn run_case(case: &Case, env: &Environment) -> Result<String, Vec<String>> {
    let work = TempDir::new(&case.name);
    let context = work.path().join("context");
    copy_context(&case.dir, &context, &env.subst, true);
    set_up_context(case, &context);
    let mut args = env.args.clone();
    args.extend(case.spec.build_args.clone());

    if let Some(expected) = &case.spec.expect_error {
        let mut problems = Vec::new();
        match build_ours(case, env, &context, work.path(), &args) {
            Built::Image(_) => problems.push(format!(
                "our builder succeeded, expected it to fail with {expected:?}"
            )),
            Built::Failed(text) if !contains_ci(&text, expected) => problems.push(format!(
                "our builder failed without {expected:?} in its output:\n{text}"
            )),
            Built::Failed(_) => {}
        }
        if case.spec.our_side_only.is_none() {
            let wanted = case
                .spec
                .reference_expect_error
                .as_deref()
                .unwrap_or(expected);
            match build_reference(case, env, &context, work.path(), &args) {
                Built::Image(_) => problems.push(format!(
                    "the reference succeeded, expected it to fail with {wanted:?} \
                     (the case is wrong)"
                )),
                Built::Failed(text) if !contains_ci(&text, wanted) => problems.push(format!(
                    "the reference failed without {wanted:?} in its output:\n{text}"
                )),
                Built::Failed(_) => {}
            }
        }
        return if problems.is_empty() {
            Ok(format!("both failed as expected ({expected:?})"))
        } else {
            Err(problems)
        };
    }

    let reference = build_reference(case, env, &context, work.path(), &args);
    let ours = build_ours(case, env, &context, work.path(), &args);
    let (ours, reference) = match (ours, reference) {
        (Built::Image(o), Built::Image(r)) => (o, r),
        (o, r) => {
            let mut problems = Vec::new();
            if let Built::Failed(text) = r {
                problems.push(format!("reference build failed: {text}"));
            }
            if let Built::Failed(text) = o {
                problems.push(text);
            }
            return Err(problems);
        }
    };
    let mut problems = check_expectations(&case.spec, "reference", &reference);
    problems.extend(check_expectations(&case.spec, "ours", &ours));
    let differences = image_tree::compare(&ours, &reference, &Ignore::default());
    match &case.spec.known_difference {
        None => problems.extend(differences.iter().cloned()),
        Some(known) => {
            let got: BTreeSet<&String> = differences.iter().collect();
            let want: BTreeSet<&String> = known.differences.iter().collect();
            for d in got.difference(&want) {
                problems.push((*d).clone());
            }
            for d in want.difference(&got) {
                problems.push(format!(
                    "declared known difference did not occur (update case.json): {d}"
                ));
            }
        }
    }
    if problems.is_empty() {
        let note = match (&case.spec.known_difference, &case.spec.reference_note) {
            (Some(k), _) => format!(", known difference: {}", k.reason),
            (None, Some(n)) => format!(", reference built an equivalent Dockerfile: {n}"),
            (None, None) => String::new(),
        };
        Ok(format!(
            "identical ({} paths, config equal{note})",
            reference.files.len()
        ))
    } else {
        Err(problems)
    }
}

#[test]
fn differential_cases_match_reference_builder() {
    let cases = load_cases();
    assert!(
        cases.len() >= 45,
        "expected at least 45 differential cases, found {}",
        cases.len()
    );
    // RIA_DIFFERENTIAL_CASES=12,copy-chmod runs only the cases whose names contain
    // one of the comma-separated parts (for working on a few cases)
    let only: Vec<String> = std::env::var("RIA_DIFFERENTIAL_CASES")
        .map(|v| {
            v.split(',')
                .map(str::to_owned)
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| c.name.contains(p.as_str())))
        .collect();
    assert!(
        !cases.is_empty(),
        "RIA_DIFFERENTIAL_CASES={only:?} selects no case"
    );
    let env = Environment::start();
    let mut failures = Vec::new();
    for case in &cases {
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case, &env)));
        match result {
            Ok(Ok(summary)) => println!("differential {}: ok, {summary}", case.name),
            Ok(Err(problems)) => {
                println!(
                    "differential {}: FAILED, {} problem(s)",
                    case.name,
                    problems.len()
                );
                failures.push((case.name.clone(), problems));
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic".to_owned());
                println!("differential {}: FAILED, harness panic", case.name);
                failures.push((case.name.clone(), vec![format!("harness panic: {message}")]));
            }
        }
    }
    println!(
        "differential: {} of {} cases identical or as declared",
        cases.len() - failures.len(),
        cases.len()
    );
    if !failures.is_empty() {
        let report: Vec<String> = failures
            .iter()
            .map(|(name, problems)| format!("case {name}:\n  {}", problems.join("\n  ")))
            .collect();
        panic!(
            "{} of {} differential cases failed:\n{}",
            failures.len(),
            cases.len(),
            report.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// The comparison itself must see differences

fn file(kind: &'static str, mode: u32, content: Option<&[u8]>) -> FileInfo {
    FileInfo {
        kind,
        mode,
        uid: 0,
        gid: 0,
        size: content.map_or(0, |c| c.len() as u64),
        sha256: content.map(image_tree::sha256_hex),
        link_target: None,
        device: None,
    }
}

#[test]
fn sha256_matches_known_vectors() {
    assert_eq!(
        image_tree::sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        image_tree::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        image_tree::sha256_hex(&[b'a'; 1_000]),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
}

#[test]
fn compare_reports_every_kind_of_difference() {
    let base = ImageTree {
        config: serde_json::json!({"Env": ["A=1"], "Cmd": null, "Labels": {}}),
        author: None,
        files: BTreeMap::from([
            ("etc".to_owned(), file("dir", 0o755, None)),
            ("etc/a".to_owned(), file("file", 0o644, Some(b"a"))),
        ]),
    };
    let same = ImageTree {
        config: serde_json::json!({"Env": ["A=1"]}),
        ..base.clone()
    };
    assert_eq!(
        image_tree::compare(&same, &base, &Ignore::default()),
        Vec::<String>::new(),
        "absent, null and empty config values must compare equal"
    );
    let mut other = base.clone();
    other.config = serde_json::json!({"Env": ["A=2"], "User": "app"});
    other.author = Some("me".to_owned());
    other
        .files
        .insert("etc/a".to_owned(), file("file", 0o600, Some(b"b")));
    other
        .files
        .insert("etc/new".to_owned(), file("fifo", 0o644, None));
    let diffs = image_tree::compare(&other, &base, &Ignore::default());
    for needle in [
        "config Env",
        "config User",
        "author",
        "/etc/a: mode ours=0600 reference=0644",
        "/etc/a: content",
        "/etc/new: only in ours",
    ] {
        assert!(
            diffs.iter().any(|d| d.contains(needle)),
            "expected a difference mentioning {needle:?} in {diffs:#?}"
        );
    }
    let ignore = Ignore {
        config_keys: BTreeSet::from(["Env".to_owned(), "User".to_owned(), "author".to_owned()]),
        paths: vec!["etc/".to_owned()],
    };
    assert_eq!(
        image_tree::compare(&other, &base, &ignore),
        Vec::<String>::new()
    );
}

/// A tar member header, for building layers in tests.
fn tar_member(out: &mut Vec<u8>, path: &str, typeflag: u8, mode: u32, link: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    h[108..116].copy_from_slice(b"0001750\0");
    h[116..124].copy_from_slice(b"0001750\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish_tar(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn layers_apply_whiteouts_hard_links_and_compression() {
    let mut l1 = Vec::new();
    tar_member(&mut l1, "d/", b'5', 0o755, "", b"");
    tar_member(&mut l1, "d/gone", b'0', 0o644, "", b"x");
    tar_member(&mut l1, "d/kept", b'0', 0o600, "", b"kept");
    tar_member(&mut l1, "o/", b'5', 0o700, "", b"");
    tar_member(&mut l1, "o/old", b'0', 0o644, "", b"old");
    tar_member(&mut l1, "l", b'2', 0o777, "d/kept", b"");
    let mut l2 = Vec::new();
    tar_member(&mut l2, "d/.wh.gone", b'0', 0o644, "", b"");
    tar_member(&mut l2, "o/new", b'0', 0o644, "", b"new");
    tar_member(&mut l2, "o/.wh..wh..opq", b'0', 0o644, "", b"");
    tar_member(&mut l2, "hard", b'1', 0o644, "d/kept", b"");
    let l2 = finish_tar(l2);
    // the second layer gzip-compressed, as our builder writes layers
    let mut gz = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run gzip ({e}); {INSTALL_HINT}"));
    gz.stdin
        .take()
        .expect("gzip stdin")
        .write_all(&l2)
        .expect("feed gzip");
    let l2 = gz.wait_with_output().expect("gzip output").stdout;
    let config = br#"{"config":{"Env":["A=1"]},"author":"me"}"#;
    let manifest = br#"[{"Config":"blobs/sha256/c","RepoTags":["t:1"],"Layers":["blobs/sha256/l1","blobs/sha256/l2"]}]"#;
    let mut archive = Vec::new();
    tar_member(&mut archive, "manifest.json", b'0', 0o644, "", manifest);
    tar_member(&mut archive, "blobs/sha256/c", b'0', 0o644, "", config);
    tar_member(
        &mut archive,
        "blobs/sha256/l1",
        b'0',
        0o644,
        "",
        &finish_tar(l1),
    );
    tar_member(&mut archive, "blobs/sha256/l2", b'0', 0o644, "", &l2);
    let tree = ImageTree::from_docker_archive_bytes(&finish_tar(archive))
        .unwrap_or_else(|e| panic!("synthetic archive must read: {e}"));
    let paths: Vec<&str> = tree.files.keys().map(String::as_str).collect();
    assert_eq!(paths, ["d", "d/kept", "hard", "l", "o", "o/new"]);
    let hard = tree.file("/hard").expect("hard link present");
    assert_eq!(
        (hard.kind, hard.mode, hard.uid, hard.size),
        ("file", 0o600, 1000, 4),
        "a hard link compares as its target's content"
    );
    assert_eq!(hard.sha256, tree.file("d/kept").expect("kept").sha256);
    assert_eq!(
        tree.file("l")
            .and_then(|f| f.link_target.clone())
            .as_deref(),
        Some("d/kept")
    );
    assert_eq!(tree.author.as_deref(), Some("me"));
    assert_eq!(tree.config_value("Env"), Some(serde_json::json!(["A=1"])));
}

// ---------------------------------------------------------------------------
// Our output in other tools

/// A one-file context on the busybox base, built by our builder.
fn build_small_image(
    registry: &support::Registry,
    scratch: &Path,
    output_flag: &str,
    output: &Path,
    tag: &str,
) -> String {
    let rootfs = scratch.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("create rootfs dir");
    prepare_base_rootfs(&rootfs);
    support::push_rootfs_image(registry, "busybox:latest", &rootfs);
    let context = scratch.join("context");
    std::fs::create_dir_all(&context).expect("create context dir");
    std::fs::write(
        context.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY message.txt /srv/message.txt\nCMD [\"cat\", \"/srv/message.txt\"]\n",
    )
    .expect("write Dockerfile");
    std::fs::write(context.join("message.txt"), "built by rust-image-action\n")
        .expect("write message");
    let out = Command::new(OUR_BINARY)
        .arg("build")
        .arg(&context)
        .arg("-f")
        .arg(context.join("Dockerfile"))
        .arg("-t")
        .arg(tag)
        .arg(output_flag)
        .arg(output)
        .arg("--cache-dir")
        .arg(scratch.join("cache"))
        .arg("--insecure-registry")
        .arg(registry.addr())
        .arg("--build-arg")
        .arg(format!("BASE={}/busybox:latest", registry.addr()))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {OUR_BINARY}: {e}"));
    assert!(
        out.status.success(),
        "our build failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        is_digest(&digest),
        "our build printed {digest:?}, not a digest"
    );
    digest
}

#[test]
fn images_run_under_podman() {
    let registry = support::Registry::start_open();
    let scratch = TempDir::new("podman");
    let tar = scratch.path().join("image.tar");
    let tag = "localhost/ria-differential/podman:1";
    build_small_image(&registry, scratch.path(), "--tar", &tar, tag);
    // one private store for load and run; removed when `podman` drops
    let podman = support::Podman::new();
    let loaded = support::run(podman.command().arg("load").arg("-i").arg(&tar));
    let loaded = String::from_utf8_lossy(&loaded.stdout).into_owned();
    assert!(
        loaded.contains("ria-differential/podman"),
        "podman load did not report our tag: {loaded}"
    );
    let printed = support::run(podman.command().args([
        "run",
        "--rm",
        "--network",
        "none",
        tag,
        "cat",
        "/srv/message.txt",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        "built by rust-image-action\n",
        "the container did not print the file our image holds"
    );
}

#[test]
fn oci_layout_passes_skopeo() {
    let registry = support::Registry::start_open();
    let scratch = TempDir::new("skopeo");
    let layout = scratch.path().join("layout");
    let digest = build_small_image(
        &registry,
        scratch.path(),
        "--oci-layout",
        &layout,
        "ria/skopeo:v1",
    );
    let location = format!("oci:{}:v1", layout.display());
    let raw = support::run(support::skopeo().args(["inspect", "--raw", &location]));
    assert_eq!(
        format!("sha256:{}", image_tree::sha256_hex(&raw.stdout)),
        digest,
        "the manifest skopeo reads is not the one whose digest our builder printed"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&raw.stdout).expect("skopeo --raw prints the manifest JSON");
    assert_eq!(manifest["schemaVersion"], 2, "manifest: {manifest}");
    let inspected = support::run(support::skopeo().args(["inspect", &location]));
    let info: serde_json::Value =
        serde_json::from_slice(&inspected.stdout).expect("skopeo inspect prints JSON");
    assert_eq!(
        info["Digest"],
        serde_json::json!(digest),
        "skopeo inspect: {info}"
    );
    assert!(
        info["Layers"].as_array().is_some_and(|l| !l.is_empty()),
        "skopeo inspect shows no layers: {info}"
    );
}

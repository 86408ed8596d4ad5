//! The reference builder: a private Docker Engine (Debian's `docker.io`, 20.10 with
//! BuildKit) started by the tests in temporary directories.
//!
//! The daemon listens on its own socket, keeps its data and exec roots in a temporary
//! directory, and is stopped (and everything it mounted unmounted and deleted) when
//! the last user drops it. The client is always `/usr/bin/docker`, the one that
//! matches the daemon, with a private `DOCKER_CONFIG` so no user configuration,
//! credential helper or buildx alias takes part.

#![allow(
    dead_code,
    reason = "each test crate that includes the support module uses a different part"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The Docker client that matches the daemon (a newer one may be first on `PATH`).
pub const DOCKER: &str = "/usr/bin/docker";
/// Debian installs the daemon in sbin.
const DOCKERD: &str = "/usr/sbin/dockerd";
const INSTALL_HINT: &str = "install the test dependencies with scripts/install-test-deps \
                            (Debian package `docker.io`)";

/// A private Docker daemon, stopped and cleaned up on drop.
pub struct DockerDaemon {
    root: PathBuf,
    socket: PathBuf,
    data_root: PathBuf,
    exec_root: PathBuf,
    config_dir: PathBuf,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

/// One build for the reference builder.
#[derive(Debug, Clone, Default)]
pub struct ReferenceBuild {
    /// Build context directory.
    pub context: PathBuf,
    /// Dockerfile (`-f`).
    pub dockerfile: PathBuf,
    /// Tag given to the result.
    pub tag: String,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
}

/// A failed docker command: what ran and everything it printed.
#[derive(Debug, Clone)]
pub struct CommandFailure {
    /// The command line, for messages.
    pub command: String,
    /// Exit status as text.
    pub status: String,
    /// Standard output and standard error, concatenated.
    pub output: String,
}

impl std::fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` failed ({}):\n{}",
            self.command, self.status, self.output
        )
    }
}

static SHARED: Mutex<Weak<DockerDaemon>> = Mutex::new(Weak::new());
static SERIAL: AtomicUsize = AtomicUsize::new(0);

impl DockerDaemon {
    /// The daemon shared by every test of this process, started on first use.
    ///
    /// A `static OnceLock` would never be dropped (Rust runs no destructors for
    /// statics), leaving the daemon behind after the tests; the static holds a weak
    /// handle instead, so the daemon lives exactly as long as some test holds it.
    pub fn shared() -> Arc<DockerDaemon> {
        let mut slot = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(daemon) = slot.upgrade() {
            return daemon;
        }
        let daemon = Arc::new(DockerDaemon::start());
        *slot = Arc::downgrade(&daemon);
        daemon
    }

    /// Starts a new daemon and waits until it answers.
    pub fn start() -> DockerDaemon {
        for tool in [DOCKERD, DOCKER] {
            assert!(
                Path::new(tool).is_file(),
                "{tool} is missing: the differential tests need Docker Engine as the \
                 reference builder; {INSTALL_HINT}"
            );
        }
        let root = std::env::temp_dir().join(format!(
            "ria-dockerd-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let data_root = root.join("data");
        let exec_root = root.join("exec");
        let config_dir = root.join("client-config");
        for dir in [&data_root, &exec_root, &config_dir] {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        let socket = root.join("docker.sock");
        let log = root.join("dockerd.log");
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot reopen {}: {e}", log.display()));
        let child = Command::new(DOCKERD)
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["--iptables=false", "--bridge=none"])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DOCKERD}: {e}; {INSTALL_HINT}"));
        let daemon = DockerDaemon {
            root,
            socket,
            data_root,
            exec_root,
            config_dir,
            log,
            child: Mutex::new(Some(child)),
        };
        daemon.wait_ready(Duration::from_secs(60));
        daemon
    }

    fn wait_ready(&self, limit: Duration) {
        let started = Instant::now();
        loop {
            let ready = self
                .docker()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            let exited = self
                .child
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "dockerd exited during start-up ({status}); its log:\n{}",
                    self.log_tail()
                );
            }
            if started.elapsed() > limit {
                panic!(
                    "dockerd did not answer `docker version` within {limit:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The daemon's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A `/usr/bin/docker -H unix://SOCK` command with a private client config and
    /// BuildKit enabled.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.config_dir)
            .env("DOCKER_BUILDKIT", "1")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("BUILDX_BUILDER")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<Output, CommandFailure> {
        let mut cmd = self.docker();
        cmd.args(args);
        run_checked(cmd, &format!("docker {}", args.join(" ")))
    }

    /// Builds with BuildKit (`--network host`, which this machine needs).
    pub fn build(&self, build: &ReferenceBuild) -> Result<(), CommandFailure> {
        let mut cmd = self.docker();
        cmd.args(["build", "--network", "host", "--progress", "plain", "-t"])
            .arg(&build.tag)
            .arg("-f")
            .arg(&build.dockerfile);
        for (k, v) in &build.build_args {
            cmd.arg("--build-arg").arg(format!("{k}={v}"));
        }
        if let Some(target) = &build.target {
            cmd.arg("--target").arg(target);
        }
        cmd.arg(&build.context);
        run_checked(
            cmd,
            &format!(
                "docker build -t {} -f {} {}",
                build.tag,
                build.dockerfile.display(),
                build.context.display()
            ),
        )
        .map(|_| ())
    }

    /// `docker save TAG -o OUT` (Docker 20.10's `<id>/layer.tar` layout).
    pub fn save(&self, tag: &str, out: &Path) -> Result<(), CommandFailure> {
        let out = out.to_string_lossy();
        self.run(&["save", tag, "-o", &out]).map(|_| ())
    }

    /// Builds and saves in one go.
    pub fn build_and_save(&self, build: &ReferenceBuild, out: &Path) -> Result<(), CommandFailure> {
        self.build(build)?;
        self.save(&build.tag, out)
    }

    /// Pushes a tag to its registry (loopback registries are insecure by default).
    pub fn push(&self, tag: &str) -> Result<(), CommandFailure> {
        self.run(&["push", tag]).map(|_| ())
    }

    /// Removes an image by tag; an absent image is not an error.
    pub fn remove_image(&self, tag: &str) {
        let _ = self.run(&["rmi", "-f", tag]);
    }

    fn stop(&self) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            // SIGTERM lets dockerd stop the containerd it supervises; SIGKILL only if
            // it hangs.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        unmount_under(&self.root);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Unmounts every mount point below `root`, deepest first.
fn unmount_under(root: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = root.to_string_lossy().into_owned();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for point in points {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&point)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = raw
                .get(i + 1..i + 4)
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn run_checked(mut cmd: Command, shown: &str) -> Result<Output, CommandFailure> {
    let output = cmd.output().map_err(|e| CommandFailure {
        command: shown.to_owned(),
        status: "could not start".to_owned(),
        output: format!("{e}; {INSTALL_HINT}"),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(CommandFailure {
            command: shown.to_owned(),
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

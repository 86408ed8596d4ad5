//! The container tools the tests drive, each configured to leave nothing behind: `podman`
//! and `buildah` get a private `CONTAINERS_CONF`, `--root` and `--runroot` in a temporary
//! directory that is reset and removed on drop; `skopeo` gets a permissive private policy.

use std::ffi::OsStr;
use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The containers.conf the tests use: fixed ulimits so results do not depend on the host's,
/// runc and cgroupfs so no systemd is needed, events to a file so no journald is needed.
const CONTAINERS_CONF: &str = r#"[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"#;

/// Panics unless `tool` is on `PATH`, naming it and the script that installs it.
pub fn require_tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "`{tool}` is not installed; the integration tests need it: run \
             `scripts/install-test-deps` (as root)"
        ),
    }
}

/// Runs `command`, panicking with its command line, status and output unless it succeeds.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("failed to start `{}`: {e}", describe(command)));
    assert!(
        output.status.success(),
        "`{}` failed with {}\nstdout:\n{}\nstderr:\n{}",
        describe(command),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// A `skopeo` command with a private policy accepting any image (the tests copy unsigned
/// images between a temporary layout and a local registry).
pub fn skopeo() -> ToolCommand<SkopeoState> {
    let program = require_tool("skopeo");
    let dir = temp_dir("skopeo");
    let policy = dir.path().join("policy.json");
    write(
        &policy,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    );
    let mut command = Command::new(program);
    command.arg("--policy").arg(&policy);
    command.env("TMPDIR", dir.path());
    ToolCommand {
        command,
        state: SkopeoState { _dir: dir },
    }
}

/// What a `skopeo` command keeps alive: its policy file.
pub struct SkopeoState {
    _dir: TempDir,
}

/// A one-shot `podman` command in a fresh private store, removed when the command is dropped.
pub fn podman() -> ToolCommand<Podman> {
    let podman = Podman::new();
    ToolCommand {
        command: podman.command(),
        state: podman,
    }
}

/// A one-shot `buildah` command in a fresh private store, removed when the command is dropped.
pub fn buildah() -> ToolCommand<Buildah> {
    let buildah = Buildah::new();
    ToolCommand {
        command: buildah.command(),
        state: buildah,
    }
}

/// A [`Command`] together with the temporary state it uses; derefs to the command, so
/// `podman().args(["images"]).output()` works, and the state goes away with it.
pub struct ToolCommand<S> {
    command: Command,
    state: S,
}

impl<S> ToolCommand<S> {
    /// The state (for `podman`/`buildah`: the store, to run further commands in it).
    pub fn state(&self) -> &S {
        &self.state
    }
}

impl<S> Deref for ToolCommand<S> {
    type Target = Command;

    fn deref(&self) -> &Command {
        &self.command
    }
}

impl<S> DerefMut for ToolCommand<S> {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.command
    }
}

/// A private podman store: every [`Podman::command`] shares its root, run root and config.
pub struct Podman {
    env: ContainerEnv,
}

impl Podman {
    /// Creates the store's temporary directories and configuration.
    pub fn new() -> Podman {
        Podman {
            env: ContainerEnv::new("podman"),
        }
    }

    /// `podman --root ... --runroot ...` with `CONTAINERS_CONF` set.
    pub fn command(&self) -> Command {
        self.env.command()
    }

    /// The directory holding root, run root and configuration.
    pub fn dir(&self) -> &Path {
        self.env.dir.path()
    }
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}

/// A private buildah store; like [`Podman`], and [`Buildah::chroot_command`] adds
/// `--isolation chroot` for builds where no runtime namespaces are available.
pub struct Buildah {
    env: ContainerEnv,
}

impl Buildah {
    /// Creates the store's temporary directories and configuration.
    pub fn new() -> Buildah {
        Buildah {
            env: ContainerEnv::new("buildah"),
        }
    }

    /// `buildah --root ... --runroot ...` with `CONTAINERS_CONF` set.
    pub fn command(&self) -> Command {
        self.env.command()
    }

    /// `buildah --root ... --runroot ... SUBCOMMAND --isolation chroot` (the flag belongs to
    /// the subcommand, so it is given here: `bud`, `build`, `from` or `run`).
    pub fn chroot_command(&self, subcommand: &str) -> Command {
        let mut command = self.env.command();
        command.args([subcommand, "--isolation", "chroot"]);
        command
    }

    /// The directory holding root, run root and configuration.
    pub fn dir(&self) -> &Path {
        self.env.dir.path()
    }
}

impl Default for Buildah {
    fn default() -> Self {
        Buildah::new()
    }
}

/// The temporary world of one podman or buildah user.
struct ContainerEnv {
    program: PathBuf,
    dir: TempDir,
}

impl ContainerEnv {
    fn new(tool: &str) -> ContainerEnv {
        let program = require_tool(tool);
        // runc is what CONTAINERS_CONF names; without it every `run` fails obscurely.
        require_tool("runc");
        let dir = temp_dir(tool);
        for sub in ["root", "runroot", "tmp"] {
            fs::create_dir_all(dir.path().join(sub))
                .unwrap_or_else(|e| panic!("failed to create `{sub}` in the {tool} dir: {e}"));
        }
        // Each store gets its own engine tmp_dir: the default `/run/libpod` is shared by
        // every podman on the machine, and concurrent tests then race on its files.
        let engine_tmp = dir.path().join("tmp").join("libpod");
        let conf = CONTAINERS_CONF.replace(
            "[engine]\n",
            &format!("[engine]\ntmp_dir = \"{}\"\n", engine_tmp.display()),
        );
        write(&dir.path().join("containers.conf"), &conf);
        ContainerEnv { program, dir }
    }

    fn command(&self) -> Command {
        let dir = self.dir.path();
        let mut command = Command::new(&self.program);
        command
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            // Keeps image layers being committed out of the machine's /var/tmp.
            .env("TMPDIR", dir.join("tmp"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("runroot"));
        command
    }
}

impl Drop for ContainerEnv {
    fn drop(&mut self) {
        // Containers and overlay mounts may outlive the commands that made them; reset the
        // store through the tool, then unmount whatever is still mounted below the directory
        // (deepest first) so that removing it cannot fail on busy mounts.
        let is_podman = self.program.file_name() == Some(OsStr::new("podman"));
        let mut reset = self.command();
        if is_podman {
            reset.args(["system", "reset", "--force"]);
        } else {
            reset.args(["rm", "--all"]);
        }
        reset
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        reset.status().ok();
        unmount_below(self.dir.path());
    }
}

/// Lazily unmounts every mount point at or below `dir`, deepest first.
fn unmount_below(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in points {
        Command::new("umount").arg("-l").arg(&point).status().ok();
    }
}

fn temp_dir(tool: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{tool}-test-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("failed to create a temporary directory for {tool}: {e}"))
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("failed to write `{}`: {e}", path.display()));
}

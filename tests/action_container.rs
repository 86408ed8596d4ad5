//! The Action's image run the way a GitHub runner runs a container action.
//!
//! A static build of our binary goes into an image built by the project itself (`build
//! --tar` on the host, the layout, ENV and ENTRYPOINT of the root Dockerfile's final stage),
//! which is loaded into a real Docker Engine (Debian's `docker.io`, a private daemon) and run
//! as the runner does: `docker run` with the workspace, home, workflow and file-command
//! directories mounted under `/github`, `INPUT_*` and `GITHUB_*` set, `runs.args` from
//! action.yml, no extra privilege. Inside, `--isolation auto` must pick the `container`
//! backend and build a Dockerfile with RUN steps on a busybox base, then push to a token-auth
//! registry standing in for ghcr.io.
//!
//! The container backend overwrites `/`: it only ever runs here inside that `docker run`.

#![allow(
    clippy::print_stderr,
    reason = "the test reports how long the static build and the run took"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;
use support::auth_registry::AuthRegistry;
use support::bench::{Entry, LayerKind, nonce, read_layer};
use support::reference::DockerDaemon;
use support::runner::{
    ACTOR, ActionRun, COMMIT_DATE, IMAGE_REPOSITORY, SHA, TOKEN, events_dir, github_env, input_env,
    push_main_env, registry_config, registry_tags, sorted_lines, start_fake_github,
};
use support::token_server::TokenOptions;
use support::{Podman, Registry, busybox_rootfs, push_rootfs_image, run, skopeo};
use yaml_rust2::YamlLoader;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// The Rust target of the static build: glibc's, linked with `crt-static`, so the binary
/// needs no loader and no `/lib` (the user's base is unpacked over the container's `/`).
/// Static glibc still loads NSS modules from `/lib` to resolve host names; every address here
/// is an IP literal, and the released image is built for musl, which has no NSS.
const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
/// The profile of the static build: `dev` without debug information. On this 2-core machine,
/// next to other builds, a release build from nothing took 21 minutes (15 of CPU) and the
/// dev build 5; after a change to `src/` only the crate itself is rebuilt.
const STATIC_PROFILE: &str = "dev";
/// How long the action may run in its container before the test gives up.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Builds the static binary once per test process, under a file lock shared with any other
/// process building it; returns its path.
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let target_dir = Path::new(MANIFEST_DIR).join("target/static");
        fs::create_dir_all(&target_dir).expect("create target/static");
        let lock_path = target_dir.join("build.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("failed to open `{}`: {e}", lock_path.display()));
        rustix::fs::flock(&lock, FlockOperation::LockExclusive)
            .unwrap_or_else(|e| panic!("failed to lock `{}`: {e}", lock_path.display()));
        let started = Instant::now();
        let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cargo
            .current_dir(MANIFEST_DIR)
            .args(["build", "--locked", "--bin", "rust-image-action"])
            .args(["--target", STATIC_TARGET, "--profile", STATIC_PROFILE])
            // Only what cargo and rustup need: the variables `cargo test` gives this process
            // (CARGO_PKG_*, LD_LIBRARY_PATH, ...) would change build-script fingerprints
            // and rebuild everything, and CARGO_ENCODED_RUSTFLAGS would override RUSTFLAGS.
            .env_clear()
            .envs(std::env::vars_os().filter(|(name, _)| {
                [
                    "PATH",
                    "HOME",
                    "CARGO_HOME",
                    "RUSTUP_HOME",
                    "RUSTUP_TOOLCHAIN",
                    "TMPDIR",
                ]
                .iter()
                .any(|keep| name == keep)
            }))
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_PROFILE_DEV_DEBUG", "false")
            .stdin(Stdio::null());
        run(&mut cargo);
        eprintln!(
            "static {STATIC_PROFILE} build of rust-image-action: {:.1?} (cached when unchanged)",
            started.elapsed()
        );
        let binary = target_dir
            .join(STATIC_TARGET)
            // Cargo puts the `dev` profile's output in `debug`.
            .join(if STATIC_PROFILE == "dev" {
                "debug"
            } else {
                STATIC_PROFILE
            })
            .join("rust-image-action");
        assert_static(&binary);
        binary
    })
}

/// Panics unless `binary` asks for no program interpreter (no dynamic loader) and `ldd`
/// agrees that it loads no library.
fn assert_static(binary: &Path) {
    let elf = fs::read(binary).unwrap_or_else(|e| panic!("read `{}`: {e}", binary.display()));
    assert_eq!(
        &elf[..4],
        b"\x7fELF",
        "`{}` is an ELF file",
        binary.display()
    );
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let program_headers = u64::from_le_bytes(elf[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (entry_size, count) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    let interpreter = (0..count).any(|i| {
        let at = program_headers + i * entry_size;
        u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes")) == PT_INTERP
    });
    assert!(
        !interpreter,
        "`{}` names a dynamic loader (PT_INTERP): it would not start once the user's base \
         replaced the container's /lib",
        binary.display()
    );
    let ldd = Command::new("ldd")
        .arg(binary)
        .output()
        .expect("run ldd (package libc-bin)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd `{}`: {said}",
        binary.display()
    );
}

/// The root Dockerfile's final stage instructions the Action's image depends on (LABEL, ENV,
/// ENTRYPOINT), continuation lines joined.
fn final_stage_settings() -> Vec<String> {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join("Dockerfile"))
        .expect("read the root Dockerfile");
    let mut logical: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                logical.push(std::mem::take(&mut pending));
            }
        }
    }
    let last_from = logical
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("the root Dockerfile has a FROM");
    let settings: Vec<String> = logical[last_from..]
        .iter()
        .filter(|l| {
            ["LABEL ", "ENV ", "ENTRYPOINT "]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .cloned()
        .collect();
    assert!(
        settings
            .iter()
            .any(|l| l.starts_with("ENV ") && l.contains("RIA_CONTAINER=1")),
        "the root Dockerfile's final stage sets RIA_CONTAINER=1: {settings:?}"
    );
    assert!(
        settings.iter().any(|l| l.starts_with("ENTRYPOINT ")),
        "the root Dockerfile's final stage has an ENTRYPOINT: {settings:?}"
    );
    settings
}

/// Builds the Action's image with our own builder into a docker-archive at `tar`.
fn build_action_image(dir: &Path, tag: &str, tar: &Path) {
    let context = dir.join("action-image");
    fs::create_dir_all(&context).expect("image context");
    fs::copy(static_binary(), context.join("rust-image-action")).expect("copy the binary");
    fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        context.join("ca-certificates.crt"),
    )
    .expect("copy the CA bundle (package ca-certificates)");
    let dockerfile = format!(
        "FROM scratch\n\
         COPY ca-certificates.crt /ria/certs/ca-certificates.crt\n\
         COPY rust-image-action /ria/bin/rust-image-action\n\
         {}\n",
        final_stage_settings().join("\n")
    );
    fs::write(context.join("Dockerfile"), dockerfile).expect("write the Dockerfile");
    let store = dir.join("host-store");
    run(Command::new(static_binary())
        .args(["build", "--isolation", "namespace", "--cache-dir"])
        .arg(&store)
        .arg("--tar")
        .arg(tar)
        .args(["-t", tag])
        .arg(&context));
}

/// `runs.args` of action.yml: what the runner passes after the image.
fn action_args() -> Vec<String> {
    let text =
        fs::read_to_string(Path::new(MANIFEST_DIR).join("action.yml")).expect("read action.yml");
    let docs = YamlLoader::load_from_str(&text).expect("action.yml is YAML");
    let runs = &docs[0]["runs"];
    assert_eq!(runs["using"].as_str(), Some("docker"), "a container action");
    runs["args"]
        .as_vec()
        .expect("runs.args")
        .iter()
        .map(|a| a.as_str().expect("a string argument").to_string())
        .collect()
}

/// What the runner prepares on its side for one step: the directories it mounts.
struct RunnerDirs {
    workspace: PathBuf,
    home: PathBuf,
    workflow: PathBuf,
    file_commands: PathBuf,
}

impl RunnerDirs {
    fn create(root: &Path) -> RunnerDirs {
        let dirs = RunnerDirs {
            workspace: root.join("work/web-app/web-app"),
            home: root.join("_temp/_github_home"),
            workflow: root.join("_temp/_github_workflow"),
            file_commands: root.join("_temp/_runner_file_commands"),
        };
        for dir in [
            &dirs.workspace,
            &dirs.home,
            &dirs.workflow,
            &dirs.file_commands,
        ] {
            fs::create_dir_all(dir).expect("runner directory");
        }
        // The runner creates the file-command files before the step runs.
        for file in ["set_output_1", "step_summary_1", "set_env_1", "add_path_1"] {
            fs::write(dirs.file_commands.join(file), "").expect("file-command file");
        }
        dirs
    }
}

/// Removes a container and an image from the daemon when the test ends, passed or not.
struct DockerCleanup<'a> {
    daemon: &'a DockerDaemon,
    container: String,
    image: String,
}

impl Drop for DockerCleanup<'_> {
    fn drop(&mut self) {
        for args in [
            ["rm", "-f", self.container.as_str()],
            ["rmi", "-f", self.image.as_str()],
        ] {
            let _ = self
                .daemon
                .docker()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `docker run` of `image` as the runner runs a container action; returns what the step
/// left. The environment goes in as `-e NAME` with the value in the client's environment,
/// as the runner passes it.
fn docker_run_action(
    daemon: &DockerDaemon,
    image: &str,
    container: &str,
    dirs: &RunnerDirs,
    env: &BTreeMap<String, String>,
) -> ActionRun {
    let mut docker = daemon.docker();
    docker
        .args(["run", "--rm", "--name", container])
        .args(["--workdir", "/github/workspace"])
        .args(["--network", "host"]);
    for (dir, target) in [
        (&dirs.workspace, "/github/workspace"),
        (&dirs.home, "/github/home"),
        (&dirs.workflow, "/github/workflow"),
        (&dirs.file_commands, "/github/file_commands"),
    ] {
        docker.arg("-v").arg(format!("{}:{target}", dir.display()));
    }
    for (name, value) in env {
        docker.arg("-e").arg(name).env(name, value);
    }
    docker.arg(image).args(action_args());
    let log_path = dirs.workflow.join("../docker-run.log");
    let log = fs::File::create(&log_path).expect("log file");
    let started = Instant::now();
    let mut child = docker
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start docker run");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for docker run") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = daemon.docker().args(["kill", container]).status();
            let _ = child.wait();
            panic!(
                "the action ran over {RUN_LIMIT:?}; its log:\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("docker run of the action: {:.1?}", started.elapsed());
    let read = |name: &str| fs::read_to_string(dirs.file_commands.join(name)).unwrap_or_default();
    ActionRun {
        success: status.success(),
        log: fs::read_to_string(&log_path).unwrap_or_default(),
        outputs: read("set_output_1"),
        summary: read("step_summary_1"),
    }
}

/// The layers of `tag` in the ghcr.io stand-in, each read back as entries.
fn pushed_layers(ghcr: &AuthRegistry, tag: &str, dir: &Path) -> Vec<Vec<Entry>> {
    let copy = dir.join("pushed");
    let mut skopeo = skopeo();
    run(skopeo
        .args(["copy", "--src-tls-verify=false", "--src-creds"])
        .arg(format!("{ACTOR}:{TOKEN}"))
        .arg(format!("docker://{}/{IMAGE_REPOSITORY}:{tag}", ghcr.addr()))
        .arg(format!("dir:{}", copy.display())));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(copy.join("manifest.json")).expect("manifest.json"))
            .expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|layer| {
            let digest = layer["digest"].as_str().expect("digest");
            let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
            read_layer(&fs::read(copy.join(hex)).expect("layer blob"))
        })
        .collect()
}

/// The paths of a layer's entries that are not directories, and those that are.
fn split_paths(layer: &[Entry]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (dirs, others): (Vec<&Entry>, Vec<&Entry>) =
        layer.iter().partition(|e| e.kind == LayerKind::Dir);
    (
        others.iter().map(|e| e.path.clone()).collect(),
        dirs.iter().map(|e| e.path.clone()).collect(),
    )
}

/// Panics if `layer` holds a path of the Action's own container that no step here touches:
/// the builder's files, the runner's mounts, the engine's files and mounts, `/tmp`.
fn assert_only_the_steps_changes(layer: &[Entry], what: &str) {
    const FORBIDDEN: [&str; 10] = [
        "ria",
        "github",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/hostname",
        ".dockerenv",
        "proc",
        "sys",
        "dev",
        "tmp",
    ];
    for entry in layer {
        let bad = FORBIDDEN
            .iter()
            .any(|f| entry.path == *f || entry.path.starts_with(&format!("{f}/")));
        assert!(!bad, "{what} holds `{}`: {:?}", entry.path, paths(layer));
    }
}

fn paths(layer: &[Entry]) -> Vec<&str> {
    layer.iter().map(|e| e.path.as_str()).collect()
}

/// The workspace's Dockerfile: a builder stage making files with two RUN steps (the second
/// on the first's result, with a build argument from the `build-args` input), and a final
/// stage copying them and changing its own base with another RUN.
fn workspace_dockerfile(base: &str) -> String {
    format!(
        "FROM {base} AS build\n\
         ARG GREETING\n\
         RUN mkdir /out && echo \"$GREETING\" > /out/greeting && id -u > /out/uid\n\
         RUN echo \"second step saw $(cat /out/uid)\" >> /out/greeting\n\
         FROM {base}\n\
         COPY --from=build /out /opt/app\n\
         COPY hello.txt /opt/hello.txt\n\
         RUN cat /opt/app/greeting /opt/hello.txt > /opt/report \\\n\
         \x20   && rm /etc/group && mkdir -p /var/made && echo made > /var/made/file\n\
         CMD [\"cat\", \"/opt/report\"]\n"
    )
}

#[test]
fn the_actions_image_under_docker_builds_run_steps_and_pushes_to_ghcr() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = DockerDaemon::shared();
    let image = format!("ria-action-under-test:{}", nonce());
    let container = format!("ria-action-{}", nonce());
    let _cleanup = DockerCleanup {
        daemon: &daemon,
        container: container.clone(),
        image: image.clone(),
    };

    // The Action's image, built by us, loaded into the engine.
    let tar = dir.path().join("action-image.tar");
    build_action_image(dir.path(), &image, &tar);
    let loaded = run(daemon.docker().arg("load").arg("--input").arg(&tar));
    let loaded = String::from_utf8_lossy(&loaded.stdout);
    assert!(loaded.contains(&image), "docker load: {loaded}");
    let inspect = run(daemon.docker().args(["image", "inspect", &image]));
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    assert_eq!(
        inspect[0]["Config"]["Entrypoint"],
        serde_json::json!(["/ria/bin/rust-image-action"])
    );

    // The runner's world: a base registry, ghcr.io's stand-in, GitHub's API.
    let base_registry = Registry::start_open();
    let rootfs = tempfile::tempdir().expect("tempdir");
    busybox_rootfs(rootfs.path());
    let base = push_rootfs_image(&base_registry, "base/busybox:1", rootfs.path()).reference;
    let ghcr = AuthRegistry::start_token(TokenOptions::new(ACTOR, TOKEN));
    let api = start_fake_github();
    let dirs = RunnerDirs::create(&dir.path().join("runner"));
    fs::write(
        dirs.workspace.join("Dockerfile"),
        workspace_dockerfile(&base),
    )
    .expect("Dockerfile");
    fs::write(
        dirs.workspace.join("hello.txt"),
        "hello from the workspace\n",
    )
    .expect("context");
    fs::copy(
        events_dir().join("push_main.json"),
        dirs.workflow.join("event.json"),
    )
    .expect("event payload");

    let mut env = input_env(&[
        ("build-args", "GREETING=hello from RUN"),
        (
            "labels",
            "org.example.engine=docker\norg.example.backend=container",
        ),
    ]);
    env.extend(github_env(&push_main_env()));
    for (name, value) in [
        ("HOME", "/github/home"),
        ("CI", "true"),
        ("GITHUB_WORKSPACE", "/github/workspace"),
        ("GITHUB_EVENT_PATH", "/github/workflow/event.json"),
        ("GITHUB_OUTPUT", "/github/file_commands/set_output_1"),
        (
            "GITHUB_STEP_SUMMARY",
            "/github/file_commands/step_summary_1",
        ),
        ("GITHUB_ENV", "/github/file_commands/set_env_1"),
        ("GITHUB_PATH", "/github/file_commands/add_path_1"),
        ("GITHUB_JOB", "image"),
        ("GITHUB_WORKFLOW", "image"),
        ("RUNNER_OS", "Linux"),
        ("RUNNER_ARCH", "X64"),
        ("RUNNER_TEMP", "/home/runner/work/_temp"),
    ] {
        env.insert(name.to_string(), value.to_string());
    }
    env.insert("GITHUB_API_URL".into(), api.url());
    env.insert(
        "RIA_REGISTRY_ENDPOINTS".into(),
        format!("ghcr.io=http://{}", ghcr.addr()),
    );

    let action = docker_run_action(&daemon, &image, &container, &dirs, &env);
    action.assert_success();
    let log = &action.log;
    let isolation = log
        .lines()
        .find(|l| l.contains("isolation: "))
        .unwrap_or_else(|| panic!("an isolation line:\n{log}"));
    assert!(
        isolation.contains("isolation: container (RIA_CONTAINER=1 in a container"),
        "{isolation}\n{log}"
    );
    // Without extra privileges the engine's seccomp profile and capabilities refuse
    // namespaces: the reason `auto` fell back to the container backend.
    assert!(isolation.contains("; namespace: "), "{isolation}");
    assert!(log.contains("::group::[build] FROM"), "{log}");

    // Tags, labels and outputs, as in the simulated runner.
    let mut expected = vec![SHA.to_string(), "latest".to_string(), "main".to_string()];
    expected.sort();
    assert_eq!(registry_tags(&ghcr), expected, "log:\n{log}");
    let config = registry_config(&ghcr, "main");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], SHA);
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/Acme-Corp/Web-App"
    );
    assert_eq!(labels["org.opencontainers.image.created"], COMMIT_DATE);
    assert_eq!(labels["org.opencontainers.image.version"], "main");
    assert_eq!(labels["org.example.engine"], "docker");
    assert_eq!(labels["org.example.backend"], "container");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/opt/report"])
    );
    let outputs = action.outputs();
    assert_eq!(
        outputs.keys().cloned().collect::<Vec<_>>(),
        ["digest", "image", "imageid", "metadata", "tags", "version"]
    );
    let digest = outputs["digest"].clone();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(
        outputs["image"],
        format!("ghcr.io/{IMAGE_REPOSITORY}@{digest}")
    );
    assert!(outputs["imageid"].starts_with("sha256:"), "{outputs:?}");
    assert_eq!(outputs["version"], "main");
    let want: Vec<String> = expected
        .iter()
        .map(|t| format!("ghcr.io/{IMAGE_REPOSITORY}:{t}"))
        .collect();
    assert_eq!(sorted_lines(&outputs["tags"]), want);
    let metadata: serde_json::Value = serde_json::from_str(&outputs["metadata"]).expect("JSON");
    assert_eq!(metadata["containerimage.digest"], digest.as_str());
    assert!(action.summary.contains(&digest), "{}", action.summary);

    // Every layer of the final stage holds only what its instruction did: nothing of the
    // Action's container (its binary, the runner's mounts, the engine's files) got in.
    let layers = pushed_layers(&ghcr, "main", dir.path());
    assert_eq!(layers.len(), 4, "base, COPY --from, COPY, RUN");
    let (copied, _) = split_paths(&layers[1]);
    assert_eq!(
        copied,
        BTreeSet::from(["opt/app/greeting".to_string(), "opt/app/uid".to_string()]),
        "the builder stage's RUN steps made exactly /out: {:?}",
        paths(&layers[1])
    );
    let (run_files, run_dirs) = split_paths(&layers[3]);
    assert_eq!(
        run_files,
        BTreeSet::from([
            "etc/.wh.group".to_string(),
            "opt/report".to_string(),
            "var/made/file".to_string(),
        ]),
        "the RUN layer: {:?}",
        paths(&layers[3])
    );
    let allowed_dirs = BTreeSet::from(["etc", "opt", "var", "var/made"].map(String::from));
    assert!(run_dirs.contains("var/made"), "{:?}", paths(&layers[3]));
    assert!(
        run_dirs.is_subset(&allowed_dirs),
        "the RUN layer's directories: {run_dirs:?}"
    );
    for (index, layer) in layers.iter().enumerate().skip(1) {
        assert_only_the_steps_changes(layer, &format!("layer {index}"));
    }

    // The pushed image runs, and shows what the RUN steps made.
    let podman = Podman::new();
    let reference = format!("{}/{IMAGE_REPOSITORY}:{SHA}", ghcr.addr());
    run(podman
        .command()
        .args(["pull", "--tls-verify=false", "--creds"])
        .arg(format!("{ACTOR}:{TOKEN}"))
        .arg(&reference));
    let shown = run(podman
        .command()
        .args(["run", "--rm", "--network=none", &reference]));
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "hello from RUN\nsecond step saw 0\nhello from the workspace\n"
    );
    let listing = run(podman.command().args([
        "run",
        "--rm",
        "--network=none",
        &reference,
        "sh",
        "-c",
        "ls -a / /etc; cat /var/made/file",
    ]));
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.ends_with("made\n"), "{listing}");
    for absent in ["ria", "github", "group"] {
        assert!(
            !listing.lines().any(|l| l == absent),
            "`{absent}` in the image:\n{listing}"
        );
    }
    drop(api);
    eprintln!("whole test: {:.1?}", started.elapsed());
}

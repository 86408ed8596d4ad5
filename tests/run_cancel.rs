//! A build killed in the middle of a RUN step leaves nothing running and nothing mounted,
//! and the next build on the same store clears what the killed one left in `tmp/`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::busybox_rootfs;

const OUR_BINARY: &str = env!("CARGO_BIN_EXE_rust-image-action");

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(format!("{name}: {text}"));
        }
    }
    found
}

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo")
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn build(context: &Path, base: &Path, store: &Path) -> Command {
    let mut command = Command::new(OUR_BINARY);
    command
        .arg("build")
        .arg(context)
        .arg("--build-context")
        .arg(format!("base={}", base.display()))
        .arg("--cache-dir")
        .arg(store);
    command
}

#[test]
fn a_killed_build_leaves_no_process_no_mount_and_no_files() {
    assert!(
        rustix::process::geteuid().is_root(),
        "RUN's namespace backend needs root: run the tests as root (CI does)"
    );
    let temp = tempfile::tempdir().expect("tempdir");
    let base = temp.path().join("base");
    busybox_rootfs(&base);
    let context = temp.path().join("context");
    std::fs::create_dir(&context).expect("context");
    // A step that starts a child of its own and waits: both must die with the builder.
    let marker = format!("{}", 7000 + std::process::id() % 2000);
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM base\nRUN sleep {marker}1 & sleep {marker}2\n"),
    )
    .expect("Dockerfile");
    let store = temp.path().join("store");
    let mounts_before = mounts();

    let mut child = build(&context, &base, &store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the build");
    let needle = format!("sleep {marker}2");
    wait_for("the step to start", Duration::from_secs(60), || {
        !processes_with(&needle).is_empty()
    });
    child.kill().expect("kill the builder");
    child.wait().expect("reap the builder");

    wait_for(
        "the step's processes to die",
        Duration::from_secs(10),
        || processes_with(&format!("sleep {marker}")).is_empty(),
    );
    assert_eq!(
        mounts(),
        mounts_before,
        "the killed build left mounts behind"
    );
    let leftovers = std::fs::read_dir(store.join("tmp"))
        .expect("store tmp")
        .count();
    assert!(
        leftovers > 0,
        "the killed step's upper directory is still there to sweep"
    );

    // The next build on the store removes what the dead one left.
    std::fs::write(context.join("Dockerfile"), "FROM base\nRUN true\n").expect("Dockerfile");
    let status = build(&context, &base, &store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("second build");
    assert!(status.success());
    let left: Vec<_> = std::fs::read_dir(store.join("tmp"))
        .expect("store tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "store tmp/ after the next build: {left:?}");
    assert_eq!(mounts(), mounts_before);
}

//! RUN on a real Debian base (bookworm minbase from mmdebstrap, cached between runs):
//! `apt-get install` against the machine's mirror, `setcap`'s `security.capability` xattr
//! captured in the layer, and the issue's done-means build: a C program compiled statically
//! in a Debian builder stage, copied onto a busybox stage, run under podman.

#![allow(
    clippy::print_stderr,
    reason = "measurements are printed for the test log, never asserted"
)]

mod support;

use support::Registry;
use support::bench::{self, Bench, LayerKind};

/// zstd layers: a debug build of the builder gzips at well under 1 MB/s, which makes the
/// 160 MB layer of `apt-get install gcc` take minutes; zstd is the fast option it offers.
const ZSTD: &[&str] = &["--compression", "zstd"];

/// A bench whose `FROM BASE` is the cached Debian root, with a busybox image beside it as
/// `BUSYBOX` for final stages.
fn debian_bench() -> (Bench, String) {
    bench::require_root();
    let registry = Registry::start_open();
    let work = bench::work_dir("run-debian-test");
    let busybox_root = work.path().join("busybox");
    support::busybox_rootfs(&busybox_root);
    let busybox = support::push_rootfs_image(&registry, "test/busybox:1", &busybox_root);
    let base = support::debian::push_debian_image(&registry, "test/debian:bookworm");
    let mut bench = Bench::with_base(registry, base, work);
    bench.store = support::debian::shared_store();
    // The docker-archive would copy the 63 MB base layer once more; podman runs the layout.
    bench.write_tar = false;
    warm_up(&bench);
    (bench, busybox.reference)
}

/// Unpacks the base into the shared store once, before the tests' builds run side by side
/// (each would otherwise unpack it at the same time, on a machine of two cores).
fn warm_up(bench: &Bench) {
    static WARM: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut warm = WARM.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !*warm {
        let built = bench.build("FROM BASE\nRUN true\n", ZSTD).success();
        print_measurements("warm-up", &built);
        *warm = true;
    }
}

/// Prints the builder's own per-step measurements (unpack, run, snapshot, layer).
fn print_measurements(name: &str, build: &bench::Build) {
    eprintln!("{name}: build took {:.1?}", build.elapsed);
    for line in build.stderr.lines().filter(|l| l.contains("snapshot")) {
        eprintln!("{name}: {line}");
    }
}

#[test]
fn apt_get_installs_a_package_from_the_mirror() {
    let (bench, _) = debian_bench();
    let built = bench
        .build(
            "FROM BASE\n\
             RUN apt-get update && apt-get install -y --no-install-recommends hello \
             && apt-get clean && rm -rf /var/lib/apt/lists/*\n\
             RUN hello > /greeting.txt && dpkg-query -W -f='${Status}' hello > /status.txt\n",
            ZSTD,
        )
        .success();
    print_measurements("apt", &built);
    let files = built.files();
    assert_eq!(files.text("greeting.txt"), "Hello, world!\n");
    assert_eq!(files.text("status.txt"), "install ok installed");
    let layers = built.layers();
    let install = &layers[1];
    assert!(
        install
            .iter()
            .any(|e| e.path == "usr/bin/hello" && e.kind == LayerKind::File),
        "the install step's layer has the program"
    );
    assert!(
        !install
            .iter()
            .any(|e| e.path.starts_with("var/lib/apt/lists/")
                && !e.path.ends_with(".wh..wh..opq")
                && !e.path.contains("/.wh.")
                && e.kind == LayerKind::File),
        "files removed in the same step are not in its layer"
    );
    assert_eq!(
        built.podman_run(&["hello", "-g", "under podman"]),
        "under podman\n"
    );
}

/// The `security.capability` value `setcap cap_net_bind_service+ep` writes: VFS revision 2
/// with the effective bit, bit 10 permitted, nothing inheritable (little-endian words).
const NET_BIND_SERVICE_EP: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

#[test]
fn setcap_file_capabilities_are_captured_in_the_layer() {
    let (bench, _) = debian_bench();
    let built = bench
        .build(
            "FROM BASE\n\
             RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
             && apt-get clean && rm -rf /var/lib/apt/lists/*\n\
             RUN cp /bin/true /usr/local/bin/captest \
             && setcap cap_net_bind_service+ep /usr/local/bin/captest\n",
            ZSTD,
        )
        .success();
    print_measurements("setcap", &built);
    let layer = built.last_layer();
    let captest = &layer["usr/local/bin/captest"];
    assert_eq!(captest.kind, LayerKind::File);
    assert_eq!(
        captest.xattrs.get("security.capability").map(Vec::as_slice),
        Some(NET_BIND_SERVICE_EP.as_slice()),
        "the capability xattr is in the layer: {:?}",
        captest.xattrs
    );
    let paths: Vec<&String> = layer.keys().collect();
    assert_eq!(
        paths,
        ["usr", "usr/local", "usr/local/bin", "usr/local/bin/captest"],
        "only the new file and its parents"
    );
    assert_eq!(
        built.podman_run(&["getcap", "/usr/local/bin/captest"]),
        "/usr/local/bin/captest cap_net_bind_service=ep\n",
        "a runtime applies the capability from the layer"
    );
}

const HELLO_C: &str = r#"#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello from a static binary built by RUN, %d argument(s)\n", argc - 1);
    return 0;
}
"#;

#[test]
fn a_c_program_built_in_a_debian_stage_runs_on_busybox_under_podman() {
    let (mut bench, busybox) = debian_bench();
    // The final image is busybox and one binary: small, and run from a docker-archive as
    // `podman load` users would.
    bench.write_tar = true;
    let dockerfile = format!(
        "FROM BASE AS build\n\
         RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
         && apt-get clean && rm -rf /var/lib/apt/lists/*\n\
         WORKDIR /src\n\
         COPY hello.c .\n\
         RUN gcc -static -O2 -o /usr/local/bin/hello hello.c && /usr/local/bin/hello\n\
         FROM {busybox}\n\
         COPY --from=build /usr/local/bin/hello /usr/local/bin/hello\n\
         CMD [\"/usr/local/bin/hello\"]\n"
    );
    let built = bench
        .build_context(&dockerfile, &[("hello.c", HELLO_C)], ZSTD)
        .success();
    print_measurements("c-build", &built);
    assert!(
        built
            .stderr
            .contains("hello from a static binary built by RUN, 0 argument(s)"),
        "the program ran in the builder stage:\n{}",
        built.stderr
    );
    let layers = built.layers();
    assert_eq!(layers.len(), 2, "busybox plus the copied binary");
    let copied: Vec<&str> = layers[1].iter().map(|e| e.path.as_str()).collect();
    assert!(copied.contains(&"usr/local/bin/hello"), "{copied:?}");
    assert!(
        !built
            .tree()
            .files
            .keys()
            .any(|p| p.starts_with("usr/lib/gcc")),
        "nothing of the builder stage but the binary"
    );
    assert_eq!(
        bench::podman_run_archive(&built.tar, &[]),
        "hello from a static binary built by RUN, 0 argument(s)\n"
    );
    assert_eq!(
        built.podman_run(&["/usr/local/bin/hello", "a", "b"]),
        "hello from a static binary built by RUN, 2 argument(s)\n"
    );
}

/// The issue's figure: a step that touches 10 files on a Debian root of about 170 MB; the
/// builder's own measurement of its snapshot is printed (not asserted: the VM is noisy).
#[test]
fn a_small_step_on_a_large_root_snapshots_only_what_it_touched() {
    let (bench, _) = debian_bench();
    let built = bench
        .build(
            "FROM BASE\n\
             RUN for i in 0 1 2 3 4 5 6 7 8 9; do echo $i > /opt/touched-$i; done\n",
            ZSTD,
        )
        .success();
    print_measurements("ten-files", &built);
    let layer = built.last_layer();
    let paths: Vec<&String> = layer.keys().collect();
    assert_eq!(paths.len(), 11, "`opt` and the ten files: {paths:?}");
    assert_eq!(built.files().text("opt/touched-7"), "7\n");
}

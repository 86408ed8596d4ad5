//! The `build` command end to end: reproducible digests, a COPY-only build that never
//! reads or unpacks its base twice, named build contexts and zstd layers.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::Registry;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rust-image-action"))
}

/// Runs `rust-image-action build ARGS`; returns the digest it printed.
fn build(args: &[&str]) -> String {
    let output = binary()
        .arg("build")
        .args(args)
        .output()
        .expect("the binary runs");
    assert_success(&output, args);
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn assert_success(output: &Output, args: &[&str]) {
    assert!(
        output.status.success(),
        "build {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("readable example") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// Sets every file's modification time below `dir` to `seconds`.
fn touch_all(dir: &Path, seconds: i64) {
    let status = Command::new("find")
        .arg(dir)
        .args([
            "-exec",
            "touch",
            "-h",
            "-d",
            &format!("@{seconds}"),
            "{}",
            "+",
        ])
        .status()
        .expect("find runs");
    assert!(status.success(), "touch failed");
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn same_inputs_give_the_same_digest_whatever_the_file_times() {
    let work = tempfile::tempdir().expect("temp dir");
    let context = work.path().join("context");
    copy_tree(&example("site"), &context);
    let context = context.to_str().expect("utf-8 path");
    let first_cache = work.path().join("cache-1");
    let second_cache = work.path().join("cache-2");

    touch_all(Path::new(context), 1_800_000_000);
    let first = build(&[
        context,
        "--source-date-epoch",
        "1700000000",
        "--cache-dir",
        first_cache.to_str().expect("utf-8"),
    ]);
    touch_all(Path::new(context), 1_900_000_000);
    let second = binary()
        .arg("build")
        .args([
            context,
            "--cache-dir",
            second_cache.to_str().expect("utf-8"),
        ])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("the binary runs");
    assert_success(&second, &[context]);
    let second = String::from_utf8_lossy(&second.stdout).trim().to_string();
    assert!(first.starts_with("sha256:"), "digest printed: {first}");
    assert_eq!(
        first, second,
        "two builds of the same inputs must give the same digest"
    );

    // Without the epoch the clock shows through, so the digest changes.
    let third_cache = work.path().join("cache-3");
    let third = build(&[context, "--cache-dir", third_cache.to_str().expect("utf-8")]);
    assert_ne!(first, third, "without SOURCE_DATE_EPOCH times are real");
}

/// Writes `size` bytes of a fixed pseudo-random pattern (incompressible enough that the
/// layer is large).
fn write_noise(path: &Path, size: usize) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    std::fs::write(path, bytes).expect("write noise");
}

fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            total += if metadata.is_dir() {
                tree_size(&entry.path())
            } else {
                metadata.len()
            };
        }
    }
    total
}

#[test]
fn copy_only_build_reads_the_base_once_and_never_unpacks_it() {
    let registry = Registry::start_open();
    let work = tempfile::tempdir().expect("temp dir");
    let rootfs = work.path().join("rootfs");
    support::busybox_rootfs(&rootfs);
    write_noise(&rootfs.join("big.bin"), 24 << 20);
    let base = support::push_rootfs_image(&registry, "big/base:1", &rootfs);
    let context = work.path().join("context");
    std::fs::create_dir_all(&context).expect("context");
    write_noise(&context.join("app.bin"), 2 << 20);
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY --chown=app app.bin /opt/app/\nWORKDIR /opt/app\n",
            base.reference
        ),
    )
    .expect("Dockerfile");
    let cache = work.path().join("cache");
    let args = [
        context.to_str().expect("utf-8"),
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "--source-date-epoch",
        "0",
    ];
    let first = build(&args);
    assert_eq!(
        registry.blob_downloads("big/base"),
        2,
        "config and layer fetched once each"
    );

    // The base layer streamed through the header indexer: its bytes were never stored.
    let manifest: serde_json::Value = serde_json::from_slice(&base.manifest).expect("json");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest");
    let layer_size = manifest["layers"][0]["size"].as_u64().expect("layer size");
    let blob = cache
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    assert!(!blob.exists(), "the base layer was written to the store");
    let stored = tree_size(&cache);
    assert!(
        stored < layer_size / 4,
        "the store holds {stored} bytes for a {layer_size} byte base"
    );

    // A rebuild reads nothing of the base again, from the registry or anywhere else.
    let second = build(&args);
    assert_eq!(first, second, "the same inputs give the same image");
    assert_eq!(
        registry.blob_downloads("big/base"),
        2,
        "nothing downloaded again"
    );
    let leftovers = std::fs::read_dir(cache.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "no temporary files are left in the store");

    // An output that carries the base's bytes fetches them then, once.
    let tar = work.path().join("image.tar");
    let mut with_tar = args.to_vec();
    with_tar.extend(["--tar", tar.to_str().expect("utf-8")]);
    let third = build(&with_tar);
    assert_eq!(first, third);
    assert_eq!(
        registry.blob_downloads("big/base"),
        3,
        "the layer is fetched for the archive"
    );
    assert!(
        blob.exists(),
        "the layer is in the store once an output needed it"
    );
    let tree = support::image_tree::ImageTree::from_docker_archive(&tar).expect("archive");
    let big = tree
        .file("/big.bin")
        .expect("the base's files are in the archive");
    assert_eq!(big.size, 24 << 20);
    let app = tree.file("/opt/app/app.bin").expect("the copied file");
    assert_eq!(
        (app.uid, app.gid),
        (1000, 1000),
        "--chown=app resolved from the base's passwd"
    );
}

#[test]
fn an_oci_layout_and_a_directory_serve_as_named_contexts() {
    let work = tempfile::tempdir().expect("temp dir");
    let cache = work.path().join("cache");
    let cache = cache.to_str().expect("utf-8");
    let layout = work.path().join("layout");
    let layout_text = layout.to_str().expect("utf-8");
    let site = example("site");
    let site_digest = build(&[
        site.to_str().expect("utf-8"),
        "-t",
        "site:v1",
        "--oci-layout",
        layout_text,
        "--cache-dir",
        cache,
    ]);
    assert!(site_digest.starts_with("sha256:"));

    let context = work.path().join("context");
    let assets = work.path().join("assets");
    std::fs::create_dir_all(&context).expect("context");
    std::fs::create_dir_all(assets.join("img")).expect("assets");
    std::fs::write(assets.join("img/logo.txt"), "logo").expect("asset");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM site AS app\nCOPY --from=assets img/ /srv/www/img/\nFROM base-dir AS unused\n",
    )
    .expect("Dockerfile");
    let tar = work.path().join("out.tar");
    let out_layout = work.path().join("out-layout");
    build(&[
        context.to_str().expect("utf-8"),
        "--target",
        "app",
        "--build-context",
        &format!("site=oci-layout://{layout_text}:v1"),
        "--build-context",
        &format!("assets={}", assets.display()),
        "--tar",
        tar.to_str().expect("utf-8"),
        "--oci-layout",
        out_layout.to_str().expect("utf-8"),
        "--cache-dir",
        cache,
    ]);
    let tree = support::image_tree::ImageTree::from_docker_archive(&tar).expect("readable archive");
    assert!(
        tree.file("/srv/www/index.html").is_some(),
        "the layout's files are the base"
    );
    assert!(
        tree.file("/srv/www/img/logo.txt").is_some(),
        "the directory context was copied"
    );
}

#[test]
fn zstd_layers_are_valid_for_skopeo() {
    let work = tempfile::tempdir().expect("temp dir");
    let layout = work.path().join("layout");
    let digest = build(&[
        example("site").to_str().expect("utf-8"),
        "-t",
        "site:zstd",
        "--compression",
        "zstd",
        "--oci-layout",
        layout.to_str().expect("utf-8"),
        "--cache-dir",
        work.path().join("cache").to_str().expect("utf-8"),
    ]);
    let reference = format!("oci:{}:zstd", layout.display());
    let raw = support::run(support::skopeo().args(["inspect", "--raw", &reference]));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest json");
    let media_type = manifest["layers"][0]["mediaType"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
    let inspected = support::run(support::skopeo().args(["inspect", &reference]));
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("json");
    assert_eq!(inspected["Digest"].as_str(), Some(digest.as_str()));
}

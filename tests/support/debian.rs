//! A real Debian root: `mmdebstrap --variant=minbase` of bookworm from the machine's own apt
//! mirror, built once into `CARGO_TARGET_TMPDIR` (under a file lock, written to a temporary
//! name and renamed) and reused by every test and every later run; pushed to a test registry
//! from an OCI layout made once beside it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rustix::fs::FlockOperation;

use super::image::{PushedImage, inspect_raw};
use super::registry::Registry;
use super::tools::{require_tool, run, skopeo};
use rust_image_action::oci::digest::Digest;
use rust_image_action::platform::Platform;

/// The suite every Debian test image is made of.
const SUITE: &str = "bookworm";

/// The tag of the image inside the cached OCI layout.
const LAYOUT_TAG: &str = "minbase";

/// Where the cached root and its layout live: the cargo target's scratch directory, which
/// survives between runs and is shared by every test crate.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The cached `debian-bookworm-minbase.tar`, built on first use (about 30 to 55 s) and
/// reused afterwards; concurrent tests wait for the one that builds it.
pub fn debian_rootfs_tar() -> PathBuf {
    let dir = cache_dir();
    let tar = dir.join(format!("debian-{SUITE}-minbase.tar"));
    let _lock = lock(&dir);
    if !tar.is_file() {
        build_rootfs_tar(&tar);
    }
    tar
}

/// Pushes the cached Debian root as a one-layer image `registry/repo_tag`
/// (`test/debian:bookworm`); the gzipped layer is made once and kept in a cached layout.
pub fn push_debian_image(registry: &Registry, repo_tag: &str) -> PushedImage {
    let layout = debian_layout();
    let reference = format!("{}/{repo_tag}", registry.addr());
    let mut copy = skopeo();
    copy.args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{LAYOUT_TAG}", layout.display()))
        .arg(format!("docker://{reference}"));
    run(&mut copy);
    let manifest = inspect_raw(&reference);
    let repository = repo_tag
        .rsplit_once(':')
        .map_or(repo_tag, |(repo, _)| repo)
        .to_string();
    PushedImage {
        digest: Digest::of(&manifest).to_string(),
        reference,
        repository,
        manifest,
    }
}

/// The cached OCI layout holding the Debian root as one gzipped layer.
fn debian_layout() -> PathBuf {
    let tar = debian_rootfs_tar();
    let dir = cache_dir();
    let layout = dir.join(format!("debian-{SUITE}-minbase.oci"));
    let _lock = lock(&dir);
    if layout.join("index.json").is_file() {
        return layout;
    }
    require_tool("umoci");
    let partial = dir.join(format!("debian-{SUITE}-minbase.oci.partial"));
    fs::remove_dir_all(&partial).ok();
    let image = format!("{}:{LAYOUT_TAG}", partial.display());
    let tar_text = tar.to_string_lossy().into_owned();
    let arch = Platform::host().architecture;
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&partial));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args(["raw", "add-layer", "--image", &image, &tar_text]));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--os",
        "linux",
        "--architecture",
        &arch,
        "--config.cmd",
        "/bin/bash",
        "--config.env",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]));
    fs::rename(&partial, &layout).unwrap_or_else(|e| {
        panic!(
            "failed to rename `{}` to `{}`: {e}",
            partial.display(),
            layout.display()
        )
    });
    layout
}

#[allow(
    clippy::print_stderr,
    reason = "building the cached root takes half a minute: the test log says why"
)]
/// Runs mmdebstrap into a temporary name beside `tar`, then renames it into place, so an
/// interrupted build never leaves a truncated root that later runs would trust.
fn build_rootfs_tar(tar: &Path) {
    let program = require_tool("mmdebstrap");
    let mirror = mirror();
    let partial = tar.with_extension("tar.partial");
    fs::remove_file(&partial).ok();
    let started = Instant::now();
    run(Command::new(program)
        .args(["--quiet", "--variant=minbase", "--format=tar", SUITE])
        .arg(&partial)
        .arg(&mirror));
    fs::rename(&partial, tar).unwrap_or_else(|e| {
        panic!(
            "failed to rename `{}` to `{}`: {e}",
            partial.display(),
            tar.display()
        )
    });
    eprintln!(
        "built the Debian {SUITE} minbase root from {mirror} in {:.1?}",
        started.elapsed()
    );
}

/// The machine's Debian mirror: the first `URIs:` of a deb822 `.sources` file whose suites
/// include bookworm, else the first matching `deb` line of `sources.list`.
pub fn mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        paths.sort();
        for path in paths {
            if path.extension().is_some_and(|ext| ext == "sources") {
                texts.push(fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    for text in &texts {
        // Stanzas are separated by blank lines; the security archive has other suites.
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::trim)
            };
            let suites = field("Suites:").unwrap_or_default();
            if suites.split_whitespace().any(|suite| suite == SUITE)
                && let Some(uri) = field("URIs:").and_then(|u| u.split_whitespace().next())
            {
                return uri.to_string();
            }
        }
    }
    let list = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for line in list.lines() {
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|word| !word.starts_with('['))
            .collect();
        if let ["deb", uri, suite, ..] = words.as_slice()
            && *suite == SUITE
        {
            return (*uri).to_string();
        }
    }
    panic!(
        "no apt source for `{SUITE}` in /etc/apt/sources.list.d/*.sources or \
         /etc/apt/sources.list: mmdebstrap needs a Debian mirror"
    );
}

/// Takes the exclusive lock that serializes building the cached files.
fn lock(dir: &Path) -> fs::File {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("failed to create `{}`: {e}", dir.display()));
    let path = dir.join("debian.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("failed to open `{}`: {e}", path.display()));
    rustix::fs::flock(&file, FlockOperation::LockExclusive)
        .unwrap_or_else(|e| panic!("failed to lock `{}`: {e}", path.display()));
    file
}

/// The store every Debian RUN test shares, across tests and across runs, so the 170 MB root
/// is unpacked once (about 40 s for a debug build) rather than once per test. Pruned once per
/// test process, under the lock, of everything but the base: its blobs, its unpacked layer
/// and the store's small metadata.
pub fn shared_store() -> PathBuf {
    static PRUNED: std::sync::Once = std::sync::Once::new();
    let layout = debian_layout();
    let dir = cache_dir();
    let store = dir.join(format!("debian-{SUITE}-run-store"));
    PRUNED.call_once(|| {
        let _lock = lock(&dir);
        prune_store(&store, &layout);
    });
    store
}

/// Removes from `store` what earlier runs' builds added: every blob and unpacked layer that
/// is not the cached base's, cache mounts and temporary leftovers.
fn prune_store(store: &Path, layout: &Path) {
    let index = read_json(&layout.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("a manifest in the Debian layout")
        .to_string();
    let blob = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        read_json(&layout.join("blobs/sha256").join(hex))
    };
    let manifest = blob(&manifest_digest);
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config = blob(config_digest);
    let mut keep_blobs: Vec<String> = vec![config_digest.to_string()];
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        keep_blobs.push(layer["digest"].as_str().unwrap_or_default().to_string());
    }
    let keep_blobs: Vec<String> = keep_blobs
        .iter()
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    // A one-layer base's chain id is its diff id.
    let keep_unpacked: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .take(1)
        .filter_map(|d| d.as_str())
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    let Ok(listing) = fs::read_dir(store) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        match name.as_str() {
            "meta" => {}
            "blobs" => remove_all_but(&path.join("sha256"), &keep_blobs),
            "unpacked" => remove_all_but(&path, &keep_unpacked),
            _ => remove(&path),
        }
    }
}

fn remove_all_but(dir: &Path, keep: &[String]) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            remove(&entry.path());
        }
    }
}

fn remove(path: &Path) {
    let result = if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    result.unwrap_or_else(|e| panic!("failed to remove `{}`: {e}", path.display()));
}

fn read_json(path: &Path) -> serde_json::Value {
    let bytes =
        fs::read(path).unwrap_or_else(|e| panic!("failed to read `{}`: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("`{}`: {e}", path.display()))
}

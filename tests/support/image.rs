//! Pushing test images into a [`Registry`]: layers are tarred from directories, assembled
//! into an OCI layout with `umoci`, and copied with `skopeo`; a multi-platform variant
//! writes its image index by hand around per-architecture configs of the same layers.

use std::fs;
use std::path::Path;
use std::process::Command;

use rust_image_action::oci::digest::Digest;
use rust_image_action::platform::Platform;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::registry::Registry;
use super::tools::{require_tool, run, skopeo};

/// An image in the registry.
#[derive(Clone, Debug)]
pub struct PushedImage {
    /// `ADDR/REPO:TAG`.
    pub reference: String,
    /// `REPO`.
    pub repository: String,
    /// The digest of the manifest the registry serves (`sha256:...`).
    pub digest: String,
    /// The raw manifest, as `skopeo inspect --raw` shows it.
    pub manifest: Vec<u8>,
}

/// A multi-platform image (an OCI image index) in the registry.
#[derive(Clone, Debug)]
pub struct PushedIndex {
    /// `ADDR/REPO:TAG`.
    pub reference: String,
    /// `REPO`.
    pub repository: String,
    /// The digest of the index (`sha256:...`).
    pub digest: String,
    /// The platforms in the index (`linux/arm64/v8`) with their manifest digests, in order.
    pub platforms: Vec<(String, String)>,
}

/// Ref name under which umoci keeps the image being assembled.
const BASE: &str = "base";

/// Pushes a one-layer image of `rootfs_dir` as `registry/repo_tag` (`test/busybox:1`).
pub fn push_rootfs_image(registry: &Registry, repo_tag: &str, rootfs_dir: &Path) -> PushedImage {
    push_image(registry, repo_tag, &[rootfs_dir])
}

/// Pushes an image with one layer per directory in `layers` (lowest first), for the host's
/// architecture, with `CMD ["/bin/sh"]`.
pub fn push_image(registry: &Registry, repo_tag: &str, layers: &[&Path]) -> PushedImage {
    push_layout(registry, repo_tag, Layout::build(layers))
}

/// Pushes an image whose layers are the given tar files, as they are (lowest first): for
/// layers written by other tools, such as `tar -C DIR -cf LAYER.tar .` with its `./` entry.
pub fn push_tar_image(registry: &Registry, repo_tag: &str, tars: &[&Path]) -> PushedImage {
    push_layout(registry, repo_tag, Layout::from_tars(tars))
}

fn push_layout(registry: &Registry, repo_tag: &str, work: Layout) -> PushedImage {
    let arch = Platform::host().architecture;
    work.umoci(&[
        "config",
        "--image",
        &work.image(BASE),
        "--os",
        "linux",
        "--architecture",
        &arch,
    ]);
    let reference = format!("{}/{repo_tag}", registry.addr());
    copy(&work.image(BASE), &reference, false);
    let manifest = inspect_raw(&reference);
    PushedImage {
        repository: repository_of(repo_tag),
        digest: Digest::of(&manifest).to_string(),
        reference,
        manifest,
    }
}

/// Pushes an OCI image index as `registry/repo_tag` with one image per platform of
/// `linux/amd64`, `linux/arm64/v8` and `linux/arm/v7`, all sharing the layer of `rootfs_dir`
/// (only their configs' architectures differ: nothing here runs the foreign ones), plus an
/// `unknown/unknown` attestation-style entry such as BuildKit adds.
pub fn push_multi_platform_image(
    registry: &Registry,
    repo_tag: &str,
    rootfs_dir: &Path,
) -> PushedIndex {
    let work = Layout::build(&[rootfs_dir]);
    let platforms = [("amd64", None), ("arm64", Some("v8")), ("arm", Some("v7"))];
    for (arch, _) in platforms {
        work.umoci(&[
            "config",
            "--image",
            &work.image(BASE),
            "--tag",
            arch,
            "--os",
            "linux",
            "--architecture",
            arch,
        ]);
    }
    let mut entries = Vec::new();
    let mut listed = Vec::new();
    for (arch, variant) in platforms {
        let mut descriptor = work.descriptor(arch);
        let mut platform = json!({"architecture": arch, "os": "linux"});
        if let Some(variant) = variant {
            platform["variant"] = json!(variant);
        }
        descriptor["platform"] = platform;
        let name = match variant {
            Some(variant) => format!("linux/{arch}/{variant}"),
            None => format!("linux/{arch}"),
        };
        listed.push((name, text(&descriptor["digest"])));
        entries.push(descriptor);
    }
    let mut attestation = work.descriptor("amd64");
    attestation["platform"] = json!({"architecture": "unknown", "os": "unknown"});
    attestation["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    entries.push(attestation);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let index_bytes = serde_json::to_vec(&index).unwrap_or_else(|e| panic!("index json: {e}"));
    let index_digest = work.add_ref(
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &index_bytes,
    );

    let reference = format!("{}/{repo_tag}", registry.addr());
    copy(&work.image("multi"), &reference, true);
    let served = Digest::of(&inspect_raw(&reference)).to_string();
    assert_eq!(
        served, index_digest,
        "the registry serves another index than was pushed"
    );
    PushedIndex {
        reference,
        repository: repository_of(repo_tag),
        digest: index_digest,
        platforms: listed,
    }
}

/// `skopeo inspect --raw` of `reference` (`ADDR/REPO:TAG` or `ADDR/REPO@DIGEST`).
pub fn inspect_raw(reference: &str) -> Vec<u8> {
    let mut command = skopeo();
    command.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    run(&mut command).stdout
}

fn copy(source: &str, reference: &str, all: bool) {
    let mut command = skopeo();
    command.args(["copy", "--quiet", "--dest-tls-verify=false"]);
    if all {
        command.arg("--all");
    }
    command
        .arg(format!("oci:{source}"))
        .arg(format!("docker://{reference}"));
    run(&mut command);
}

fn repository_of(repo_tag: &str) -> String {
    let name = repo_tag.split('@').next().unwrap_or(repo_tag);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => name.to_string(),
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
        .to_string()
}

/// An OCI layout being assembled in a temporary directory.
struct Layout {
    dir: TempDir,
}

impl Layout {
    /// `umoci init` + `umoci new`, then one `umoci raw add-layer` per directory.
    fn build(layers: &[&Path]) -> Layout {
        require_tool("tar");
        let layout = Layout::empty();
        for (i, source) in layers.iter().enumerate() {
            let tar = layout.dir.path().join(format!("layer-{i}.tar"));
            tar_directory(source, &tar);
            layout.add_layer(&tar);
        }
        layout
    }

    /// `umoci init` + `umoci new`, then one `umoci raw add-layer` per tar file.
    fn from_tars(tars: &[&Path]) -> Layout {
        let layout = Layout::empty();
        for tar in tars {
            layout.add_layer(tar);
        }
        layout
    }

    fn empty() -> Layout {
        require_tool("umoci");
        let dir = tempfile::Builder::new()
            .prefix("image-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("failed to create a temporary directory: {e}"));
        let layout = Layout { dir };
        let path = layout.path();
        layout.umoci(&["init", "--layout", &path]);
        layout.umoci(&["new", "--image", &layout.image(BASE)]);
        layout
    }

    fn add_layer(&self, tar: &Path) {
        let tar = tar.to_string_lossy().into_owned();
        self.umoci(&["raw", "add-layer", "--image", &self.image(BASE), &tar]);
    }

    fn path(&self) -> String {
        self.dir
            .path()
            .join("layout")
            .to_string_lossy()
            .into_owned()
    }

    fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.path())
    }

    fn umoci(&self, args: &[&str]) {
        run(Command::new("umoci").args(args));
    }

    fn index_path(&self) -> std::path::PathBuf {
        self.dir.path().join("layout/index.json")
    }

    fn read_index(&self) -> Value {
        let path = self.index_path();
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("failed to read index.json: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("invalid index.json: {e}"))
    }

    /// The descriptor `index.json` has for `tag`, without its ref-name annotation.
    fn descriptor(&self, tag: &str) -> Value {
        let index = self.read_index();
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let mut descriptor = manifests
            .into_iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no `{tag}` in the layout's index.json"));
        if let Some(object) = descriptor.as_object_mut() {
            object.remove("annotations");
        }
        descriptor
    }

    /// Stores `bytes` as a blob and names it `tag` in `index.json`; returns its digest.
    fn add_ref(&self, tag: &str, media_type: &str, bytes: &[u8]) -> String {
        let digest = Digest::of(bytes);
        let blob = self
            .dir
            .path()
            .join("layout/blobs/sha256")
            .join(digest.hex());
        fs::write(&blob, bytes).unwrap_or_else(|e| panic!("failed to write the blob: {e}"));
        let mut index = self.read_index();
        let entry = json!({
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        });
        match index["manifests"].as_array_mut() {
            Some(manifests) => manifests.push(entry),
            None => panic!("the layout's index.json has no `manifests`"),
        }
        let text = serde_json::to_vec(&index).unwrap_or_else(|e| panic!("index json: {e}"));
        fs::write(self.index_path(), text)
            .unwrap_or_else(|e| panic!("failed to write index.json: {e}"));
        digest.to_string()
    }
}

/// Tars the contents of `source` (not the directory itself) with numeric owners, entries
/// named without a `./` prefix as image builders write them.
fn tar_directory(source: &Path, tar: &Path) {
    let mut names: Vec<String> = fs::read_dir(source)
        .unwrap_or_else(|e| panic!("failed to list `{}`: {e}", source.display()))
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("failed to list a directory: {e}"));
            entry.file_name().to_string_lossy().into_owned()
        })
        .collect();
    names.sort();
    let mut command = Command::new("tar");
    command
        .arg("--create")
        .arg("--file")
        .arg(tar)
        .arg("--directory")
        .arg(source);
    command.args(["--numeric-owner", "--sort=name"]);
    if names.is_empty() {
        // GNU tar refuses to write an archive of nothing unless told where the names come from.
        command.args(["--files-from", "/dev/null"]);
    } else {
        command.arg("--").args(&names);
    }
    run(&mut command);
}

//! Pushes an image built by our binary to an open Distribution registry: skopeo sees its tags
//! and digest, podman pulls and runs it, a second push sends no blob bytes (only probes, the
//! manifest and the tags), and a push to another repository mounts the base layer.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use rust_image_action::oci::digest::Digest;
use rust_image_action::oci::{Descriptor, Manifest, media_types};
use rust_image_action::registry::auth::{Authenticator, Credential, CredentialSource};
use rust_image_action::registry::{
    ImageRef, PushBlob, PushOptions, PushReport, base_url, http_client, push_image_blocking,
};
use rust_image_action::store::Store;
use serde_json::Value;
use support::{Podman, Registry, busybox_rootfs, push_rootfs_image, run, skopeo};

/// Builds `context` with our binary; returns the manifest digest it prints.
fn build(context: &Path, layout: &Path, cache: &Path) -> Digest {
    let output = run(Command::new(env!("CARGO_BIN_EXE_rust-image-action"))
        .arg("build")
        .arg(context)
        .arg("--oci-layout")
        .arg(layout)
        .arg("--cache-dir")
        .arg(cache));
    let printed = String::from_utf8_lossy(&output.stdout);
    printed
        .trim()
        .parse()
        .expect("the build prints the manifest digest")
}

fn push(
    store: &Store,
    manifest: &Descriptor,
    blobs: &[PushBlob],
    reference: &str,
    tags: &[&str],
    options: &PushOptions,
) -> PushReport {
    let target = ImageRef::parse(reference).expect("valid reference");
    let auth = Authenticator::new(
        http_client(options).expect("client"),
        base_url(&target.registry, &options.insecure_registries),
        target.registry.clone(),
        CredentialSource {
            credential: Credential::Anonymous,
            origin: "anonymous".into(),
        },
    );
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    push_image_blocking(store, manifest, blobs, &target, &tags, &auth, options)
        .unwrap_or_else(|e| panic!("push to {reference} failed: {e}"))
}

fn requests_since(registry: &Registry, before: usize, method: &str) -> usize {
    let needle = format!("\"{method} /v2/");
    registry
        .log()
        .lines()
        .filter(|line| line.contains("HTTP/1.1\""))
        .skip(before)
        .filter(|line| line.contains(&needle))
        .count()
}

fn access_lines(registry: &Registry) -> usize {
    registry
        .log()
        .lines()
        .filter(|line| line.contains("HTTP/1.1\""))
        .count()
}

#[test]
fn pushes_a_built_image_that_skopeo_and_podman_accept() {
    let registry = Registry::start_open();
    let work = tempfile::tempdir().expect("work directory");
    let rootfs = work.path().join("rootfs");
    fs::create_dir(&rootfs).expect("rootfs directory");
    busybox_rootfs(&rootfs);
    let base = push_rootfs_image(&registry, "base/busybox:1", &rootfs);

    let context = work.path().join("context");
    fs::create_dir(&context).expect("context directory");
    fs::write(context.join("hello.txt"), "hello from a pushed image\n").expect("file");
    fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
            base.reference
        ),
    )
    .expect("Dockerfile");
    let cache = work.path().join("cache");
    let digest = build(&context, &work.path().join("layout"), &cache);

    let store = Store::open(&cache).expect("store");
    let bytes = store
        .read_blob(&digest)
        .expect("the manifest is in the store");
    let manifest = Descriptor::new(media_types::OCI_MANIFEST, &bytes);
    assert_eq!(manifest.digest, digest);
    let parsed = Manifest::from_slice(&bytes).expect("image manifest");
    let base_manifest = Manifest::from_slice(&base.manifest).expect("base manifest");
    let base_layers: Vec<Digest> = base_manifest.layers.iter().map(|l| l.digest).collect();
    let blobs: Vec<PushBlob> = parsed
        .layers
        .iter()
        .map(|layer| PushBlob {
            descriptor: layer.clone(),
            mount_from: base_layers
                .contains(&layer.digest)
                .then(|| base.repository.clone()),
        })
        .collect();
    assert!(
        blobs.iter().any(|b| b.mount_from.is_some()),
        "the base layer is reused"
    );

    let reference = format!("{}/app/hello:v1", registry.addr());
    let defaults = PushOptions::default();
    let first = push(
        &store,
        &manifest,
        &blobs,
        &reference,
        &["v1", "latest"],
        &defaults,
    );
    assert_eq!(first.manifest_digest, digest);
    assert_eq!(first.tags, ["v1", "latest"]);
    // The base layer is already in the registry, but under another repository.
    assert_eq!(first.blobs_mounted, 1, "{first:?}");
    assert_eq!(first.blobs_uploaded, 2, "config and our layer: {first:?}");
    assert!(first.blob_bytes_sent > 0);
    // 3 HEADs, 1 mount, POST + PUT for each of 2 uploads, the manifest, 2 tags.
    assert_eq!(first.requests, 11, "{first:?}");

    let inspected = run(skopeo()
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    let inspected: Value = serde_json::from_slice(&inspected.stdout).expect("inspect json");
    assert_eq!(
        inspected["Digest"].as_str(),
        Some(digest.to_string().as_str())
    );
    let tags = run(skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/app/hello", registry.addr())));
    let tags: Value = serde_json::from_slice(&tags.stdout).expect("tags json");
    let mut tags: Vec<&str> = tags["Tags"]
        .as_array()
        .expect("tag list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.sort();
    assert_eq!(tags, ["latest", "v1"]);

    let podman = Podman::new();
    run(podman
        .command()
        .args(["pull", "--tls-verify=false", &reference]));
    let ran = run(podman.command().args(["run", "--rm", &reference]));
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "hello from a pushed image\n"
    );

    // A re-push: every blob is probed and found; only the manifest and tags are written.
    let before = access_lines(&registry);
    let again = push(
        &store,
        &manifest,
        &blobs,
        &reference,
        &["v1", "latest"],
        &defaults,
    );
    assert_eq!(again.blob_bytes_sent, 0, "{again:?}");
    assert_eq!(
        (
            again.blobs_existing,
            again.blobs_uploaded,
            again.blobs_mounted
        ),
        (3, 0, 0)
    );
    assert_eq!(again.requests, 3 + 1 + 2, "3 HEADs, the manifest, 2 tags");
    assert_eq!(requests_since(&registry, before, "HEAD"), 3);
    assert_eq!(requests_since(&registry, before, "PUT"), 3);
    assert_eq!(requests_since(&registry, before, "POST"), 0);
    assert_eq!(requests_since(&registry, before, "PATCH"), 0);

    // Another repository of the same registry: the layers come by mount, not upload.
    let other_blobs: Vec<PushBlob> = parsed
        .layers
        .iter()
        .map(|layer| PushBlob {
            descriptor: layer.clone(),
            mount_from: Some("app/hello".to_string()),
        })
        .collect();
    let other = push(
        &store,
        &manifest,
        &other_blobs,
        &format!("{}/other/hello:v1", registry.addr()),
        &[],
        &defaults,
    );
    // 3 HEADs, 2 mounts, POST + PUT for the config, the manifest, 1 tag.
    assert_eq!(other.requests, 9, "{other:?}");
    assert_eq!(other.blobs_mounted, 2, "{other:?}");
    assert_eq!(
        other.blobs_uploaded, 1,
        "the config had no mount source: {other:?}"
    );
    assert_eq!(other.tags, ["v1"]);

    // Small chunks and no single-PUT uploads: the real registry accepts every Content-Range
    // and Location we send, and serves the result under the right digest.
    let chunked = PushOptions {
        chunk_size: 64 * 1024,
        monolithic_limit: 0,
        ..PushOptions::default()
    };
    let reference = format!("{}/chunked/hello:v1", registry.addr());
    let report = push(&store, &manifest, &[], &reference, &[], &chunked);
    assert_eq!(report.blobs_uploaded, 3, "{report:?}");
    let patches = registry
        .log()
        .lines()
        .filter(|line| line.contains("\"PATCH /v2/chunked/hello/blobs/uploads/"))
        .count();
    let biggest = parsed.layers.iter().map(|l| l.size).max().unwrap_or(0);
    assert!(patches as u64 > biggest / (64 * 1024), "{patches} PATCHes");
    let ran = run(podman
        .command()
        .args(["run", "--rm", "--tls-verify=false", &reference]));
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "hello from a pushed image\n"
    );
}

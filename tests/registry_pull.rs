//! Pulls real images from a local Distribution registry: digests agree with what the registry
//! serves (as `skopeo` reports it), blobs land verified in the store, a second pull downloads
//! no blob, platforms are picked from an index, and failures name registry and repository.

mod support;

use std::fs;
use std::io;
use std::path::Path;

use rust_image_action::oci::Descriptor;
use rust_image_action::oci::digest::{Digest, HashingWriter};
use rust_image_action::platform::Platform;
use rust_image_action::registry::{
    ImageRef, LayerFetch, PullOptions, PulledImage, RegistryError, pull_image_blocking,
};
use rust_image_action::store::Store;
use serde_json::Value;
use support::{
    Registry, busybox_rootfs, image::inspect_raw, push_image, push_multi_platform_image,
};
use tempfile::TempDir;

fn open_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary store directory");
    let store = Store::open(dir.path()).expect("store opens");
    (dir, store)
}

fn pull(store: &Store, reference: &str, platform: &str) -> Result<PulledImage, RegistryError> {
    let reference = ImageRef::parse(reference).expect("valid reference");
    let platform = Platform::parse(platform).expect("valid platform");
    let options = PullOptions {
        max_concurrent_layers: 2,
        ..PullOptions::default()
    };
    pull_image_blocking(store, &reference, &platform, &options)
}

/// Re-hashes the stored blob from disk: present, the right size, the right content.
fn assert_stored(store: &Store, descriptor: &Descriptor) {
    let mut file = store
        .open_blob(&descriptor.digest)
        .expect("blob is in the store");
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher).expect("blob reads");
    let (_, digest, size) = hasher.finish();
    assert_eq!(
        digest, descriptor.digest,
        "stored content of `{}`",
        descriptor.digest
    );
    assert_eq!(
        size, descriptor.size,
        "stored size of `{}`",
        descriptor.digest
    );
}

fn digest_text(value: &Value) -> String {
    value.as_str().expect("digest string").to_string()
}

fn layer_dir(name: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("layer directory");
    fs::create_dir(dir.path().join("etc")).expect("etc");
    fs::write(dir.path().join("etc").join(name), name).expect("layer file");
    dir
}

fn rootfs() -> TempDir {
    let dir = tempfile::tempdir().expect("rootfs directory");
    busybox_rootfs(dir.path());
    dir
}

#[test]
fn pulls_an_image_verified_and_reuses_the_store() {
    let mut registry = Registry::start_open();
    let rootfs = rootfs();
    let (one, two) = (layer_dir("layer-one"), layer_dir("layer-two"));
    let layers: [&Path; 3] = [rootfs.path(), one.path(), two.path()];
    let pushed = push_image(&registry, "test/busybox:1", &layers);
    let manifest: Value = serde_json::from_slice(&pushed.manifest).expect("manifest json");
    let (_dir, store) = open_store();

    let blobs_before = registry.blob_downloads("test/busybox");
    let pulled = pull(&store, &pushed.reference, "linux/amd64").expect("first pull");
    assert_eq!(pulled.manifest.digest.to_string(), pushed.digest);
    assert_eq!(pulled.manifest.size, pushed.manifest.len() as u64);
    assert_eq!(
        store
            .read_blob(&pulled.manifest.digest)
            .expect("manifest stored"),
        pushed.manifest
    );
    assert_eq!(
        pulled.config_descriptor.digest.to_string(),
        digest_text(&manifest["config"]["digest"])
    );
    let served_layers: Vec<String> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|layer| digest_text(&layer["digest"]))
        .collect();
    let pulled_layers: Vec<String> = pulled.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(pulled_layers, served_layers);
    assert_eq!(pulled.layers.len(), 3);
    assert_eq!(pulled.manifest_body.layers, pulled.layers);
    assert_eq!(pulled.config.rootfs.diff_ids.len(), 3);
    assert_eq!(pulled.config.architecture, Platform::host().architecture);
    assert_stored(&store, &pulled.config_descriptor);
    for layer in &pulled.layers {
        assert_stored(&store, layer);
    }
    let fetched = registry.blob_downloads("test/busybox") - blobs_before;
    assert_eq!(
        fetched, 4,
        "config and three layers are downloaded once each"
    );

    // The tag is resolved again, but every blob comes from the store.
    let manifests_before = registry.manifest_downloads("test/busybox");
    let again = pull(&store, &pushed.reference, "linux/amd64").expect("second pull");
    assert_eq!(again.manifest, pulled.manifest);
    assert_eq!(
        registry.blob_downloads("test/busybox") - blobs_before,
        4,
        "no blob twice"
    );
    assert_eq!(
        registry.manifest_downloads("test/busybox") - manifests_before,
        1
    );

    // A pinned digest whose content is all in the store needs no registry at all.
    registry.stop();
    let pinned = format!("{}/test/busybox@{}", registry.addr(), pushed.digest);
    let cached = pull(&store, &pinned, "linux/amd64").expect("by-digest pull from the store");
    assert_eq!(cached.manifest.digest, pulled.manifest.digest);
    assert_eq!(cached.layers, pulled.layers);
    assert_eq!(cached.reference.tag, None);

    let offline = pull(&store, &pushed.reference, "linux/amd64").expect_err("tag pull offline");
    let text = offline.to_string();
    assert!(
        text.contains(&format!("registry `{}`", registry.addr())),
        "{text}"
    );
    assert!(text.contains("repository `test/busybox`"), "{text}");
    assert!(text.contains("fetch manifest `1`"), "{text}");
    assert!(text.contains("hint: check that registry"), "{text}");
}

#[test]
fn picks_the_platform_manifest_from_an_index() {
    let registry = Registry::start_open();
    let rootfs = rootfs();
    let pushed = push_multi_platform_image(&registry, "test/multi:1", rootfs.path());
    let digest_of = |name: &str| {
        let found = pushed
            .platforms
            .iter()
            .find(|(platform, _)| platform == name);
        found
            .map(|(_, digest)| digest.clone())
            .expect("platform pushed")
    };
    let (_dir, store) = open_store();

    let cases = [
        ("linux/amd64", "linux/amd64", "amd64"),
        ("linux/arm64", "linux/arm64/v8", "arm64"),
        ("linux/arm64/v8", "linux/arm64/v8", "arm64"),
        ("linux/aarch64", "linux/arm64/v8", "arm64"),
        ("linux/arm/v7", "linux/arm/v7", "arm"),
        ("linux/arm", "linux/arm/v7", "arm"),
    ];
    for (requested, entry, architecture) in cases {
        let pulled = pull(&store, &pushed.reference, requested).expect("platform pull");
        let expected = digest_of(entry);
        assert_eq!(
            pulled.manifest.digest.to_string(),
            expected,
            "manifest for {requested}"
        );
        // What the registry serves under that digest is what was stored.
        let served = inspect_raw(&format!("{}/test/multi@{expected}", registry.addr()));
        assert_eq!(Digest::of(&served).to_string(), expected);
        assert_eq!(
            store.read_blob(&pulled.manifest.digest).expect("stored"),
            served
        );
        assert_eq!(
            pulled.config.architecture, architecture,
            "config for {requested}"
        );
        let platform = pulled
            .manifest
            .platform
            .as_ref()
            .expect("index entry platform");
        assert_eq!(platform.architecture, architecture);
        assert_stored(&store, &pulled.config_descriptor);
        for layer in &pulled.layers {
            assert_stored(&store, layer);
        }
    }
    let index: Digest = pushed.digest.parse().expect("index digest");
    assert_eq!(
        store.read_blob(&index).map(|b| Digest::of(&b)).ok(),
        Some(index)
    );

    let pinned = format!("{}/test/multi@{}", registry.addr(), pushed.digest);
    let pulled = pull(&store, &pinned, "linux/arm64").expect("pull pinned index");
    assert_eq!(
        pulled.manifest.digest.to_string(),
        digest_of("linux/arm64/v8")
    );

    let missing = pull(&store, &pushed.reference, "linux/s390x").expect_err("no s390x image");
    assert!(
        matches!(missing, RegistryError::NoMatchingPlatform { .. }),
        "{missing:?}"
    );
    let text = missing.to_string();
    assert!(text.contains("platform `linux/s390x`"), "{text}");
    assert!(
        text.contains("`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`"),
        "{text}"
    );
    assert!(
        !text.contains("unknown"),
        "attestation entries are not offered: {text}"
    );
    assert!(
        text.contains(&format!("registry `{}`", registry.addr())),
        "{text}"
    );
    assert!(text.contains("\nhint: "), "{text}");
}

#[test]
fn unknown_names_are_reported_with_registry_and_repository() {
    let registry = Registry::start_open();
    let only = layer_dir("only");
    let pushed = push_image(&registry, "test/tags:present", &[only.path()]);
    let (_dir, store) = open_store();

    let reference = format!("{}/no/such-repo:1", registry.addr());
    let error = pull(&store, &reference, "linux/amd64").expect_err("unknown repository");
    let text = error.to_string();
    assert!(
        text.contains(&format!("registry `{}`", registry.addr())),
        "{text}"
    );
    assert!(text.contains("repository `no/such-repo`"), "{text}");
    assert!(text.contains("hint: check the name"), "{text}");

    let reference = format!("{}/test/tags:absent", registry.addr());
    let error = pull(&store, &reference, "linux/amd64").expect_err("unknown tag");
    let text = error.to_string();
    assert!(text.contains("repository `test/tags`"), "{text}");
    assert!(
        text.contains("has no tag `absent`; it has `present`"),
        "{text}"
    );

    // The present tag pulls, so the failures above are about the names and nothing else.
    let pulled = pull(&store, &pushed.reference, "linux/amd64").expect("present tag");
    assert_eq!(pulled.manifest.digest.to_string(), pushed.digest);
}

#[test]
fn damaged_blobs_are_refused_and_not_stored() {
    let registry = Registry::start_open();
    let only = layer_dir("damaged");
    let pushed = push_image(&registry, "test/damaged:1", &[only.path()]);
    let manifest: Value = serde_json::from_slice(&pushed.manifest).expect("manifest json");
    let layer = digest_text(&manifest["layers"][0]["digest"]);
    // Same length, other bytes: only the digest check can tell.
    let path = registry.blob_data_path(&layer);
    let mut data = fs::read(&path).expect("registry blob data");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&path, &data).expect("damage the blob");
    let (dir, store) = open_store();

    let error = pull(&store, &pushed.reference, "linux/amd64").expect_err("damaged layer");
    let text = format!("{error}: {:?}", std::error::Error::source(&error));
    assert!(text.contains(&format!("layer `{layer}`")), "{text}");
    assert!(text.contains("repository `test/damaged`"), "{text}");
    let digest: Digest = layer.parse().expect("layer digest");
    assert!(!store.has(&digest), "a damaged blob must not be stored");
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("tmp")).expect("tmp").collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn index_only_pulls_verify_the_layer_and_store_no_bytes() {
    let registry = Registry::start_open();
    let only = layer_dir("indexed");
    let pushed = push_image(&registry, "test/indexed:1", &[only.path()]);
    let manifest: Value = serde_json::from_slice(&pushed.manifest).expect("manifest json");
    let layer: Digest = digest_text(&manifest["layers"][0]["digest"])
        .parse()
        .expect("digest");
    let reference = ImageRef::parse(&pushed.reference).expect("valid reference");
    let platform = Platform::parse("linux/amd64").expect("valid platform");
    let options = PullOptions {
        layers: LayerFetch::IndexOnly,
        ..PullOptions::default()
    };

    let (dir, store) = open_store();
    pull_image_blocking(&store, &reference, &platform, &options).expect("index-only pull");
    assert!(
        !store.has(&layer),
        "an index-only pull stores no layer bytes"
    );
    let index = rust_image_action::layer::index::index_layer(&store, &layer).expect("cached");
    assert!(
        !index.entries.is_empty(),
        "the index lists the layer's files"
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("tmp")).expect("tmp").collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // A damaged layer is refused in this mode too, and no index is kept for it.
    let path = registry.blob_data_path(&layer.to_string());
    let mut data = fs::read(&path).expect("registry blob data");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&path, &data).expect("damage the blob");
    let (_dir, fresh) = open_store();
    let error = pull_image_blocking(&fresh, &reference, &platform, &options)
        .expect_err("a damaged layer must fail");
    let text = format!("{error}: {:?}", std::error::Error::source(&error));
    assert!(text.contains(&layer.to_string()), "{text}");
    assert!(
        !rust_image_action::layer::index::has_index(&fresh, &layer),
        "no index kept"
    );
}

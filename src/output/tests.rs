//! Tests of the local outputs, including checks of what they wrote by skopeo.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use super::*;
use crate::oci::image::{ContainerConfig, ImageConfig, PlatformSpec, RootFs};

/// A small image in a store: one gzip layer holding `hello.txt`, and a config.
struct TestImage {
    manifest: Descriptor,
    manifest_bytes: Vec<u8>,
    config_bytes: Vec<u8>,
    layer: Digest,
    diff_id: Digest,
}

fn new_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("store")).expect("open store");
    (dir, store)
}

fn synthetic_image(store: &Store, label: &str) -> TestImage {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(label.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "hello.txt", label.as_bytes())
        .expect("tar entry");
    let tar = tar.into_inner().expect("tar");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&tar).expect("gzip");
    let gzip = gzip.finish().expect("gzip");
    let layer = store.write_blob(&gzip).expect("store layer");

    let host = Platform::host();
    let config = ImageConfig {
        created: Some("2024-01-01T00:00:00Z".into()),
        architecture: host.architecture.clone(),
        os: host.os.clone(),
        variant: (!host.variant.is_empty()).then(|| host.variant.clone()),
        config: ContainerConfig {
            env: Some(vec!["PATH=/bin".into()]),
            cmd: Some(vec!["/hello".into()]),
            labels: Some(BTreeMap::from([("test.label".into(), label.into())])),
            ..ContainerConfig::default()
        },
        rootfs: RootFs {
            diff_ids: vec![Digest::of(&tar)],
            ..RootFs::default()
        },
        ..ImageConfig::default()
    };
    let config_bytes = config.to_json_bytes().expect("config json");
    store.write_blob(&config_bytes).expect("store config");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.into()),
        config: Descriptor::new(media_types::OCI_CONFIG, &config_bytes),
        layers: vec![Descriptor::new(media_types::OCI_LAYER_GZIP, &gzip)],
        annotations: None,
    };
    let manifest_bytes = manifest.to_json_bytes().expect("manifest json");
    store.write_blob(&manifest_bytes).expect("store manifest");
    TestImage {
        manifest: Descriptor::new(media_types::OCI_MANIFEST, &manifest_bytes),
        manifest_bytes,
        config_bytes,
        layer,
        diff_id: Digest::of(&tar),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `(ref name, digest)` of each `index.json` entry, in order.
fn index_entries(dir: &Path) -> Vec<(Option<String>, Digest)> {
    let index = Index::from_slice(&fs::read(dir.join("index.json")).expect("read index.json"))
        .expect("parse index.json");
    index
        .manifests
        .iter()
        .map(|d| (d.ref_name().map(String::from), d.digest))
        .collect()
}

/// Runs skopeo; its absence fails the test, since these checks are the independent ones.
fn skopeo_output(args: &[&str]) -> std::process::Output {
    match Command::new("skopeo").args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            panic!("skopeo is not installed: run `apt-get install skopeo` to run these tests")
        }
        Err(e) => panic!("failed to run skopeo: {e}"),
    }
}

/// Runs skopeo, which must succeed, and returns its standard output.
fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = skopeo_output(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "skopeo {args:?} failed: {stderr}");
    output.stdout
}

#[test]
fn oci_layout_holds_the_image() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "one");
    let dir = tmp.path().join("out/layout");
    write_oci_layout(&dir, &store, &image.manifest, &[]).expect("write layout");

    assert_eq!(
        fs::read(dir.join("oci-layout")).expect("oci-layout"),
        OCI_LAYOUT
    );
    assert_eq!(
        index_entries(&dir),
        [(Some("latest".to_string()), image.manifest.digest)]
    );
    let mut expected = vec![
        image.manifest.digest.hex(),
        Digest::of(&image.config_bytes).hex(),
        image.layer.hex(),
    ];
    expected.sort();
    let blob_dir = dir.join("blobs/sha256");
    assert_eq!(
        names(&blob_dir),
        expected,
        "exactly the blobs, no temporary files"
    );
    assert_eq!(
        fs::read(blob_dir.join(image.manifest.digest.hex())).expect("read"),
        image.manifest_bytes
    );
    // Store and output share a file system here, so the blob must be a hard link.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let inode = |p: &Path| fs::metadata(p).expect("stat").ino();
        assert_eq!(
            inode(&blob_dir.join(image.layer.hex())),
            inode(&store.blob_path(&image.layer))
        );
    }
    // Rewriting the same layout is idempotent.
    write_oci_layout(&dir, &store, &image.manifest, &[]).expect("rewrite layout");
    assert_eq!(index_entries(&dir).len(), 1);
}

#[test]
fn copied_blobs_are_verified() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "copied");
    let blob_dir = tmp.path().join("copies");
    fs::create_dir(&blob_dir).expect("mkdir");
    // The copy path, taken across file systems, is forced here.
    place_blob(&store, &image.layer, &blob_dir, false).expect("copy");
    let copy = blob_dir.join(image.layer.hex());
    assert_eq!(
        fs::read(&copy).expect("read"),
        store.read_blob(&image.layer).expect("read")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = |p: &Path| fs::metadata(p).expect("stat");
        assert_ne!(
            meta(&copy).ino(),
            meta(&store.blob_path(&image.layer)).ino()
        );
        // 0644 under the umask, whatever it is: compare with a file made the ordinary way.
        let plain = tmp.path().join("plain");
        File::create(&plain).expect("create");
        let expected = meta(&plain).permissions().mode() & 0o644;
        assert_eq!(meta(&copy).permissions().mode() & 0o777, expected);
    }
    let config = Digest::of(&image.config_bytes);
    let mut damaged = image.config_bytes.clone();
    damaged[0] ^= 0xff;
    fs::write(store.blob_path(&config), &damaged).expect("damage");
    let error = place_blob(&store, &config, &blob_dir, false).expect_err("must fail");
    assert!(
        matches!(
            error,
            OutputError::Io {
                op: "copy blob from",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        names(&blob_dir),
        [image.layer.hex()],
        "damaged or temporary copy left"
    );
}

#[test]
fn existing_index_entries_are_kept_or_replaced_by_name() {
    let (tmp, store) = new_store();
    let first = synthetic_image(&store, "first");
    let second = synthetic_image(&store, "second");
    let dir = tmp.path().join("layout");
    fs::create_dir_all(&dir).expect("mkdir");
    // An entry without a name, as some tools write, must survive untouched.
    let unnamed = Index::new(vec![first.manifest.clone()]);
    fs::write(
        dir.join("index.json"),
        unnamed.to_json_bytes().expect("json"),
    )
    .expect("write");

    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    write_oci_layout(&dir, &store, &first.manifest, &names(&["v1", "keep", "v1"]))
        .expect("first write");
    write_oci_layout(&dir, &store, &second.manifest, &names(&["v1"])).expect("second write");
    let (a, b) = (first.manifest.digest, second.manifest.digest);
    assert_eq!(
        index_entries(&dir),
        [(None, a), (Some("keep".into()), a), (Some("v1".into()), b)]
    );
}

#[test]
fn broken_index_json_is_reported_not_replaced() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "image");
    let dir = tmp.path().join("layout");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("index.json"), "not json").expect("write");
    let error = write_oci_layout(&dir, &store, &image.manifest, &[]).expect_err("must fail");
    let expected = format!(
        "invalid JSON document `{}`",
        dir.join("index.json").display()
    );
    assert_eq!(error.to_string(), expected);
    assert_eq!(fs::read(dir.join("index.json")).expect("read"), b"not json");
    let error = import_oci_layout(&dir, None, &store).expect_err("must fail");
    assert_eq!(error.to_string(), expected);
}

#[test]
fn ref_names_follow_the_layout_grammar() {
    fn check(name: &str, valid: bool) {
        let result = check_ref_name(name);
        assert_eq!(result.is_ok(), valid, "{name:?}: {result:?}");
    }
    for name in [
        "latest",
        "v1.2.3",
        "example.com/app:1",
        "a--b",
        "x_y+z@w",
        "1",
    ] {
        check(name, true);
    }
    for name in [
        "", "-a", "a-", "a/", "/a", "a//b", "a---b", "a..b", "a b", "é",
    ] {
        check(name, false);
    }
}

#[test]
fn repo_tags_are_normalized() {
    fn check(input: &str, expected: Option<(&str, &str, &str)>) {
        let result = normalize_repo_tag(input);
        let got = result
            .as_ref()
            .ok()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()));
        assert_eq!(got, expected, "{input:?}: {result:?}");
    }
    check(
        "app",
        Some(("app:latest", "docker.io/library/app:latest", "latest")),
    );
    check("app:1", Some(("app:1", "docker.io/library/app:1", "1")));
    check("me/app:1", Some(("me/app:1", "docker.io/me/app:1", "1")));
    check(
        "example.com/app:1",
        Some(("example.com/app:1", "example.com/app:1", "1")),
    );
    check(
        "localhost:5000/a/b",
        Some((
            "localhost:5000/a/b:latest",
            "localhost:5000/a/b:latest",
            "latest",
        )),
    );
    for bad in [
        "",
        "App:1",
        "app:",
        "app:-x",
        "app@sha256:00",
        "a b",
        "a//b:1",
        "/a",
    ] {
        check(bad, None);
    }
}

#[test]
fn import_picks_the_named_image_and_verifies_blobs() {
    let (tmp, store) = new_store();
    let first = synthetic_image(&store, "first");
    let second = synthetic_image(&store, "second");
    let dir = tmp.path().join("layout");
    write_oci_layout(&dir, &store, &first.manifest, &["v1".into()]).expect("write");
    write_oci_layout(&dir, &store, &second.manifest, &["v2".into()]).expect("write");

    let target = Store::open(&tmp.path().join("target")).expect("open");
    let imported = import_oci_layout(&dir, Some("v2"), &target).expect("import");
    assert_eq!(imported.digest, second.manifest.digest);
    assert_eq!(imported.media_type, media_types::OCI_MANIFEST);
    assert_eq!(imported.ref_name(), Some("v2"));
    for digest in [
        second.manifest.digest,
        Digest::of(&second.config_bytes),
        second.layer,
    ] {
        assert!(target.has(&digest), "{digest} not imported");
    }
    assert!(!target.has(&first.layer));

    let error = |tag| {
        import_oci_layout(&dir, tag, &target)
            .expect_err("must fail")
            .to_string()
    };
    let shown = dir.display();
    assert_eq!(
        error(None),
        format!("`{shown}` holds several images, choose one of: `v1`, `v2`")
    );
    assert_eq!(
        error(Some("v3")),
        format!("no image named `v3` in `{shown}`, available: `v1`, `v2`")
    );
}

#[test]
fn import_refuses_a_damaged_blob() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "image");
    let dir = tmp.path().join("layout");
    write_oci_layout(&dir, &store, &image.manifest, &[]).expect("write");
    // Replace (not overwrite) the hard-linked layer, so the source store stays intact.
    let layer_path = dir.join("blobs/sha256").join(image.layer.hex());
    let mut damaged = fs::read(&layer_path).expect("read layer");
    damaged[0] ^= 0xff;
    fs::remove_file(&layer_path).expect("unlink");
    fs::write(&layer_path, &damaged).expect("write");

    let target = Store::open(&tmp.path().join("target")).expect("open");
    let error = import_oci_layout(&dir, None, &target).expect_err("must fail");
    assert!(
        matches!(&error, OutputError::Import { digest, source, .. }
            if *digest == image.layer && matches!(**source, StoreError::DigestMismatch { .. })),
        "{error:?}"
    );
    assert!(!target.has(&image.layer));
    assert!(
        !target.has(&image.manifest.digest),
        "manifest stored without its layers"
    );
    assert!(names(&target.root().join("tmp")).is_empty());
}

#[test]
fn import_follows_a_nested_index_to_the_host_platform() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "image");
    let dir = tmp.path().join("layout");
    write_oci_layout(&dir, &store, &image.manifest, &[]).expect("write");
    let other = PlatformSpec {
        architecture: "elsewhere".into(),
        os: "linux".into(),
        ..PlatformSpec::default()
    };
    let host = PlatformSpec::from_platform(&Platform::host());
    let child = |platform: &PlatformSpec| Descriptor {
        platform: Some(platform.clone()),
        ..image.manifest.clone()
    };
    let check = |children: Vec<Descriptor>, expected: Result<Digest, &str>| {
        let nested = Index::new(children).to_json_bytes().expect("json");
        fs::write(
            dir.join("blobs/sha256").join(Digest::of(&nested).hex()),
            &nested,
        )
        .expect("blob");
        let mut entry = Descriptor::new(media_types::OCI_INDEX, &nested);
        entry.annotations = Some(BTreeMap::from([(
            annotations::REF_NAME.into(),
            "multi".into(),
        )]));
        let index = Index::new(vec![entry]).to_json_bytes().expect("json");
        fs::write(dir.join("index.json"), index).expect("index.json");
        let target = Store::open(&tmp.path().join("target")).expect("open");
        let result = import_oci_layout(&dir, Some("multi"), &target);
        match (result, expected) {
            (Ok(desc), Ok(digest)) => {
                assert_eq!(desc.digest, digest);
                assert!(
                    desc.platform
                        .as_ref()
                        .is_some_and(|p| p.matches(&Platform::host()))
                );
            }
            (Err(error), Err(message)) => assert!(error.to_string().contains(message), "{error}"),
            (result, expected) => panic!("got {result:?}, expected {expected:?}"),
        }
    };
    check(vec![child(&other), child(&host)], Ok(image.manifest.digest));
    check(vec![child(&other)], Err("has no manifest for platform"));
}

#[test]
fn docker_archive_contents() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "archived");
    let path = tmp.path().join("image.tar");
    let tags = ["example.com/app:1".to_string(), "app".to_string()];
    write_docker_archive(&path, &store, &image.manifest, &tags).expect("write archive");
    assert_eq!(
        names(tmp.path()),
        ["image.tar", "store"],
        "temporary file left behind"
    );

    let mut archive = tar::Archive::new(File::open(&path).expect("open"));
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("read entry");
        files.insert(name, content);
    }
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let config = Digest::of(&image.config_bytes);
    let mut expected: Vec<String> = [
        "blobs/",
        "blobs/sha256/",
        "index.json",
        "manifest.json",
        "oci-layout",
    ]
    .map(String::from)
    .into();
    expected.extend([
        blob(&image.manifest.digest),
        blob(&config),
        blob(&image.layer),
    ]);
    expected.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), expected);
    assert_eq!(files[&blob(&config)], image.config_bytes);
    assert_eq!(
        files[&blob(&image.layer)],
        store.read_blob(&image.layer).expect("layer")
    );

    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    let expected = serde_json::json!([{
        "Config": blob(&config),
        "RepoTags": ["example.com/app:1", "app:latest"],
        "Layers": [blob(&image.layer)],
    }]);
    assert_eq!(manifest, expected);
    let index = Index::from_slice(&files["index.json"]).expect("index.json");
    let names: Vec<_> = index
        .manifests
        .iter()
        .map(|d| {
            (
                d.annotation(annotations::CONTAINERD_IMAGE_NAME),
                d.ref_name(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (Some("example.com/app:1"), Some("1")),
            (Some("docker.io/library/app:latest"), Some("latest"))
        ]
    );
}

#[test]
fn docker_archive_is_not_written_from_a_damaged_blob() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "damaged");
    let layer_path = store.blob_path(&image.layer);
    let mut bytes = fs::read(&layer_path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&layer_path, &bytes).expect("damage");
    let path = tmp.path().join("image.tar");
    let error = write_docker_archive(&path, &store, &image.manifest, &[]).expect_err("must fail");
    let chain = format!(
        "{error}: {}",
        std::error::Error::source(&error)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(chain.contains("blob digest mismatch"), "{chain}");
    assert_eq!(names(tmp.path()), ["store"], "partial archive left behind");
}

#[test]
fn docker_archive_needs_a_single_image() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "one");
    let index = Index::new(vec![image.manifest.clone()])
        .to_json_bytes()
        .expect("json");
    store.write_blob(&index).expect("store index");
    let path = tmp.path().join("image.tar");
    let desc = Descriptor::new(media_types::OCI_INDEX, &index);
    let error = write_docker_archive(&path, &store, &desc, &[]).expect_err("must fail");
    assert!(
        matches!(error, OutputError::UnsupportedMediaType { .. }),
        "{error:?}"
    );
    // The same index is fine as an OCI layout, which can hold several platforms.
    write_oci_layout(&tmp.path().join("layout"), &store, &desc, &[]).expect("layout of index");
    assert_eq!(names(&tmp.path().join("layout/blobs/sha256")).len(), 4);
}

#[test]
fn skopeo_reads_the_oci_layout() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "skopeo-oci");
    let dir = tmp.path().join("layout");
    write_oci_layout(&dir, &store, &image.manifest, &["v1".into()]).expect("write layout");
    let reference = format!("oci:{}:v1", dir.display());
    let raw = skopeo(&["inspect", "--raw", &reference]);
    assert_eq!(Digest::of(&raw), image.manifest.digest);
    let config = skopeo(&["inspect", "--raw", "--config", &reference]);
    assert_eq!(config, image.config_bytes);
}

#[test]
fn skopeo_reads_the_docker_archive() {
    let (tmp, store) = new_store();
    let image = synthetic_image(&store, "skopeo-archive");
    let path = tmp.path().join("image.tar");
    let tags = ["example.com/app:1".to_string(), "app:latest".to_string()];
    write_docker_archive(&path, &store, &image.manifest, &tags).expect("write archive");

    let info: Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", path.display()),
    ]))
    .expect("skopeo json");
    let host = Platform::host();
    assert_eq!(info["Architecture"], host.architecture.as_str());
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Labels"]["test.label"], "skopeo-archive");
    assert_eq!(info["Env"], serde_json::json!(["PATH=/bin"]));
    assert_eq!(info["Created"], "2024-01-01T00:00:00Z");
    // skopeo names docker-archive layers by their uncompressed digest.
    assert_eq!(
        info["Layers"],
        serde_json::json!([image.diff_id.to_string()])
    );

    // skopeo finds the image under each of its tags, and only under those.
    for tag in tags {
        let reference = format!("docker-archive:{}:{tag}", path.display());
        let config = skopeo(&["inspect", "--raw", "--config", &reference]);
        assert_eq!(config, image.config_bytes, "{tag}");
    }
    let unknown = format!("docker-archive:{}:example.com/other:1", path.display());
    assert!(
        !skopeo_output(&["inspect", "--raw", "--config", &unknown])
            .status
            .success()
    );
}

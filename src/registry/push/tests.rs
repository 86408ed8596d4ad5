//! Unit tests of the push against a scripted registry on 127.0.0.1: an in-memory model of
//! the distribution API (sessions with changing `Location`s, range checks, digest checks)
//! with per-test faults (statuses, connections reset mid-body) injected by request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::registry::auth::{Credential, CredentialSource};
use crate::registry::upload::retry_after;

/// A request as the scripted registry saw it; `body` is what it read (all of it, or the part
/// read before a reset).
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Seen {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    fn query(&self, key: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| percent_decode(v))
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// `METHOD path` with the `/v2/app/` prefix and digests shortened, for order checks.
    fn short(&self) -> String {
        format!("{} {}", self.method, self.path())
    }
}

/// A scripted reply that overrides the model.
enum Fault {
    /// Answer with this status and headers.
    Status(u16, Vec<(&'static str, String)>),
    /// Read this many body bytes (the model keeps them, as a registry that wrote them
    /// would), then drop the connection.
    ResetAfter(usize),
}

type FaultFn = dyn Fn(&Seen, &[Seen]) -> Option<Fault> + Send + Sync;

#[derive(Default)]
struct Model {
    blobs: HashMap<String, Vec<u8>>,
    mountable: HashSet<String>,
    sessions: HashMap<String, (Vec<u8>, u32)>,
    next_session: u32,
    manifests: Vec<(String, String, Vec<u8>)>,
}

struct Server {
    addr: String,
    model: Arc<Mutex<Model>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(fault: Box<FaultFn>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let model = Arc::new(Mutex::new(Model::default()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let fault: Arc<FaultFn> = Arc::from(fault);
        let (m, l) = (Arc::clone(&model), Arc::clone(&log));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (m, l, f) = (Arc::clone(&m), Arc::clone(&l), Arc::clone(&fault));
                tokio::spawn(async move { serve(stream, m, l, f).await });
            }
        });
        Server { addr, model, log }
    }

    fn log(&self) -> Vec<Seen> {
        // The authenticator's own `GET /v2/` is not the push's business.
        let log = self.log.lock().expect("log");
        log.iter().filter(|s| s.path() != "/v2/").cloned().collect()
    }

    fn add_blob(&self, bytes: &[u8]) {
        let mut model = self.model.lock().expect("model");
        model
            .blobs
            .insert(Digest::of(bytes).to_string(), bytes.to_vec());
    }
}

async fn serve(
    mut stream: TcpStream,
    model: Arc<Mutex<Model>>,
    log: Arc<Mutex<Vec<Seen>>>,
    fault: Arc<FaultFn>,
) {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut seen = Seen {
        method,
        target,
        headers,
        body: buffer[head_end..].to_vec(),
    };
    let earlier = log.lock().expect("log").clone();
    let scripted = fault(&seen, &earlier);
    let want = match scripted {
        Some(Fault::ResetAfter(n)) => n.min(length),
        _ => length,
    };
    while seen.body.len() < want {
        let mut chunk = vec![0u8; want - seen.body.len()];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.body.extend_from_slice(&chunk[..n]),
        }
    }
    seen.body.truncate(want);
    log.lock().expect("log").push(seen.clone());
    let (status, headers) = match scripted {
        Some(Fault::ResetAfter(_)) => {
            // The registry keeps what arrived, as Distribution writes bodies through.
            let mut model = model.lock().expect("model");
            if let Some((data, _)) = model.sessions.get_mut(session_id(&seen)) {
                data.extend_from_slice(&seen.body);
            }
            // Closing with unread data makes the kernel reset the connection.
            return;
        }
        Some(Fault::Status(status, headers)) => (status, headers),
        None => handle(&mut model.lock().expect("model"), &seen),
    };
    let mut reply = format!("HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        reply.push_str(&format!("{name}: {value}\r\n"));
    }
    reply.push_str("\r\n");
    stream.write_all(reply.as_bytes()).await.ok();
    stream.shutdown().await.ok();
}

fn session_id(seen: &Seen) -> &str {
    seen.path().rsplit('/').next().unwrap_or_default()
}

/// The model of the distribution API the push talks to.
fn handle(model: &mut Model, seen: &Seen) -> (u16, Vec<(&'static str, String)>) {
    let path = seen.path();
    let uploads = "/v2/app/blobs/uploads/";
    let location = |id: &str, state: u32| format!("{uploads}{id}?_state={state}");
    let range = |len: usize| format!("0-{}", len.saturating_sub(1));
    match (seen.method.as_str(), path) {
        ("GET", "/v2/") => (200, vec![]),
        ("HEAD", p) if p.starts_with("/v2/app/blobs/sha256:") => {
            let digest = p.trim_start_matches("/v2/app/blobs/");
            if model.blobs.contains_key(digest) {
                (200, vec![("Docker-Content-Digest", digest.to_string())])
            } else {
                (404, vec![])
            }
        }
        ("POST", p) if p == uploads => {
            if let Some(digest) = seen.query("mount")
                && seen.query("from").is_some()
                && model.mountable.contains(&digest)
            {
                model.blobs.insert(digest.clone(), Vec::new());
                return (201, vec![("Docker-Content-Digest", digest)]);
            }
            model.next_session += 1;
            let id = format!("s{}", model.next_session);
            model.sessions.insert(id.clone(), (Vec::new(), 0));
            (
                202,
                vec![("Location", location(&id, 0)), ("Range", range(0))],
            )
        }
        (method, p) if p.starts_with(uploads) => {
            let id = session_id(seen).to_string();
            let Some((data, state)) = model.sessions.get_mut(&id) else {
                return (404, vec![]);
            };
            // Like real registries, a stale `Location` is refused.
            if method != "GET" && seen.query("_state") != Some(state.to_string()) {
                return (400, vec![]);
            }
            match method {
                "GET" => (
                    204,
                    vec![
                        ("Location", location(&id, *state)),
                        ("Range", range(data.len())),
                    ],
                ),
                "PATCH" => {
                    let start = seen
                        .header("content-range")
                        .and_then(|r| r.split('-').next());
                    if start != Some(data.len().to_string().as_str()) {
                        return (416, vec![("Range", range(data.len()))]);
                    }
                    data.extend_from_slice(&seen.body);
                    *state += 1;
                    let headers = vec![
                        ("Location", location(&id, *state)),
                        ("Range", range(data.len())),
                    ];
                    (202, headers)
                }
                "PUT" => {
                    data.extend_from_slice(&seen.body);
                    let digest = Digest::of(data).to_string();
                    if seen.query("digest") != Some(digest.clone()) {
                        return (400, vec![]);
                    }
                    let data = std::mem::take(data);
                    model.sessions.remove(&id);
                    model.blobs.insert(digest.clone(), data);
                    (201, vec![("Docker-Content-Digest", digest)])
                }
                _ => (405, vec![]),
            }
        }
        ("PUT", p) if p.starts_with("/v2/app/manifests/") => {
            let reference = p.trim_start_matches("/v2/app/manifests/").to_string();
            let media_type = seen.header("content-type").unwrap_or_default().to_string();
            let digest = Digest::of(&seen.body).to_string();
            model
                .manifests
                .push((reference, media_type, seen.body.clone()));
            (201, vec![("Docker-Content-Digest", digest)])
        }
        _ => (404, vec![]),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
            out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An image in a temporary store: a config and layers of the given sizes.
struct Image {
    _dir: tempfile::TempDir,
    store: Store,
    manifest: Descriptor,
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
}

fn image(layer_sizes: &[usize]) -> Image {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layers: Vec<Vec<u8>> = layer_sizes
        .iter()
        .enumerate()
        .map(|(n, size)| {
            (0..*size)
                .map(|i| (i * 31 + n * 7 + i / 251) as u8)
                .collect()
        })
        .collect();
    store.write_blob(config).expect("config");
    let layer_descriptors: Vec<Descriptor> = layers
        .iter()
        .map(|l| {
            store.write_blob(l).expect("layer");
            Descriptor::new(media_types::OCI_LAYER_GZIP, l)
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": Descriptor::new(media_types::OCI_CONFIG, config),
        "layers": layer_descriptors,
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest json");
    store.write_blob(&bytes).expect("manifest");
    Image {
        _dir: dir,
        store,
        manifest: Descriptor::new(media_types::OCI_MANIFEST, &bytes),
        config: config.to_vec(),
        layers,
    }
}

fn options() -> PushOptions {
    PushOptions {
        max_concurrent_blobs: 2,
        chunk_size: 1000,
        monolithic_limit: 1500,
        max_retries: 3,
        ..PushOptions::default()
    }
}

async fn push_to(
    server: &Server,
    image: &Image,
    blobs: &[PushBlob],
    tags: &[&str],
    options: &PushOptions,
) -> Result<PushReport, RegistryError> {
    let target = ImageRef::parse(&format!("{}/app:latest", server.addr)).expect("reference");
    let http = http_client(options).expect("client");
    let auth = Authenticator::new(
        http,
        base_url(&target.registry, &[]),
        target.registry.clone(),
        CredentialSource {
            credential: Credential::Anonymous,
            origin: "anonymous".into(),
        },
    );
    let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    push_image(
        &image.store,
        &image.manifest,
        blobs,
        &target,
        &tags,
        &auth,
        options,
    )
    .await
}

fn no_faults() -> Box<FaultFn> {
    Box::new(|_, _| None)
}

fn count(log: &[Seen], method: &str, prefix: &str) -> usize {
    log.iter()
        .filter(|s| s.method == method && s.path().starts_with(prefix))
        .count()
}

fn assert_stored(server: &Server, bytes: &[u8]) {
    let model = server.model.lock().expect("model");
    let digest = Digest::of(bytes).to_string();
    assert_eq!(
        model.blobs.get(&digest).map(Vec::as_slice),
        Some(bytes),
        "blob {digest}"
    );
}

#[tokio::test]
async fn blobs_the_registry_has_are_only_probed() {
    let server = Server::start(no_faults()).await;
    let image = image(&[800]);
    server.add_blob(&image.config);
    server.add_blob(&image.layers[0]);
    let report = push_to(&server, &image, &[], &["v1"], &options())
        .await
        .expect("push");
    assert_eq!((report.blobs_existing, report.blobs_uploaded), (2, 0));
    assert_eq!(report.blob_bytes_sent, 0);
    let methods: Vec<String> = server.log().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "HEAD", "PUT", "PUT"]);
    assert_eq!(report.requests, 4);
}

#[tokio::test]
async fn mount_201_uploads_nothing() {
    let server = Server::start(no_faults()).await;
    let image = image(&[800]);
    server.add_blob(&image.config);
    let layer = Digest::of(&image.layers[0]);
    server
        .model
        .lock()
        .expect("model")
        .mountable
        .insert(layer.to_string());
    let blobs = [PushBlob {
        descriptor: Descriptor::new(media_types::OCI_LAYER_GZIP, &image.layers[0]),
        mount_from: Some("base/busybox".into()),
    }];
    let report = push_to(&server, &image, &blobs, &[], &options())
        .await
        .expect("push");
    assert_eq!(report.blobs_mounted, 1);
    assert_eq!(report.blob_bytes_sent, 0);
    let log = server.log();
    let mount = log
        .iter()
        .find(|s| s.method == "POST")
        .expect("mount request");
    assert_eq!(mount.query("mount"), Some(layer.to_string()));
    assert_eq!(mount.query("from").as_deref(), Some("base/busybox"));
    assert_eq!(count(&log, "POST", "/v2/app/blobs/uploads/"), 1, "{log:#?}");
    assert_eq!(count(&log, "PATCH", "/"), 0);
}

#[tokio::test]
async fn mount_202_falls_back_to_the_returned_session() {
    let server = Server::start(no_faults()).await;
    let image = image(&[800]);
    server.add_blob(&image.config);
    let blobs = [PushBlob {
        descriptor: Descriptor::new(media_types::OCI_LAYER_GZIP, &image.layers[0]),
        mount_from: Some("base/busybox".into()),
    }];
    let report = push_to(&server, &image, &blobs, &[], &options())
        .await
        .expect("push");
    assert_eq!((report.blobs_mounted, report.blobs_uploaded), (0, 1));
    assert_eq!(report.blob_bytes_sent, 800);
    let log = server.log();
    // One POST (the mount attempt), its session used for the upload.
    assert_eq!(count(&log, "POST", "/"), 1);
    let put = log
        .iter()
        .find(|s| s.path() == "/v2/app/blobs/uploads/s1")
        .expect("put");
    assert_eq!(put.method, "PUT");
    assert_stored(&server, &image.layers[0]);
}

#[tokio::test]
async fn small_blobs_go_in_one_put_large_ones_in_bounded_chunks() {
    let server = Server::start(no_faults()).await;
    let image = image(&[1200, 3500]);
    let report = push_to(&server, &image, &[], &[], &options())
        .await
        .expect("push");
    assert_eq!(report.blobs_uploaded, 3);
    let config_len = image.config.len() as u64;
    assert_eq!(report.blob_bytes_sent, 1200 + 3500 + config_len);
    let log = server.log();
    let small = Digest::of(&image.layers[0]).to_string();
    let big = Digest::of(&image.layers[1]).to_string();
    let small_put = log
        .iter()
        .find(|s| s.query("digest") == Some(small.clone()))
        .expect("put");
    assert_eq!(
        (small_put.method.as_str(), small_put.body.len()),
        ("PUT", 1200)
    );
    let patches: Vec<&Seen> = log.iter().filter(|s| s.method == "PATCH").collect();
    let ranges: Vec<&str> = patches
        .iter()
        .filter_map(|p| p.header("content-range"))
        .collect();
    assert_eq!(ranges, ["0-999", "1000-1999", "2000-2999", "3000-3499"]);
    for patch in &patches {
        assert!(
            patch.body.len() <= 1000,
            "chunk of {} bytes",
            patch.body.len()
        );
        assert_eq!(
            patch.header("content-length"),
            Some(patch.body.len().to_string().as_str())
        );
        assert_eq!(
            patch.header("content-type"),
            Some("application/octet-stream")
        );
    }
    let finish = log
        .iter()
        .find(|s| s.query("digest") == Some(big.clone()))
        .expect("final");
    assert_eq!((finish.method.as_str(), finish.body.len()), ("PUT", 0));
    assert_stored(&server, &image.layers[0]);
    assert_stored(&server, &image.layers[1]);
}

#[tokio::test]
async fn a_patch_reset_mid_way_resumes_from_the_registry_offset() {
    // The second PATCH gets 300 of its 1000 bytes in, then the connection is reset.
    let fault: Box<FaultFn> = Box::new(|seen, earlier| {
        let patches = earlier.iter().filter(|s| s.method == "PATCH").count();
        (seen.method == "PATCH" && patches == 1).then_some(Fault::ResetAfter(300))
    });
    let server = Server::start(fault).await;
    let image = image(&[3500]);
    let report = push_to(&server, &image, &[], &[], &options())
        .await
        .expect("push");
    let log = server.log();
    let ranges: Vec<&str> = log
        .iter()
        .filter(|s| s.method == "PATCH")
        .filter_map(|p| p.header("content-range"))
        .collect();
    assert_eq!(
        ranges,
        ["0-999", "1000-1999", "1300-2299", "2300-3299", "3300-3499"]
    );
    let reset = log
        .iter()
        .position(|s| s.method == "PATCH" && s.body.len() == 300);
    let status = log.iter().position(|s| s.method == "GET");
    assert!(
        reset < status && status.is_some(),
        "GET after the reset: {log:#?}"
    );
    assert_stored(&server, &image.layers[0]);
    assert_eq!(report.blobs_uploaded, 2);
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let fault: Box<FaultFn> = Box::new(|seen, earlier| {
        let first = !earlier.iter().any(|s| s.method == "HEAD");
        (seen.method == "HEAD" && first)
            .then(|| Fault::Status(429, vec![("Retry-After", "1".into())]))
    });
    let server = Server::start(fault).await;
    let image = image(&[100]);
    let options = PushOptions {
        max_concurrent_blobs: 1,
        ..options()
    };
    let started = Instant::now();
    let report = push_to(&server, &image, &[], &[], &options)
        .await
        .expect("push");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(count(&server.log(), "HEAD", "/"), 3);
    assert_eq!(report.blobs_uploaded, 2);
}

#[tokio::test]
async fn a_5xx_is_retried_until_it_succeeds() {
    let fault: Box<FaultFn> = Box::new(|seen, earlier| {
        let manifest_puts = count(earlier, "PUT", "/v2/app/manifests/");
        (seen.method == "PUT" && seen.path().starts_with("/v2/app/manifests/") && manifest_puts < 2)
            .then(|| Fault::Status(503, vec![]))
    });
    let server = Server::start(fault).await;
    let image = image(&[100]);
    let report = push_to(&server, &image, &[], &[], &options())
        .await
        .expect("push");
    assert_eq!(count(&server.log(), "PUT", "/v2/app/manifests/sha256:"), 3);
    assert_eq!(report.tags, ["latest"]);
    let model = server.model.lock().expect("model");
    assert_eq!(model.manifests.len(), 2, "manifest by digest, then the tag");
}

#[tokio::test]
async fn exhausted_retries_name_registry_repository_and_operation() {
    let fault: Box<FaultFn> =
        Box::new(|seen, _| (seen.method == "POST").then(|| Fault::Status(500, vec![])));
    let server = Server::start(fault).await;
    let image = image(&[100]);
    let options = PushOptions {
        max_retries: 2,
        max_concurrent_blobs: 1,
        ..options()
    };
    let error = push_to(&server, &image, &[], &["v1"], &options)
        .await
        .expect_err("fails");
    let message = error.to_string();
    assert!(
        message.contains(&format!("`{}/app`", server.addr)),
        "{message}"
    );
    assert!(message.contains("upload blob sha256:"), "{message}");
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("\nhint: "), "{message}");
    let log = server.log();
    assert_eq!(count(&log, "POST", "/"), 3, "one try and two retries");
    assert_eq!(count(&log, "PUT", "/v2/app/manifests/"), 0);
}

#[tokio::test]
async fn blobs_then_manifest_then_tags_in_order() {
    let server = Server::start(no_faults()).await;
    let image = image(&[100, 2500]);
    let report = push_to(&server, &image, &[], &["v1", "stable"], &options())
        .await
        .expect("push");
    assert_eq!(report.tags, ["v1", "stable"]);
    let log: Vec<String> = server.log().iter().map(Seen::short).collect();
    let manifest = format!("PUT /v2/app/manifests/{}", image.manifest.digest);
    let tail = [
        manifest,
        "PUT /v2/app/manifests/v1".into(),
        "PUT /v2/app/manifests/stable".into(),
    ];
    assert_eq!(log[log.len() - 3..], tail, "{log:#?}");
    assert!(
        log[..log.len() - 3]
            .iter()
            .all(|l| !l.contains("/manifests/"))
    );
    let model = server.model.lock().expect("model");
    for (reference, media_type, bytes) in &model.manifests {
        assert_eq!(media_type, media_types::OCI_MANIFEST, "{reference}");
        assert_eq!(Digest::of(bytes), image.manifest.digest, "{reference}");
    }
}

#[tokio::test]
async fn a_failed_blob_writes_no_manifest_and_no_tag() {
    let fault: Box<FaultFn> = Box::new(|seen, _| {
        (seen.method == "PUT" && seen.path().starts_with("/v2/app/blobs/"))
            .then(|| Fault::Status(400, vec![]))
    });
    let server = Server::start(fault).await;
    let image = image(&[100]);
    let error = push_to(&server, &image, &[], &["v1"], &options())
        .await
        .expect_err("fails");
    assert!(error.to_string().contains("400"), "{error}");
    assert_eq!(count(&server.log(), "PUT", "/v2/app/manifests/"), 0);
    assert!(server.model.lock().expect("model").manifests.is_empty());
}

#[tokio::test]
async fn a_wrong_digest_from_the_registry_is_an_error() {
    let fault: Box<FaultFn> = Box::new(|seen, _| {
        (seen.method == "PUT" && seen.path().contains("/manifests/")).then(|| {
            Fault::Status(
                201,
                vec![("Docker-Content-Digest", format!("{}", Digest::of(b"x")))],
            )
        })
    });
    let server = Server::start(fault).await;
    let image = image(&[100]);
    let error = push_to(&server, &image, &[], &["v1"], &options())
        .await
        .expect_err("fails");
    assert!(error.to_string().contains("reports digest"), "{error}");
    assert_eq!(count(&server.log(), "PUT", "/v2/app/manifests/v1"), 0);
}

#[test]
fn retry_after_reads_seconds_and_http_dates() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "7".parse().expect("header"));
    assert_eq!(
        retry_after(&headers, SystemTime::now()),
        Some(Duration::from_secs(7))
    );
    headers.insert(
        "retry-after",
        "Sun, 06 Nov 1994 08:49:37 GMT".parse().expect("header"),
    );
    let now = UNIX_EPOCH + Duration::from_secs(784_111_767);
    assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(10)));
    headers.insert("retry-after", "soon".parse().expect("header"));
    assert_eq!(retry_after(&headers, now), None);
}

#[test]
fn push_image_blocking_refuses_to_run_inside_a_runtime() {
    let image = image(&[10]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let target = ImageRef::parse("127.0.0.1:1/app:latest").expect("reference");
    let auth = Authenticator::new(
        http_client(&options()).expect("client"),
        base_url(&target.registry, &[]),
        target.registry.clone(),
        CredentialSource {
            credential: Credential::Anonymous,
            origin: "anonymous".into(),
        },
    );
    let result = push_image_blocking(
        &image.store,
        &image.manifest,
        &[],
        &target,
        &[],
        &auth,
        &options(),
    );
    let error = result.expect_err("nested runtime");
    assert!(
        error.to_string().contains("push_image(...).await"),
        "{error}"
    );
}

#[test]
fn base_url_uses_plain_http_only_where_allowed() {
    assert_eq!(base_url("127.0.0.1:5000", &[]), "http://127.0.0.1:5000");
    assert_eq!(base_url("ghcr.io", &[]), "https://ghcr.io");
    assert_eq!(
        base_url("reg.lan:5000", &["reg.lan:5000".into()]),
        "http://reg.lan:5000"
    );
}

#[test]
fn the_push_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let image = image(&[10]);
    let target = ImageRef::parse("127.0.0.1:1/app:latest").expect("reference");
    let options = options();
    let auth = Authenticator::new(
        http_client(&options).expect("client"),
        base_url(&target.registry, &[]),
        target.registry.clone(),
        CredentialSource {
            credential: Credential::Anonymous,
            origin: "anonymous".into(),
        },
    );
    let future = push_image(
        &image.store,
        &image.manifest,
        &[],
        &target,
        &[],
        &auth,
        &options,
    );
    assert_send(&future);
}

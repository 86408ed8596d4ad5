//! A throw-away Distribution registry (`docker-registry`) on 127.0.0.1, without
//! authentication, storing into a temporary directory; killed and removed on drop.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::tools::require_tool;

/// How long the registry gets to answer `GET /v2/` after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running registry; `addr()` is what image references and `skopeo` use.
pub struct Registry {
    child: Option<Child>,
    addr: String,
    dir: TempDir,
}

impl Registry {
    /// Starts an open (anonymous read and write) registry on a free loopback port.
    pub fn start_open() -> Registry {
        let program = require_tool("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("registry-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("failed to create the registry directory: {e}"));
        // The port is picked by binding port 0 and released just before the registry binds
        // it; another process may take it in between, so a registry that exits is retried.
        let mut last_failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            write_config(&config, &dir.path().join("data"), &addr);
            let stdout = log_file(&dir, "stdout.log");
            let stderr = log_file(&dir, "stderr.log");
            let mut child = Command::new(&program)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("failed to start `docker-registry`: {e}"));
            match wait_ready(&mut child, &addr, &dir) {
                Ok(()) => {
                    return Registry {
                        child: Some(child),
                        addr,
                        dir,
                    };
                }
                Err(failure) => {
                    last_failure = failure;
                    child.kill().ok();
                    child.wait().ok();
                }
            }
        }
        panic!("the test registry did not start: {last_failure}");
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// What the registry logged so far, its access log included (one line per request, such
    /// as `"GET /v2/NAME/blobs/sha256:... HTTP/1.1" 200`).
    pub fn log(&self) -> String {
        let mut text = String::new();
        for name in ["stdout.log", "stderr.log"] {
            text.push_str(&fs::read_to_string(self.dir.path().join(name)).unwrap_or_default());
        }
        text
    }

    /// How many `GET` requests for blobs of `repository` the registry answered so far.
    pub fn blob_downloads(&self, repository: &str) -> usize {
        let needle = format!("\"GET /v2/{repository}/blobs/");
        self.log()
            .lines()
            .filter(|line| line.contains(&needle))
            .count()
    }

    /// How many `GET` requests for manifests of `repository` the registry answered so far.
    pub fn manifest_downloads(&self, repository: &str) -> usize {
        let needle = format!("\"GET /v2/{repository}/manifests/");
        self.log()
            .lines()
            .filter(|line| line.contains(&needle))
            .count()
    }

    /// Where the registry keeps the content of blob `digest` (`sha256:...`), so tests can
    /// damage it and check that clients notice.
    pub fn blob_data_path(&self, digest: &str) -> std::path::PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Kills the registry now (its storage stays until drop), to test what works offline.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_ready(child: &mut Child, addr: &str, dir: &TempDir) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            return Err(format!("`docker-registry` exited with {status}:\n{log}"));
        }
        if answers_v2(addr) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on `{addr}` within {READY_TIMEOUT:?}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("failed to bind a loopback port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("failed to read the bound address: {e}"))
        .port()
}

/// Whether `GET /v2/` answers 200, spoken by hand to keep HTTP clients out of the tests.
fn answers_v2(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// The registry configuration: filesystem storage, deletes allowed (tests may prune),
/// access log on so tests can count requests, no authentication.
fn write_config(path: &Path, data: &Path, addr: &str) {
    let config = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n",
        data.display()
    );
    fs::write(path, config).unwrap_or_else(|e| panic!("failed to write `{}`: {e}", path.display()));
}

fn log_file(dir: &TempDir, name: &str) -> File {
    let path = dir.path().join(name);
    File::create(&path).unwrap_or_else(|e| panic!("failed to create `{}`: {e}", path.display()))
}

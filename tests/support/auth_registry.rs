//! Throw-away Distribution registries (`docker-registry`) on 127.0.0.1 that demand
//! credentials, storing into a temporary directory and killed and removed on drop:
//! [`AuthRegistry::start_basic`] checks an htpasswd file (bcrypt, made by `htpasswd -Bbn`);
//! [`AuthRegistry::start_token`] sends clients to a [`TokenServer`] of the test (the
//! `Bearer realm=...,service=...` flow of ghcr.io and Docker Hub) and trusts its certificate.
//!
//! The launcher follows [`super::registry::Registry`] but waits for any HTTP answer, since
//! `GET /v2/` answers 401 here.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::token_server::{TokenOptions, TokenServer};
use super::tools::{require_tool, run};

/// How long the registry gets to answer `GET /v2/` after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running registry with authentication.
pub struct AuthRegistry {
    child: Option<Child>,
    addr: String,
    username: String,
    password: String,
    token_server: Option<TokenServer>,
    dir: TempDir,
}

impl AuthRegistry {
    /// A registry accepting `username`/`password` with Basic authentication (everything
    /// else, anonymous included, gets 401 with `Basic realm="test-registry"`).
    pub fn start_basic(username: &str, password: &str) -> AuthRegistry {
        let htpasswd = require_tool("htpasswd");
        let dir = registry_dir();
        let output = run(Command::new(htpasswd).args(["-Bbn", username, password]));
        let file = dir.path().join("htpasswd");
        fs::write(&file, &output.stdout)
            .unwrap_or_else(|e| panic!("failed to write `{}`: {e}", file.display()));
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
            file.display()
        );
        let (child, addr) = launch(&dir, &auth);
        AuthRegistry {
            child: Some(child),
            addr,
            username: username.to_string(),
            password: password.to_string(),
            token_server: None,
            dir,
        }
    }

    /// A registry with token authentication, backed by a new [`TokenServer`] started with
    /// `options` (its user is this registry's user).
    pub fn start_token(options: TokenOptions) -> AuthRegistry {
        let username = options.username.clone();
        let password = options.password.clone();
        let server = TokenServer::start(options);
        let dir = registry_dir();
        let auth = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
             rootcertbundle: {}\n",
            server.realm(),
            server.service(),
            server.issuer(),
            server.certificate().display()
        );
        let (child, addr) = launch(&dir, &auth);
        AuthRegistry {
            child: Some(child),
            addr,
            username,
            password,
            token_server: Some(server),
            dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The user name that is let in.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// That user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `USER:PASSWORD`, as `skopeo --creds` takes it.
    pub fn creds(&self) -> String {
        format!("{}:{}", self.username, self.password)
    }

    /// The token server of a registry made by [`Self::start_token`].
    pub fn token_server(&self) -> &TokenServer {
        self.token_server.as_ref().unwrap_or_else(|| {
            panic!(
                "registry {} uses Basic auth and has no token server",
                self.addr
            )
        })
    }

    /// The `WWW-Authenticate` header of an anonymous `GET /v2/` (panics unless it is 401).
    pub fn challenge(&self) -> String {
        let (status, head) = get_v2(&self.addr)
            .unwrap_or_else(|e| panic!("`GET /v2/` on {} failed: {e}", self.addr));
        assert_eq!(
            status, 401,
            "anonymous `GET /v2/` on {}:\n{head}",
            self.addr
        );
        head.lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("www-authenticate")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| panic!("401 from {} without WWW-Authenticate:\n{head}", self.addr))
    }

    /// What the registry logged so far, its access log included.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for name in ["stdout.log", "stderr.log"] {
            text.push_str(&fs::read_to_string(self.dir.path().join(name)).unwrap_or_default());
        }
        text
    }

    /// Kills the registry now (its storage stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn registry_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("auth-registry-test-")
        .tempdir()
        .unwrap_or_else(|e| panic!("failed to create the registry directory: {e}"))
}

/// Starts `docker-registry serve` with `auth` (a YAML `auth:` section) on a free port,
/// retrying on another port when the picked one was taken before the registry bound it.
fn launch(dir: &TempDir, auth: &str) -> (Child, String) {
    let program = require_tool("docker-registry");
    let mut last_failure = String::new();
    for _ in 0..5 {
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        let text = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n{auth}",
            dir.path().join("data").display()
        );
        write(&config, &text);
        let mut child = Command::new(&program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file(dir, "stdout.log"))
            .stderr(log_file(dir, "stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start `docker-registry`: {e}"));
        match wait_ready(&mut child, &addr, dir) {
            Ok(()) => return (child, addr),
            Err(failure) => {
                last_failure = failure;
                child.kill().ok();
                child.wait().ok();
            }
        }
    }
    panic!("the authenticating test registry did not start: {last_failure}");
}

fn wait_ready(child: &mut Child, addr: &str, dir: &TempDir) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            return Err(format!("`docker-registry` exited with {status}:\n{log}"));
        }
        if let Ok((status, _)) = get_v2(addr)
            && (status == 200 || status == 401)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on `{addr}` within {READY_TIMEOUT:?}"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// An anonymous `GET /v2/`, spoken by hand: the status and the response head.
fn get_v2(addr: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, head))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("failed to bind a loopback port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("failed to read the bound address: {e}"))
        .port()
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("failed to write `{}`: {e}", path.display()));
}

fn log_file(dir: &TempDir, name: &str) -> File {
    let path = dir.path().join(name);
    File::create(&path).unwrap_or_else(|e| panic!("failed to create `{}`: {e}", path.display()))
}

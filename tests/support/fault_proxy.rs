//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of a test registry, for testing
//! how clients survive a flaky network: it forwards requests one by one (keep-alive on the
//! client side, `Content-Length` and chunked bodies, `Expect: 100-continue` answered by the
//! proxy) and, at a configured rate, instead
//!
//! - resets the connection after forwarding part of the request body (or, for requests
//!   without a body, after forwarding the request, so the registry acts on it but the
//!   answer is lost),
//! - answers 500, 502 or 503 without forwarding,
//! - answers 429 with `Retry-After: 1` without forwarding,
//! - forwards the request but cuts the response body in half and closes (GET only).
//!
//! Whether a request is hit depends only on the seed, its method and path (query left out)
//! and how many times that method and path were seen before, so concurrency does not change
//! the decisions (upload URLs carry the registry's random IDs, though). A method and path is
//! hit at most `max_faults_per_request` times, so a client that retries always gets through.
//!
//! The `Host` header goes upstream unchanged, so the registry builds `Location` URLs that
//! point back at the proxy.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::http_wire::{Framing, Head, copy_body, read_head, request_framing, response_framing};

/// How long a client connection may sit idle between requests.
const CLIENT_IDLE: Duration = Duration::from_secs(30);
/// How long the upstream may take to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a chunked request body (length unknown) is forwarded before a reset.
const CHUNKED_RESET_AFTER: u64 = 64 * 1024;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Close both connections after forwarding part of the request (body).
    Reset,
    /// `500 Internal Server Error`, not forwarded.
    Status500,
    /// `502 Bad Gateway`, not forwarded.
    Status502,
    /// `503 Service Unavailable`, not forwarded.
    Status503,
    /// `429 Too Many Requests` with `Retry-After: 1`, not forwarded.
    TooManyRequests,
    /// Forwarded, but only half the response body is passed on before closing (GET
    /// responses with a `Content-Length` of at least 2; other requests are left alone).
    TruncateResponse,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Reset,
        FaultKind::Status500,
        FaultKind::Status502,
        FaultKind::Status503,
        FaultKind::TooManyRequests,
        FaultKind::TruncateResponse,
    ];

    fn status(self) -> Option<(u16, &'static str)> {
        match self {
            FaultKind::Status500 => Some((500, "Internal Server Error")),
            FaultKind::Status502 => Some((502, "Bad Gateway")),
            FaultKind::Status503 => Some((503, "Service Unavailable")),
            FaultKind::TooManyRequests => Some((429, "Too Many Requests")),
            FaultKind::Reset | FaultKind::TruncateResponse => None,
        }
    }
}

/// What to inject.
#[derive(Clone, Debug)]
pub struct FaultConfig {
    /// The probability (0 to 1) that an eligible request is hit.
    pub rate: f64,
    /// The seed of the decisions.
    pub seed: u64,
    /// The kinds to pick from (uniformly, among those that apply to the request).
    pub kinds: Vec<FaultKind>,
    /// Once a method and path has been hit this often, it is always forwarded.
    pub max_faults_per_request: u32,
    /// Only requests with these methods are hit (`PATCH`, `PUT`); empty means all.
    pub methods: Vec<String>,
    /// At most this many faults in all, if set.
    pub max_faults: Option<u64>,
}

impl FaultConfig {
    /// Every kind at `rate` with `seed`, at most 2 faults per method and path.
    pub fn new(rate: f64, seed: u64) -> FaultConfig {
        FaultConfig {
            rate,
            seed,
            kinds: FaultKind::ALL.to_vec(),
            max_faults_per_request: 2,
            methods: Vec::new(),
            max_faults: None,
        }
    }

    /// No faults: a plain counting proxy.
    pub fn none() -> FaultConfig {
        FaultConfig::new(0.0, 0)
    }
}

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The fault injected into it, if any.
    pub fault: Option<FaultKind>,
}

/// What the proxy did so far.
#[derive(Clone, Debug, Default)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Requests received (faulted ones included).
    pub requests: u64,
    /// Requests received, by method.
    pub requests_by_method: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// Request body bytes (payload, without chunk framing) forwarded to the upstream, by
    /// method: with `PATCH` and `PUT` this is the blob data a push sent.
    pub body_bytes_upstream: BTreeMap<String, u64>,
    /// Every request, in the order they arrived.
    pub log: Vec<ProxiedRequest>,
}

impl ProxyStats {
    /// All faults injected.
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Faults of `kind` injected.
    pub fn faults_of(&self, kind: FaultKind) -> u64 {
        self.faults.get(&kind).copied().unwrap_or(0)
    }

    /// Body bytes forwarded upstream in `method` requests.
    pub fn bytes_upstream(&self, method: &str) -> u64 {
        self.body_bytes_upstream.get(method).copied().unwrap_or(0)
    }

    /// Requests received with `method`.
    pub fn requests_of(&self, method: &str) -> u64 {
        self.requests_by_method.get(method).copied().unwrap_or(0)
    }
}

struct Decisions {
    config: FaultConfig,
    seen: HashMap<String, u64>,
    hit: HashMap<String, u32>,
    stats: ProxyStats,
}

struct Shared {
    upstream: String,
    decisions: Mutex<Decisions>,
    stopping: AtomicBool,
    next_socket: AtomicU64,
    sockets: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn decisions(&self) -> MutexGuard<'_, Decisions> {
        self.decisions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a socket so that stopping the proxy can shut it down; returns its key.
    fn track(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let id = self.next_socket.fetch_add(1, Ordering::SeqCst);
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, clone);
        Some(id)
    }

    fn untrack(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.sockets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
    }

    /// Whether to hit the request `method path`, and how.
    fn decide(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut d = self.decisions();
        let key = format!("{method} {path}");
        let occurrence = {
            let seen = d.seen.entry(key.clone()).or_insert(0);
            *seen += 1;
            *seen - 1
        };
        let config = &d.config;
        let eligible = config.rate > 0.0
            && (config.methods.is_empty()
                || config
                    .methods
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(method)))
            && d.hit.get(&key).copied().unwrap_or(0) < config.max_faults_per_request
            && config
                .max_faults
                .is_none_or(|max| d.stats.faults_total() < max);
        if !eligible {
            return None;
        }
        let draw = mix(config.seed ^ fnv1a(key.as_bytes()) ^ mix(occurrence.wrapping_add(1)));
        if ((draw >> 11) as f64) / ((1u64 << 53) as f64) >= config.rate {
            return None;
        }
        let kinds: Vec<FaultKind> = config
            .kinds
            .iter()
            .copied()
            .filter(|k| *k != FaultKind::TruncateResponse || method == "GET")
            .collect();
        if kinds.is_empty() {
            return None;
        }
        let kind = kinds[(mix(draw) % kinds.len() as u64) as usize];
        *d.hit.entry(key).or_insert(0) += 1;
        Some(kind)
    }

    /// Takes back a decision that turned out not to apply (a truncation of an empty body).
    fn undo(&self, method: &str, path: &str) {
        let mut d = self.decisions();
        if let Some(hit) = d.hit.get_mut(&format!("{method} {path}")) {
            *hit = hit.saturating_sub(1);
        }
    }

    fn injected(&self, kind: FaultKind) {
        let mut d = self.decisions();
        *d.stats.faults.entry(kind).or_insert(0) += 1;
        if let Some(last) = d.stats.log.last_mut() {
            last.fault = Some(kind);
        }
    }

    fn forwarded(&self, method: &str, bytes: u64) {
        *self
            .decisions()
            .stats
            .body_bytes_upstream
            .entry(method.to_string())
            .or_insert(0) += bytes;
    }
}

/// A running proxy; stopped on drop.
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: String,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, config: FaultConfig) -> FaultProxy {
        assert!(
            (0.0..=1.0).contains(&config.rate),
            "fault rate {} is not between 0 and 1",
            config.rate
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("failed to bind the fault proxy's port: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("failed to read the fault proxy's address: {e}"))
            .to_string();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            decisions: Mutex::new(Decisions {
                config,
                seen: HashMap::new(),
                hit: HashMap::new(),
                stats: ProxyStats::default(),
            }),
            stopping: AtomicBool::new(false),
            next_socket: AtomicU64::new(0),
            sockets: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("fault-proxy".to_string())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .unwrap_or_else(|e| panic!("failed to start the fault proxy thread: {e}"));
        FaultProxy {
            shared,
            addr,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`, to use in image references instead of the registry's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        self.shared.decisions().stats.clone()
    }

    /// Replaces the configuration from the next request on (counters are kept), e.g.
    /// `FaultConfig::none()` to let a verification step through untouched.
    pub fn set_config(&self, config: FaultConfig) {
        self.shared.decisions().config = config;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        TcpStream::connect(&self.addr).ok();
        if let Some(accept) = self.accept.take() {
            accept.join().ok();
        }
        for (_, socket) in self
            .shared
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            socket.shutdown(Shutdown::Both).ok();
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for handle in threads {
            handle.join().ok();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        shared.decisions().stats.connections += 1;
        let conn_shared = Arc::clone(shared);
        let Ok(handle) = thread::Builder::new()
            .name("fault-proxy-conn".to_string())
            .spawn(move || {
                let id = conn_shared.track(&stream);
                serve(stream, &conn_shared);
                conn_shared.untrack(id);
            })
        else {
            continue;
        };
        let mut threads = shared.threads.lock().unwrap_or_else(|e| e.into_inner());
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *threads)
            .into_iter()
            .partition(|h| h.is_finished());
        for h in done {
            h.join().ok();
        }
        *threads = live;
        threads.push(handle);
    }
}

/// Serves one client connection until it closes, errs, or a fault ends it.
fn serve(client: TcpStream, shared: &Shared) {
    client.set_read_timeout(Some(CLIENT_IDLE)).ok();
    let Ok(write_half) = client.try_clone() else {
        return;
    };
    let mut from_client = BufReader::with_capacity(64 * 1024, client);
    let mut to_client = BufWriter::with_capacity(64 * 1024, write_half);
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(Some(head)) = read_head(&mut from_client) else {
            return;
        };
        match exchange(shared, &head, &mut from_client, &mut to_client) {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Close) | Err(_) => {
                to_client.flush().ok();
                to_client.get_ref().shutdown(Shutdown::Both).ok();
                return;
            }
            // Closing without shutdown, with the rest of the request unread, makes the
            // kernel answer with RST: the client sees "connection reset", not a clean end.
            Ok(Next::Abort) => return,
        }
    }
}

/// What becomes of a client connection after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// It can take another request.
    KeepAlive,
    /// It ends cleanly.
    Close,
    /// It is dropped at once (an injected reset).
    Abort,
}

/// Handles one request.
fn exchange(
    shared: &Shared,
    head: &Head,
    from_client: &mut BufReader<TcpStream>,
    to_client: &mut BufWriter<TcpStream>,
) -> io::Result<Next> {
    let method = head.first_word().to_ascii_uppercase();
    let target = head.second_word();
    let path = target.split('?').next().unwrap_or(target).to_string();
    {
        let mut d = shared.decisions();
        d.stats.requests += 1;
        *d.stats
            .requests_by_method
            .entry(method.clone())
            .or_insert(0) += 1;
        d.stats.log.push(ProxiedRequest {
            method: method.clone(),
            path: path.clone(),
            fault: None,
        });
    }
    let fault = shared.decide(&method, &path);
    let framing = request_framing(head);
    if head.lists("expect", "100-continue") {
        to_client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        to_client.flush()?;
    }
    let keep_alive = !head.closes();

    if let Some((status, reason)) = fault.and_then(FaultKind::status) {
        copy_body(from_client, &mut io::sink(), framing, None)?;
        shared.injected(fault.unwrap_or(FaultKind::Status500));
        let body = format!(
            "{{\"errors\":[{{\"code\":\"UNAVAILABLE\",\"message\":\"fault injected by the test proxy: {status}\"}}]}}"
        );
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if status == 429 {
            response.push_str("Retry-After: 1\r\n");
        }
        if !keep_alive {
            response.push_str("Connection: close\r\n");
        }
        response.push_str("\r\n");
        response.push_str(&body);
        to_client.write_all(response.as_bytes())?;
        to_client.flush()?;
        return Ok(if keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        });
    }

    let upstream = TcpStream::connect(&shared.upstream)?;
    upstream.set_read_timeout(Some(UPSTREAM_TIMEOUT)).ok();
    let upstream_id = shared.track(&upstream);
    let result = forward(
        shared,
        head,
        &method,
        &path,
        fault,
        framing,
        from_client,
        to_client,
        upstream,
    );
    shared.untrack(upstream_id);
    result.map(|next| match next {
        Next::KeepAlive if !keep_alive => Next::Close,
        other => other,
    })
}

/// Sends the request upstream and the answer back (or injects a reset or truncation).
#[allow(clippy::too_many_arguments, reason = "one request's whole context")]
fn forward(
    shared: &Shared,
    head: &Head,
    method: &str,
    path: &str,
    fault: Option<FaultKind>,
    framing: Framing,
    from_client: &mut BufReader<TcpStream>,
    to_client: &mut BufWriter<TcpStream>,
    upstream: TcpStream,
) -> io::Result<Next> {
    let read_half = upstream.try_clone()?;
    let mut to_upstream = BufWriter::with_capacity(64 * 1024, upstream);
    to_upstream.write_all(&head.to_bytes_without(&["expect"]))?;

    if fault == Some(FaultKind::Reset) {
        let limit = match framing {
            Framing::Length(n) => n / 2,
            Framing::Chunked => CHUNKED_RESET_AFTER,
            Framing::Empty | Framing::UntilClose => 0,
        };
        let copied = copy_body(from_client, &mut to_upstream, framing, Some(limit))?;
        to_upstream.flush().ok();
        shared.forwarded(method, copied.payload);
        shared.injected(FaultKind::Reset);
        // Without a body the registry may still be handling the request; a moment lets it
        // act on it, as when an answer is lost on the way back.
        if framing == Framing::Empty {
            thread::sleep(Duration::from_millis(100));
        }
        to_upstream.get_ref().shutdown(Shutdown::Both).ok();
        return Ok(Next::Abort);
    }

    let copied = copy_body(from_client, &mut to_upstream, framing, None)?;
    to_upstream.flush()?;
    shared.forwarded(method, copied.payload);

    let mut from_upstream = BufReader::with_capacity(64 * 1024, read_half);
    let Some(response) = read_head(&mut from_upstream)? else {
        return Ok(Next::Close);
    };
    let response_body = response_framing(&response, method);
    if fault == Some(FaultKind::TruncateResponse) {
        if let Framing::Length(n) = response_body
            && n >= 2
        {
            to_client.write_all(&response.to_bytes_without(&[]))?;
            copy_body(&mut from_upstream, to_client, response_body, Some(n / 2))?;
            to_client.flush()?;
            shared.injected(FaultKind::TruncateResponse);
            return Ok(Next::Close);
        }
        shared.undo(method, path);
    }
    to_client.write_all(&response.to_bytes_without(&[]))?;
    copy_body(&mut from_upstream, to_client, response_body, None)?;
    to_client.flush()?;
    if response_body == Framing::UntilClose || response.closes() {
        Ok(Next::Close)
    } else {
        Ok(Next::KeepAlive)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A 64-bit finalizer (splitmix64's): spreads every input bit over the output.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

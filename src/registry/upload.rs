//! Sending one blob to a registry, and the retrying request machinery the whole push uses.
//!
//! A blob goes through these states: probed with `HEAD` (done if present); mounted from
//! another repository when one is known (done on 201, on 202 the registry hands back an upload
//! session instead); uploaded in one `PUT` when small, else `PATCH`ed in chunks of at most
//! `chunk_size` bytes and finished by an empty `PUT ?digest=`. A chunk that fails (reset,
//! 5xx, 416) is followed by a `GET` of the session, whose `Range` says how much the registry
//! kept, and the upload resumes from there, reading the file again at that offset; a session
//! the registry forgot (404) is replaced by a new one starting from zero.
//!
//! Blob content is streamed from the store file with positional reads of a fixed size, so
//! memory stays bounded whatever the blob size, and retried requests can re-read any range.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use crate::oci::digest::Digest;
use crate::registry::auth::{AuthError, Authenticator, Scope};
use crate::registry::push::{PushBlob, PushOptions};
use crate::registry::push_error::{PushError, RequestFailure, hint_for_status};
use crate::store::Store;

/// Bytes read from the store file per step of a streamed body.
const READ_BUFFER: usize = 64 * 1024;
/// The first retry waits about this long; each further one twice as long.
const BACKOFF_START: Duration = Duration::from_millis(200);
/// No computed backoff waits longer than this.
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A registry's `Retry-After` is honoured up to this long, so a misconfigured registry cannot
/// park a CI job for hours; the request still counts against `max_retries`.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);
/// How much of an error response body is kept for the message.
const ERROR_BODY_LIMIT: usize = 4096;
/// The `Docker-Content-Digest` header registries use to say what they stored.
pub(crate) const CONTENT_DIGEST: &str = "docker-content-digest";

/// What became of one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The repository already had it.
    Existing,
    /// The registry linked it from another repository.
    Mounted,
    /// Its bytes were uploaded.
    Uploaded,
}

/// The result of sending a request once.
enum Tried {
    /// An answer the caller interprets (any status but 5xx and 429).
    Answer(Response),
    /// A failure worth retrying, with the registry's `Retry-After` when it gave one.
    Retry {
        failure: RequestFailure,
        after: Option<Duration>,
    },
    /// A failure retrying cannot fix.
    Fatal(RequestFailure),
}

/// One repository of one registry, as the push talks to it: the client, the authenticator,
/// the retry policy and the counters the report shows.
pub(crate) struct Remote<'a> {
    http: reqwest::Client,
    auth: &'a Authenticator,
    base: Url,
    pub(crate) registry: String,
    pub(crate) repository: String,
    options: &'a PushOptions,
    requests: AtomicU64,
    bytes_sent: Arc<AtomicU64>,
    jitter: AtomicU64,
}

impl<'a> Remote<'a> {
    /// Talks to `repository` of `registry` at `base_url` (`http://host:port`).
    pub(crate) fn new(
        http: reqwest::Client,
        auth: &'a Authenticator,
        base_url: &str,
        registry: &str,
        repository: &str,
        options: &'a PushOptions,
    ) -> Result<Remote<'a>, PushError> {
        let base = Url::parse(base_url).map_err(|e| PushError::Client {
            reason: format!("invalid registry URL `{base_url}`"),
            source: Some(Box::new(e)),
        })?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Ok(Remote {
            http,
            auth,
            base,
            registry: registry.to_string(),
            repository: repository.to_string(),
            options,
            requests: AtomicU64::new(0),
            bytes_sent: Arc::new(AtomicU64::new(0)),
            // Xorshift needs a non-zero state.
            jitter: AtomicU64::new(seed | 1),
        })
    }

    /// Requests sent so far (each attempt counts, retries and re-sends after a 401 included).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Blob bytes handed to the network so far.
    pub(crate) fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// The client requests are built with.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The scope a push needs: pull and push on the target repository.
    pub(crate) fn push_scope(&self) -> Scope {
        Scope {
            repository: self.repository.clone(),
            push: true,
        }
    }

    /// `/v2/<repository>/<rest>` on the registry.
    pub(crate) fn url(&self, rest: &str) -> Result<Url, PushError> {
        let path = format!("/v2/{}/{rest}", self.repository);
        self.base.join(&path).map_err(|e| {
            self.protocol_error(
                "build a request URL",
                format!("`{path}` is not a valid URL path: {e}"),
            )
        })
    }

    /// An error for `operation` that names this registry and repository.
    pub(crate) fn fail(&self, operation: &str, failure: RequestFailure) -> PushError {
        let hint = match &failure {
            RequestFailure::Status { status, .. } => {
                hint_for_status(*status, &self.registry, &self.repository)
            }
            // The authenticator's refusals carry their own hint; only a transport
            // failure suggests the registry cannot be reached.
            RequestFailure::Send(error) if is_refusal(error.as_ref()) => None,
            RequestFailure::Send(_) => Some(format!(
                "check that registry `{}` is reachable at `{}`",
                self.registry, self.base
            )),
            RequestFailure::Protocol(_) => None,
        };
        PushError::Request {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            operation: operation.to_string(),
            origin: self.auth.origin().to_string(),
            hint: hint.map(String::into_boxed_str),
            source: Box::new(failure),
        }
    }

    /// An error for an answer that breaks the protocol.
    pub(crate) fn protocol_error(&self, operation: &str, reason: String) -> PushError {
        self.fail(operation, RequestFailure::Protocol(reason))
    }

    /// The error for an answer with an unexpected status, with the start of its body.
    pub(crate) async fn status_error(&self, operation: &str, response: Response) -> PushError {
        let failure = status_failure(response).await;
        self.fail(operation, failure)
    }

    /// Fails unless the registry's `Docker-Content-Digest` (when it sends one) is `expected`.
    pub(crate) fn check_digest(
        &self,
        operation: &str,
        headers: &HeaderMap,
        expected: &Digest,
    ) -> Result<(), PushError> {
        let Some(value) = headers.get(CONTENT_DIGEST) else {
            return Ok(());
        };
        let actual = value.to_str().unwrap_or_default().trim();
        if actual == expected.to_string() {
            return Ok(());
        }
        Err(PushError::DigestMismatch {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            operation: operation.to_string(),
            expected: *expected,
            actual: actual.into(),
        })
    }

    /// Sends the request once, counting it, and sorts the outcome.
    async fn try_once(
        &self,
        scopes: &[Scope],
        make: &(dyn Fn() -> RequestBuilder + Send + Sync),
    ) -> Tried {
        // Counted per build, so the re-send an authenticator makes after a 401 counts too.
        let counted = || {
            self.requests.fetch_add(1, Ordering::Relaxed);
            make()
        };
        match self.auth.send(scopes, &counted).await {
            Ok(response) => {
                let status = response.status();
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    let after = retry_after(response.headers(), SystemTime::now());
                    Tried::Retry {
                        failure: status_failure(response).await,
                        after,
                    }
                } else {
                    Tried::Answer(response)
                }
            }
            Err(error) if is_transient(&error) => Tried::Retry {
                failure: RequestFailure::Send(Box::new(error)),
                after: None,
            },
            Err(error) => Tried::Fatal(RequestFailure::Send(Box::new(error))),
        }
    }

    /// Sends the request, retrying connection errors, 5xx and 429 up to `max_retries` times;
    /// any other answer is returned for the caller to judge.
    pub(crate) async fn send(
        &self,
        operation: &str,
        scopes: &[Scope],
        make: &(dyn Fn() -> RequestBuilder + Send + Sync),
    ) -> Result<Response, PushError> {
        let mut failures = 0;
        loop {
            match self.try_once(scopes, make).await {
                Tried::Answer(response) => return Ok(response),
                Tried::Fatal(failure) => return Err(self.fail(operation, failure)),
                Tried::Retry { failure, after } => {
                    if failures >= self.options.max_retries {
                        return Err(self.fail(operation, failure));
                    }
                    tokio::time::sleep(self.backoff(failures, after)).await;
                    failures += 1;
                }
            }
        }
    }

    /// How long to wait before retry number `failures` (from 0): the registry's
    /// `Retry-After` when given, else exponential from 200 ms, capped at 10 s, with "equal
    /// jitter" (half fixed, half random) so parallel uploads do not retry in lock-step.
    fn backoff(&self, failures: u32, after: Option<Duration>) -> Duration {
        if let Some(after) = after {
            return after.min(RETRY_AFTER_CAP);
        }
        let full = BACKOFF_START
            .saturating_mul(1u32 << failures.min(16))
            .min(BACKOFF_CAP);
        let half = full / 2;
        let random = self.next_random();
        let extra = half.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64);
        half + extra
    }

    /// A xorshift64 step: jitter needs no quality, only no new dependency.
    fn next_random(&self) -> u64 {
        let step = |mut x: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let previous = self
            .jitter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)))
            .unwrap_or(1);
        step(previous)
    }

    /// Resolves a `Location` header against the registry (it may be relative or absolute;
    /// its query, which some registries use for session state, is kept).
    fn location(&self, operation: &str, response: &Response) -> Result<Url, PushError> {
        let value = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.protocol_error(
                    operation,
                    format!("the {} answer has no `Location` header", response.status()),
                )
            })?;
        self.base.join(value).map_err(|e| {
            self.protocol_error(operation, format!("invalid `Location` `{value}`: {e}"))
        })
    }
}

/// Pushes one blob: probe, mount, or upload.
pub(crate) async fn push_blob(
    remote: &Remote<'_>,
    store: &Store,
    blob: &PushBlob,
) -> Result<Outcome, PushError> {
    let digest = blob.descriptor.digest;
    let scopes = [remote.push_scope()];
    let check = format!("check blob {digest}");
    let url = remote.url(&format!("blobs/{digest}"))?;
    let http = remote.http().clone();
    let response = remote
        .send(&check, &scopes, &|| http.head(url.clone()))
        .await?;
    match response.status() {
        StatusCode::OK => return Ok(Outcome::Existing),
        StatusCode::NOT_FOUND => {}
        _ => return Err(remote.status_error(&check, response).await),
    }

    let mut session = None;
    if let Some(from) = blob
        .mount_from
        .as_deref()
        .filter(|f| *f != remote.repository)
    {
        match mount(remote, &digest, from).await? {
            Mount::Done => return Ok(Outcome::Mounted),
            Mount::Session(url) => session = Some(url),
            Mount::Refused => {}
        }
    }

    let operation = format!("upload blob {digest}");
    let file = store
        .open_blob(&digest)
        .map_err(|e| store_error(remote, &operation, e))?;
    let size = file
        .metadata()
        .map_err(|source| {
            let error = crate::store::StoreError::Io {
                op: "stat blob",
                path: store.blob_path(&digest),
                source,
            };
            store_error(remote, &operation, error)
        })?
        .len();
    if size != blob.descriptor.size {
        return Err(PushError::Invalid {
            registry: remote.registry.clone(),
            repository: remote.repository.clone(),
            operation,
            reason: format!(
                "the stored blob has {size} bytes, its descriptor says {}",
                blob.descriptor.size
            ),
        });
    }
    let upload = Upload {
        remote,
        operation,
        digest,
        file: Arc::new(file),
        size,
    };
    if size <= remote.options.monolithic_limit {
        upload.monolithic(session).await?;
    } else {
        upload.chunked(session).await?;
    }
    Ok(Outcome::Uploaded)
}

/// What the registry did with a mount request.
enum Mount {
    /// Linked: nothing to upload.
    Done,
    /// Declined, with an upload session to use instead.
    Session(Url),
    /// Declined without a session (some registries answer 4xx for sources they hide).
    Refused,
}

async fn mount(remote: &Remote<'_>, digest: &Digest, from: &str) -> Result<Mount, PushError> {
    let operation = format!("mount blob {digest} from `{from}`");
    let mut url = remote.url("blobs/uploads/")?;
    url.query_pairs_mut()
        .append_pair("mount", &digest.to_string())
        .append_pair("from", from);
    // The token must also allow pulling from the source, or the registry declines.
    let scopes = [
        remote.push_scope(),
        Scope {
            repository: from.to_string(),
            push: false,
        },
    ];
    let http = remote.http().clone();
    let make = || http.post(url.clone()).header(CONTENT_LENGTH, 0);
    let response = remote.send(&operation, &scopes, &make).await?;
    match response.status() {
        StatusCode::CREATED => {
            remote.check_digest(&operation, response.headers(), digest)?;
            Ok(Mount::Done)
        }
        StatusCode::ACCEPTED => Ok(Mount::Session(remote.location(&operation, &response)?)),
        status if status.is_client_error() && status != StatusCode::UNAUTHORIZED => {
            Ok(Mount::Refused)
        }
        _ => Err(remote.status_error(&operation, response).await),
    }
}

/// One blob's upload: where it comes from and what it must become.
struct Upload<'r, 'a> {
    remote: &'r Remote<'a>,
    operation: String,
    digest: Digest,
    file: Arc<File>,
    size: u64,
}

impl Upload<'_, '_> {
    fn scopes(&self) -> [Scope; 1] {
        [self.remote.push_scope()]
    }

    /// `POST /v2/<name>/blobs/uploads/` → 202 with the session's `Location`.
    async fn start(&self) -> Result<Url, PushError> {
        let url = self.remote.url("blobs/uploads/")?;
        let http = self.remote.http().clone();
        let make = || http.post(url.clone()).header(CONTENT_LENGTH, 0);
        let response = self
            .remote
            .send(&self.operation, &self.scopes(), &make)
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.remote.status_error(&self.operation, response).await);
        }
        self.remote.location(&self.operation, &response)
    }

    /// The request for bytes `start..start + len` of the blob to `url`.
    fn body_request(&self, method: Method, url: &Url, start: u64, len: u64) -> RequestBuilder {
        let body = file_body(
            Arc::clone(&self.file),
            start,
            len,
            Arc::clone(&self.remote.bytes_sent),
        );
        self.remote
            .http()
            .request(method, url.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(body)
    }

    /// The closing `PUT` to `url` with `?digest=` and `len` bytes from `start`; 201 expected.
    async fn finish_request(&self, url: &Url, start: u64, len: u64) -> Tried {
        let mut url = url.clone();
        url.query_pairs_mut()
            .append_pair("digest", &self.digest.to_string());
        let make = || self.body_request(Method::PUT, &url, start, len);
        self.remote.try_once(&self.scopes(), &make).await
    }

    /// Checks the closing `PUT`'s answer.
    async fn accept_finish(&self, response: Response) -> Result<(), PushError> {
        if response.status() != StatusCode::CREATED {
            return Err(self.remote.status_error(&self.operation, response).await);
        }
        self.remote
            .check_digest(&self.operation, response.headers(), &self.digest)
    }

    /// Counts a failure; errors once more than `max_retries` happened, else waits.
    async fn after_failure(
        &self,
        failures: &mut u32,
        failure: RequestFailure,
        after: Option<Duration>,
    ) -> Result<(), PushError> {
        if *failures >= self.remote.options.max_retries {
            return Err(self.remote.fail(&self.operation, failure));
        }
        tokio::time::sleep(self.remote.backoff(*failures, after)).await;
        *failures += 1;
        Ok(())
    }

    /// The whole blob in one `PUT`. A failed `PUT` leaves the session in an unknown state
    /// (part of the body may have been appended), so each retry starts a new session.
    async fn monolithic(&self, mut session: Option<Url>) -> Result<(), PushError> {
        let mut failures = 0;
        loop {
            let url = match session.take() {
                Some(url) => url,
                None => self.start().await?,
            };
            match self.finish_request(&url, 0, self.size).await {
                Tried::Answer(response) => return self.accept_finish(response).await,
                Tried::Fatal(failure) => return Err(self.remote.fail(&self.operation, failure)),
                Tried::Retry { failure, after } => {
                    self.after_failure(&mut failures, failure, after).await?;
                }
            }
        }
    }

    /// `PATCH`es in chunks, resuming from the registry's offset after failures, then the
    /// empty closing `PUT`.
    async fn chunked(&self, session: Option<Url>) -> Result<(), PushError> {
        let chunk = self.remote.options.chunk_size.max(1) as u64;
        let mut url = match session {
            Some(url) => url,
            None => self.start().await?,
        };
        let mut offset = 0u64;
        let mut failures = 0;
        // Distribution reports both "nothing" and "one byte" as `Range: 0-0`.
        let mut ambiguous_zero = false;
        while offset < self.size {
            let len = chunk.min(self.size - offset);
            let make = || {
                self.body_request(Method::PATCH, &url, offset, len)
                    .header("content-range", format!("{}-{}", offset, offset + len - 1))
            };
            let (failure, after) = match self.remote.try_once(&self.scopes(), &make).await {
                Tried::Answer(response) if response.status() == StatusCode::ACCEPTED => {
                    let committed = committed_end(response.headers());
                    url = self.remote.location(&self.operation, &response)?;
                    let next = committed.unwrap_or(offset + len);
                    if next > self.size {
                        return Err(self.remote.protocol_error(
                            &self.operation,
                            format!("the registry says it has {next} bytes of {}", self.size),
                        ));
                    }
                    offset = next;
                    ambiguous_zero = false;
                    continue;
                }
                Tried::Answer(response) if response.status() == StatusCode::NOT_FOUND => {
                    // The session expired or was forgotten: begin again with a new one.
                    let failure = status_failure(response).await;
                    self.after_failure(&mut failures, failure, None).await?;
                    url = self.start().await?;
                    offset = 0;
                    continue;
                }
                Tried::Answer(response)
                    if response.status() == StatusCode::RANGE_NOT_SATISFIABLE =>
                {
                    if ambiguous_zero && offset == 0 {
                        ambiguous_zero = false;
                        offset = 1;
                        continue;
                    }
                    (status_failure(response).await, None)
                }
                Tried::Answer(response) => {
                    return Err(self.remote.status_error(&self.operation, response).await);
                }
                Tried::Fatal(failure) => return Err(self.remote.fail(&self.operation, failure)),
                Tried::Retry { failure, after } => (failure, after),
            };
            self.after_failure(&mut failures, failure, after).await?;
            match self.status(&url).await? {
                Some((new_url, last)) => {
                    url = new_url;
                    ambiguous_zero = last == Some(0);
                    // Resuming from 0 on `0-0` is always safe; 416 then moves on to 1.
                    offset = match last {
                        Some(0) | None => 0,
                        Some(last) => (last + 1).min(self.size),
                    };
                }
                None => {
                    url = self.start().await?;
                    offset = 0;
                }
            }
        }
        let mut finish_failures = 0;
        loop {
            match self.finish_request(&url, 0, 0).await {
                Tried::Answer(response) => return self.accept_finish(response).await,
                Tried::Retry { failure, after } => {
                    self.after_failure(&mut finish_failures, failure, after)
                        .await?;
                    // The registry may have committed the blob before its answer was lost:
                    // a HEAD decides whether to close the session again.
                    if self.blob_present().await? {
                        return Ok(());
                    }
                }
                Tried::Fatal(failure) => return Err(self.remote.fail(&self.operation, failure)),
            }
        }
    }

    /// Whether the registry now has the blob (a HEAD on it).
    async fn blob_present(&self) -> Result<bool, PushError> {
        let url = self.remote.url(&format!("blobs/{}", self.digest))?;
        let http = self.remote.http().clone();
        let response = self
            .remote
            .send(&self.operation, &self.scopes(), &|| http.head(url.clone()))
            .await?;
        Ok(response.status() == StatusCode::OK)
    }

    /// `GET` on the session: its (possibly new) URL and the last byte the registry holds,
    /// or `None` when the session is gone.
    async fn status(&self, url: &Url) -> Result<Option<(Url, Option<u64>)>, PushError> {
        let http = self.remote.http().clone();
        let make = || http.get(url.clone());
        let response = self
            .remote
            .send(&self.operation, &self.scopes(), &make)
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let url = match response.headers().get(LOCATION) {
                    Some(_) => self.remote.location(&self.operation, &response)?,
                    None => url.clone(),
                };
                Ok(Some((url, range_last(response.headers()))))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.remote.status_error(&self.operation, response).await),
        }
    }
}

/// The last byte `N` a `Range: 0-N` header says the registry holds.
fn range_last(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get("range")?.to_str().ok()?;
    let value = value.trim().trim_start_matches("bytes=");
    let (_, end) = value.split_once('-')?;
    end.trim().parse::<u64>().ok()
}

/// One past the last byte a `Range: 0-N` header says the registry holds (`N + 1`).
fn committed_end(headers: &HeaderMap) -> Option<u64> {
    range_last(headers).map(|n| n + 1)
}

/// A request body streaming `len` bytes of `file` from `start`, counting what it yields.
fn file_body(file: Arc<File>, start: u64, len: u64, counter: Arc<AtomicU64>) -> reqwest::Body {
    let end = start + len;
    let stream = futures_util::stream::try_unfold(start, move |position| {
        let file = Arc::clone(&file);
        let counter = Arc::clone(&counter);
        async move {
            if position >= end {
                return Ok(None);
            }
            let want = (end - position).min(READ_BUFFER as u64) as usize;
            // Positional reads share no file cursor, so concurrent retries cannot interfere.
            let read = tokio::task::spawn_blocking(move || {
                let mut buffer = vec![0u8; want];
                let n = file.read_at(&mut buffer, position)?;
                buffer.truncate(n);
                Ok::<_, io::Error>(buffer)
            })
            .await
            .map_err(io::Error::other)??;
            if read.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stored blob ended early",
                ));
            }
            counter.fetch_add(read.len() as u64, Ordering::Relaxed);
            let next = position + read.len() as u64;
            Ok::<_, io::Error>(Some((Bytes::from(read), next)))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// Whether a send error is a network hiccup (connect, reset, timeout) rather than a refusal:
/// the authenticator's error carries the client's error among its causes.
fn is_transient(error: &AuthError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(e) = current.downcast_ref::<reqwest::Error>() {
            return e.is_connect() || e.is_timeout() || e.is_request() || e.is_body();
        }
        if current.downcast_ref::<io::Error>().is_some() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// The failure for an answer with an unexpected status, keeping the start of its body.
async fn status_failure(mut response: Response) -> RequestFailure {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    RequestFailure::Status {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `Retry-After` as a delay: delta-seconds, or an HTTP date (IMF-fixdate) from `now`.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT`, the only date form senders may use (RFC 9110).
pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
    let (_, rest) = text.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [hour, minute, second] = hms[..] else {
        return None;
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn store_error(
    remote: &Remote<'_>,
    operation: &str,
    source: crate::store::StoreError,
) -> PushError {
    PushError::Store {
        registry: remote.registry.clone(),
        repository: remote.repository.clone(),
        operation: operation.to_string(),
        source: Box::new(source),
    }
}

/// True when `error` is the registry refusing the credentials, not a transport failure.
fn is_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        error.downcast_ref::<crate::registry::AuthError>(),
        Some(crate::registry::AuthError::Unauthorized { .. })
            | Some(crate::registry::AuthError::Forbidden { .. })
    )
}

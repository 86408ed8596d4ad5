//! A local stand-in for GitHub's REST API, serving the few endpoints the action asks for
//! with the response shapes GitHub documents (trimmed to the fields that matter, plus
//! enough of the rest to look like the real thing). GitHub itself cannot be reached here.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One branch or tag of the fake repository.
#[derive(Clone, Debug)]
pub struct FakeRef {
    /// `refs/heads/NAME` or `refs/tags/NAME`.
    pub full_ref: String,
    /// The commit it points at.
    pub sha: String,
}

/// What the fake repository holds.
#[derive(Clone, Debug)]
pub struct FakeRepo {
    /// `Owner/Name` as GitHub spells it.
    pub full_name: String,
    /// `default_branch`.
    pub default_branch: String,
    /// `description`.
    pub description: String,
    /// `license.spdx_id`.
    pub license: String,
    /// Branches and tags.
    pub refs: Vec<FakeRef>,
    /// Commit SHA → committer date (RFC 3339).
    pub commits: BTreeMap<String, String>,
}

/// A running fake API.
pub struct FakeGitHub {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeGitHub {
    /// Serves `repo` on a loopback port until the test process ends.
    pub fn start(repo: FakeRepo) -> FakeGitHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake GitHub API");
        let addr = listener.local_addr().expect("local addr").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let base = format!("http://{addr}");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut authorization = String::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if header.to_ascii_lowercase().starts_with("authorization:") {
                        authorization = header.trim().to_string();
                    }
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                log.lock()
                    .unwrap()
                    .push(format!("GET {path} {}", !authorization.is_empty()));
                let (status, body) = respond(&repo, &base, &path);
                let reason = if status == 200 { "OK" } else { "Not Found" };
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; \
                     charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        FakeGitHub { addr, requests }
    }

    /// `http://127.0.0.1:PORT`, for `GITHUB_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests served so far: `GET PATH AUTHORIZED?`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn not_found() -> (u16, String) {
    (
        404,
        r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}"#
            .to_string(),
    )
}

fn respond(repo: &FakeRepo, base: &str, path: &str) -> (u16, String) {
    let prefix = format!("/repos/{}", repo.full_name);
    let Some(rest) = path.strip_prefix(&prefix) else {
        return not_found();
    };
    let (rest, _query) = rest.split_once('?').unwrap_or((rest, ""));
    let owner = repo.full_name.split('/').next().unwrap_or_default();
    if rest.is_empty() {
        let body = serde_json::json!({
            "id": 1296269,
            "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
            "name": repo.full_name.split('/').nth(1),
            "full_name": repo.full_name,
            "owner": {"login": owner, "id": 1, "type": "Organization"},
            "private": false,
            "html_url": format!("https://github.com/{}", repo.full_name),
            "description": repo.description,
            "fork": false,
            "url": format!("{base}{prefix}"),
            "default_branch": repo.default_branch,
            "license": {"key": "mit", "name": "MIT License", "spdx_id": repo.license,
                        "url": "https://api.github.com/licenses/mit", "node_id": "MDc6TGljZW5zZW1pdA=="},
            "visibility": "public",
        });
        return (200, body.to_string());
    }
    if let Some(name) = rest.strip_prefix("/git/ref/") {
        let full_ref = format!("refs/{name}");
        return match repo.refs.iter().find(|r| r.full_ref == full_ref) {
            Some(found) => {
                let kind = if full_ref.starts_with("refs/tags/") {
                    "tag"
                } else {
                    "commit"
                };
                let body = serde_json::json!({
                    "ref": found.full_ref,
                    "node_id": "MDM6UmVmcmVmcy9oZWFkcy9mZWF0dXJlQQ==",
                    "url": format!("{base}{prefix}/git/{}", found.full_ref),
                    "object": {"type": kind, "sha": found.sha,
                               "url": format!("{base}{prefix}/git/commits/{}", found.sha)},
                });
                (200, body.to_string())
            }
            None => not_found(),
        };
    }
    if let Some(reference) = rest.strip_prefix("/commits/") {
        let sha = repo
            .refs
            .iter()
            .find(|r| {
                r.full_ref == reference
                    || r.full_ref == format!("refs/heads/{reference}")
                    || r.full_ref == format!("refs/tags/{reference}")
            })
            .map(|r| r.sha.clone())
            .or_else(|| {
                repo.commits
                    .keys()
                    .find(|sha| sha.starts_with(reference))
                    .cloned()
            });
        let Some(sha) = sha else {
            return (
                422,
                r#"{"message":"No commit found for SHA: x","documentation_url":"https://docs.github.com/rest/commits/commits#get-a-commit","status":"422"}"#
                    .to_string(),
            );
        };
        let date = repo.commits.get(&sha).cloned().unwrap_or_default();
        let body = serde_json::json!({
            "sha": sha,
            "node_id": "MDY6Q29tbWl0NmRjYjA5YjViNTc4NzVmMzM0ZjYxYWViZWQ2OTVlMmU0MTkzZGI1ZQ==",
            "url": format!("{base}{prefix}/commits/{sha}"),
            "commit": {
                "author": {"name": "Mona Octocat", "email": "mona@github.com", "date": date},
                "committer": {"name": "Mona Octocat", "email": "mona@github.com", "date": date},
                "message": "Fix all the bugs",
                "tree": {"url": format!("{base}{prefix}/tree/{sha}"), "sha": sha},
            },
            "parents": [],
        });
        return (200, body.to_string());
    }
    if rest == "/tags" {
        let tags: Vec<serde_json::Value> = repo
            .refs
            .iter()
            .filter_map(|r| r.full_ref.strip_prefix("refs/tags/").map(|name| (name, r)))
            .map(|(name, r)| {
                serde_json::json!({
                    "name": name,
                    "commit": {"sha": r.sha, "url": format!("{base}{prefix}/commits/{}", r.sha)},
                    "zipball_url": format!("{base}{prefix}/zipball/{name}"),
                    "tarball_url": format!("{base}{prefix}/tarball/{name}"),
                    "node_id": "MDQ6VXNlcjE=",
                })
            })
            .collect();
        return (200, serde_json::Value::Array(tags).to_string());
    }
    not_found()
}

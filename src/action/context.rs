//! The runner's context: `GITHUB_*` variables and the event payload, read once into
//! plain fields, plus the UTC time type the tag templates and labels format.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// Why the runner's context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A variable the runner always sets is missing or empty.
    #[error("environment variable `{0}` is not set; is this running inside a GitHub Actions job?")]
    Missing(&'static str),
    /// The event payload at `GITHUB_EVENT_PATH` is not the JSON GitHub documents.
    #[error("failed to parse the event payload of `{event}` as JSON")]
    Payload {
        /// The event name, from `GITHUB_EVENT_NAME`.
        event: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A timestamp in the payload is not RFC 3339.
    #[error("failed to read `head_commit.timestamp` of the event payload")]
    Timestamp(#[source] TimeError),
}

/// What kind of git ref a run was triggered for, computed from `GITHUB_REF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/heads/<name>`: the branch name, slashes kept.
    Branch(String),
    /// `refs/tags/<name>`: the tag name.
    Tag(String),
    /// `refs/pull/<number>/merge` (or `/head`): the pull request number.
    PullRequest(u64),
    /// Anything else, including an empty ref.
    Other,
}

impl RefKind {
    /// Classifies a full ref such as `refs/heads/main`.
    pub fn parse(full_ref: &str) -> RefKind {
        if let Some(branch) = full_ref.strip_prefix("refs/heads/") {
            return RefKind::Branch(branch.to_string());
        }
        if let Some(tag) = full_ref.strip_prefix("refs/tags/") {
            return RefKind::Tag(tag.to_string());
        }
        if let Some(rest) = full_ref.strip_prefix("refs/pull/") {
            let number = rest.split('/').next().unwrap_or("");
            if let Ok(number) = number.parse() {
                return RefKind::PullRequest(number);
            }
        }
        RefKind::Other
    }
}

/// The pull request part of a `pull_request` or `pull_request_target` payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequest {
    /// `pull_request.number`.
    pub number: Option<u64>,
    /// `pull_request.head.repo.full_name`; None when the head repository was deleted.
    pub head_repo_full_name: Option<String>,
    /// `pull_request.head.repo.fork`: whether the head repository is a fork of anything.
    pub head_repo_fork: Option<bool>,
    /// `pull_request.head.sha`: the PR's own head commit (`GITHUB_SHA` is the merge commit).
    pub head_sha: Option<String>,
    /// `pull_request.base.ref`: the branch the PR targets.
    pub base_ref: Option<String>,
}

/// Everything the action reads about the run, from the environment and the payload.
///
/// Payload fields stay None when the payload lacks them; the action layer fills
/// them from the GitHub API before computing tags and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitHubContext {
    /// `GITHUB_EVENT_NAME`, such as `push` or `pull_request`.
    pub event_name: String,
    /// `GITHUB_REF`, the full ref; may be empty for some events.
    pub git_ref: String,
    /// `GITHUB_REF_NAME`, the short ref name.
    pub ref_name: String,
    /// `GITHUB_REF_TYPE`: `branch` or `tag` when set.
    pub ref_type: Option<String>,
    /// `GITHUB_SHA`, the commit the run checked out.
    pub sha: String,
    /// `GITHUB_REPOSITORY`, `owner/name` as GitHub spells it (may contain capitals).
    pub repository: String,
    /// `GITHUB_REPOSITORY_OWNER`.
    pub repository_owner: String,
    /// `GITHUB_ACTOR`, the default registry user name.
    pub actor: String,
    /// `GITHUB_SERVER_URL`, `https://github.com` unless on GitHub Enterprise.
    pub server_url: String,
    /// `GITHUB_API_URL`, `https://api.github.com` unless on GitHub Enterprise.
    pub api_url: String,
    /// `GITHUB_RUN_ID`.
    pub run_id: String,
    /// `GITHUB_WORKSPACE`, the default build context.
    pub workspace: String,
    /// `GITHUB_HEAD_REF`: the PR's source branch, on pull request events only.
    pub head_ref: Option<String>,
    /// `GITHUB_BASE_REF`: the PR's target branch, on pull request events only.
    pub base_ref: Option<String>,
    /// `repository.default_branch` of the payload.
    pub default_branch: Option<String>,
    /// `repository.description` of the payload.
    pub description: Option<String>,
    /// `repository.license.spdx_id` of the payload (`NOASSERTION` is dropped).
    pub license: Option<String>,
    /// `repository.html_url` of the payload.
    pub html_url: Option<String>,
    /// `head_commit.timestamp` of a push payload: the commit time.
    pub commit_time: Option<UtcTime>,
    /// `base_ref` of a push payload: the branch a pushed tag points into, when known.
    pub push_base_ref: Option<String>,
    /// The pull request of a `pull_request*` payload.
    pub pull_request: Option<PullRequest>,
    /// `inputs.ref` of a `workflow_dispatch` payload: the ref to rebuild.
    pub dispatch_ref: Option<String>,
}

impl GitHubContext {
    /// Reads the context from the runner's environment and, when there is one, the
    /// text of the event payload file named by `GITHUB_EVENT_PATH`.
    pub fn from_env(
        env: &BTreeMap<String, String>,
        event_json: Option<&str>,
    ) -> Result<GitHubContext, ContextError> {
        let optional = |name: &str| env.get(name).filter(|value| !value.is_empty()).cloned();
        let required = |name: &'static str| optional(name).ok_or(ContextError::Missing(name));
        let mut context = GitHubContext {
            event_name: required("GITHUB_EVENT_NAME")?,
            git_ref: optional("GITHUB_REF").unwrap_or_default(),
            ref_name: optional("GITHUB_REF_NAME").unwrap_or_default(),
            ref_type: optional("GITHUB_REF_TYPE"),
            sha: required("GITHUB_SHA")?,
            repository: required("GITHUB_REPOSITORY")?,
            repository_owner: optional("GITHUB_REPOSITORY_OWNER").unwrap_or_default(),
            actor: optional("GITHUB_ACTOR").unwrap_or_default(),
            server_url: optional("GITHUB_SERVER_URL")
                .unwrap_or_else(|| "https://github.com".to_string()),
            api_url: optional("GITHUB_API_URL")
                .unwrap_or_else(|| "https://api.github.com".to_string()),
            run_id: optional("GITHUB_RUN_ID").unwrap_or_default(),
            workspace: optional("GITHUB_WORKSPACE").unwrap_or_default(),
            head_ref: optional("GITHUB_HEAD_REF"),
            base_ref: optional("GITHUB_BASE_REF"),
            ..GitHubContext::default()
        };
        if context.repository_owner.is_empty() {
            let owner = context.repository.split('/').next().unwrap_or_default();
            context.repository_owner = owner.to_string();
        }
        if let Some(json) = event_json.filter(|json| !json.trim().is_empty()) {
            let payload: Payload =
                serde_json::from_str(json).map_err(|source| ContextError::Payload {
                    event: context.event_name.clone(),
                    source,
                })?;
            context.apply_payload(payload)?;
        }
        Ok(context)
    }

    fn apply_payload(&mut self, payload: Payload) -> Result<(), ContextError> {
        if let Some(repository) = payload.repository {
            self.default_branch = repository.default_branch;
            self.description = repository.description.filter(|text| !text.is_empty());
            // GitHub reports `NOASSERTION` when it cannot tell the license; that is not
            // an SPDX expression and must not reach the `licenses` label.
            self.license = repository
                .license
                .and_then(|license| license.spdx_id)
                .filter(|id| !id.is_empty() && id != "NOASSERTION");
            self.html_url = repository.html_url;
        }
        if let Some(timestamp) = payload.head_commit.and_then(|commit| commit.timestamp) {
            let time = UtcTime::parse_rfc3339(&timestamp).map_err(ContextError::Timestamp)?;
            self.commit_time = Some(time);
        }
        self.push_base_ref = payload.base_ref;
        if let Some(pull) = payload.pull_request {
            let head = pull.head.unwrap_or_default();
            let head_repo = head.repo.unwrap_or_default();
            self.pull_request = Some(PullRequest {
                number: pull.number.or(payload.number),
                head_repo_full_name: head_repo.full_name,
                head_repo_fork: head_repo.fork,
                head_sha: head.sha,
                base_ref: pull.base.and_then(|base| base.git_ref),
            });
        }
        if let Some(inputs) = payload.inputs {
            // Inputs of a workflow_dispatch are strings, but a `type: boolean` or
            // `type: number` input arrives as JSON of that type; `ref` is text.
            if let Some(serde_json::Value::String(text)) = inputs.get("ref") {
                self.dispatch_ref = Some(text.clone()).filter(|text| !text.is_empty());
            }
        }
        Ok(())
    }

    /// The kind of ref this run builds, from `git_ref`.
    pub fn ref_kind(&self) -> RefKind {
        RefKind::parse(&self.git_ref)
    }

    /// Whether this is a pull request whose head lives in another repository, so the
    /// workflow's token is read-only and pushing must be skipped.
    ///
    /// The head repository's `fork` flag alone is not enough: a repository that is
    /// itself a fork has `fork: true` on its own same-repository pull requests. So the
    /// head's full name is compared with this repository; a deleted head repository
    /// (null in the payload) counts as a fork.
    pub fn is_fork_pr(&self) -> bool {
        let Some(pull) = &self.pull_request else {
            return false;
        };
        match &pull.head_repo_full_name {
            Some(name) => !name.eq_ignore_ascii_case(&self.repository),
            None => pull.head_repo_fork.unwrap_or(true),
        }
    }

    /// Whether this run builds the repository's default branch.
    ///
    /// A `schedule` run always builds the default branch's latest commit, so it counts
    /// even when the payload carries no repository; other events need `default_branch`.
    pub fn is_default_branch(&self) -> bool {
        let RefKind::Branch(branch) = self.ref_kind() else {
            return false;
        };
        if self.default_branch.as_deref() == Some(branch.as_str()) {
            return true;
        }
        self.event_name == "schedule"
    }

    /// Points the context at another ref, for a `workflow_dispatch` rebuild whose
    /// `ref` input the action layer resolved (through the API) to a full ref and commit.
    ///
    /// The payload's commit time belonged to the triggering commit, so it is dropped.
    pub fn retarget(&mut self, full_ref: &str, sha: &str) {
        self.git_ref = full_ref.to_string();
        let (name, kind) = match RefKind::parse(full_ref) {
            RefKind::Branch(name) => (name, Some("branch")),
            RefKind::Tag(name) => (name, Some("tag")),
            _ => (full_ref.to_string(), None),
        };
        self.ref_name = name;
        self.ref_type = kind.map(str::to_string);
        if self.sha != sha {
            self.commit_time = None;
        }
        self.sha = sha.to_string();
    }
}

// The payload shapes below are the subset of GitHub's documented webhook payloads the
// action reads; every field is optional because each event carries a different part.
#[derive(Deserialize)]
struct Payload {
    repository: Option<PayloadRepository>,
    head_commit: Option<PayloadCommit>,
    base_ref: Option<String>,
    number: Option<u64>,
    pull_request: Option<PayloadPull>,
    inputs: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct PayloadRepository {
    default_branch: Option<String>,
    description: Option<String>,
    license: Option<PayloadLicense>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct PayloadLicense {
    spdx_id: Option<String>,
}

#[derive(Deserialize)]
struct PayloadCommit {
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct PayloadPull {
    number: Option<u64>,
    head: Option<PayloadPullHead>,
    base: Option<PayloadPullBase>,
}

#[derive(Deserialize, Default)]
struct PayloadPullHead {
    sha: Option<String>,
    repo: Option<PayloadPullRepo>,
}

#[derive(Deserialize)]
struct PayloadPullBase {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

#[derive(Deserialize, Default)]
struct PayloadPullRepo {
    full_name: Option<String>,
    fork: Option<bool>,
}

/// Why a timestamp could not be read.
#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 timestamp such as 2024-05-01T12:00:00Z")]
pub struct TimeError {
    text: String,
}

/// A point in time in whole seconds, UTC. Built from the commit time or a caller's
/// clock, never from the wall clock inside this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime {
    unix: i64,
}

/// A UTC time broken into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// The year, such as 2024.
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// The second, 0 to 59.
    pub second: u32,
}

impl UtcTime {
    /// The time `unix` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(unix: i64) -> UtcTime {
        UtcTime { unix }
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix(self) -> i64 {
        self.unix
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, the form of GitHub's commit
    /// timestamps; fractions of a second are dropped.
    pub fn parse_rfc3339(text: &str) -> Result<UtcTime, TimeError> {
        parse_rfc3339(text).ok_or_else(|| TimeError {
            text: text.to_string(),
        })
    }

    /// The calendar fields of this time in UTC.
    pub fn civil(self) -> CivilTime {
        let days = self.unix.div_euclid(86_400);
        let seconds = self.unix.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        CivilTime {
            year,
            month,
            day,
            hour: seconds / 3600,
            minute: seconds / 60 % 60,
            second: seconds % 60,
        }
    }

    /// Formats as RFC 3339 in UTC, such as `2024-05-01T12:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn parse_rfc3339(text: &str) -> Option<UtcTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    // RFC 3339 allows a leap second (60); it is folded onto the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = &rest[1..];
            if zone.len() != 5 || zone.as_bytes()[2] != b':' {
                return None;
            }
            let hours: i64 = zone[0..2].parse().ok()?;
            let minutes: i64 = zone[3..5].parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(UtcTime::from_unix(unix))
}

// Days since 1970-01-01 of a proleptic Gregorian date, counting in 400-year eras
// that start on March 1st so the leap day falls at the end of each year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

// The inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Simulated runner runs shared by the tests of this crate: the environment a runner
/// sets for each case of the issue, with the payload fixture under `tests/data/events`.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A simulated run: its environment and payload text.
    pub(crate) struct Run {
        pub(crate) env: BTreeMap<String, String>,
        pub(crate) payload: &'static str,
    }

    impl Run {
        pub(crate) fn context(&self) -> GitHubContext {
            GitHubContext::from_env(&self.env, Some(self.payload)).expect("fixture context")
        }
    }

    pub(crate) const SHA: &str = "9f3c2a1b7e4d5c6b8a90f1e2d3c4b5a697887766";
    pub(crate) const PR_MERGE_SHA: &str = "0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5";

    fn run(event: &str, git_ref: &str, sha: &str, payload: &'static str) -> Run {
        let (ref_name, ref_type) = match RefKind::parse(git_ref) {
            RefKind::Branch(name) => (name, "branch"),
            RefKind::Tag(name) => (name, "tag"),
            RefKind::PullRequest(number) => (format!("{number}/merge"), "branch"),
            RefKind::Other => (String::new(), ""),
        };
        let pairs = [
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REF", git_ref),
            ("GITHUB_REF_NAME", &ref_name),
            ("GITHUB_REF_TYPE", ref_type),
            ("GITHUB_SHA", sha),
            ("GITHUB_REPOSITORY", "Acme-Corp/Web-App"),
            ("GITHUB_REPOSITORY_OWNER", "Acme-Corp"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_API_URL", "https://api.github.com"),
            ("GITHUB_RUN_ID", "8812345678"),
            ("GITHUB_WORKSPACE", "/github/workspace"),
            ("GITHUB_EVENT_PATH", "/github/workflow/event.json"),
            // The runner sets these two on every event, empty outside pull requests.
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_BASE_REF", ""),
        ];
        let env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Run { env, payload }
    }

    pub(crate) fn push_main() -> Run {
        let payload = include_str!("../../tests/data/events/push_main.json");
        run("push", "refs/heads/main", SHA, payload)
    }

    pub(crate) fn push_branch() -> Run {
        let payload = include_str!("../../tests/data/events/push_branch.json");
        run("push", "refs/heads/feature/Login-Form", SHA, payload)
    }

    pub(crate) fn push_tag() -> Run {
        let payload = include_str!("../../tests/data/events/push_tag.json");
        run("push", "refs/tags/v1.2.3", SHA, payload)
    }

    pub(crate) fn push_prerelease() -> Run {
        let payload = include_str!("../../tests/data/events/push_tag_prerelease.json");
        run("push", "refs/tags/v2.0.0-rc.1", SHA, payload)
    }

    fn pull(payload: &'static str, head_ref: &str) -> Run {
        let mut run = run("pull_request", "refs/pull/42/merge", PR_MERGE_SHA, payload);
        run.env.insert("GITHUB_HEAD_REF".into(), head_ref.into());
        run.env.insert("GITHUB_BASE_REF".into(), "main".into());
        run
    }

    pub(crate) fn pull_fork() -> Run {
        pull(
            include_str!("../../tests/data/events/pull_request_fork.json"),
            "patch-1",
        )
    }

    pub(crate) fn pull_same() -> Run {
        pull(
            include_str!("../../tests/data/events/pull_request_same.json"),
            "fix/typo",
        )
    }

    pub(crate) fn dispatch() -> Run {
        let payload = include_str!("../../tests/data/events/workflow_dispatch.json");
        run("workflow_dispatch", "refs/heads/main", SHA, payload)
    }

    pub(crate) fn schedule() -> Run {
        let payload = include_str!("../../tests/data/events/schedule.json");
        run("schedule", "refs/heads/main", SHA, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[derive(Clone)]
    struct Expected {
        kind: RefKind,
        fork: bool,
        default_branch: Option<&'static str>,
        on_default: bool,
        commit_time: Option<&'static str>,
        dispatch_ref: Option<&'static str>,
    }

    fn check(run: Run, expected: Expected) {
        let context = run.context();
        assert_eq!(
            context.ref_kind(),
            expected.kind,
            "ref kind of {}",
            context.git_ref
        );
        assert_eq!(
            context.is_fork_pr(),
            expected.fork,
            "fork of {}",
            context.git_ref
        );
        assert_eq!(context.default_branch.as_deref(), expected.default_branch);
        assert_eq!(context.is_default_branch(), expected.on_default);
        let time = context.commit_time.map(UtcTime::to_rfc3339);
        assert_eq!(time.as_deref(), expected.commit_time);
        assert_eq!(context.dispatch_ref.as_deref(), expected.dispatch_ref);
        assert_eq!(context.repository, "Acme-Corp/Web-App");
    }

    #[test]
    fn simulated_runner_cases() {
        let base = Expected {
            kind: RefKind::Branch("main".into()),
            fork: false,
            default_branch: Some("main"),
            on_default: true,
            commit_time: None,
            dispatch_ref: None,
        };
        let pushed_at = Some("2026-11-30T08:15:42Z");
        check(
            push_main(),
            Expected {
                commit_time: pushed_at,
                ..base.clone()
            },
        );
        let feature = RefKind::Branch("feature/Login-Form".into());
        let not_default = Expected {
            on_default: false,
            commit_time: pushed_at,
            ..base.clone()
        };
        check(
            push_branch(),
            Expected {
                kind: feature,
                ..not_default
            },
        );
        check(
            push_tag(),
            Expected {
                kind: RefKind::Tag("v1.2.3".into()),
                ..not_default
            },
        );
        let rc = RefKind::Tag("v2.0.0-rc.1".into());
        check(
            push_prerelease(),
            Expected {
                kind: rc,
                ..not_default
            },
        );
        let pr = RefKind::PullRequest(42);
        check(
            pull_fork(),
            Expected {
                kind: pr.clone(),
                fork: true,
                on_default: false,
                ..base.clone()
            },
        );
        check(
            pull_same(),
            Expected {
                kind: pr,
                on_default: false,
                ..base.clone()
            },
        );
        check(
            dispatch(),
            Expected {
                dispatch_ref: Some("v1.1.0"),
                ..base.clone()
            },
        );
        // GitHub's schedule payload carries no repository; a schedule run is on the
        // default branch all the same.
        check(
            schedule(),
            Expected {
                default_branch: None,
                ..base.clone()
            },
        );
    }

    #[test]
    fn payload_fields_of_a_push() {
        let context = push_main().context();
        assert_eq!(
            context.description.as_deref(),
            Some("The Acme web application")
        );
        assert_eq!(context.license.as_deref(), Some("Apache-2.0"));
        assert_eq!(
            context.html_url.as_deref(),
            Some("https://github.com/Acme-Corp/Web-App")
        );
        assert_eq!(context.workspace, "/github/workspace");
        assert_eq!(context.head_ref, None, "an empty GITHUB_HEAD_REF is unset");
    }

    #[test]
    fn payload_fields_of_a_pull_request() {
        let context = pull_fork().context();
        let pull = context.pull_request.as_ref().expect("pull request");
        assert_eq!(pull.number, Some(42));
        assert_eq!(
            pull.head_repo_full_name.as_deref(),
            Some("outsider/Web-App")
        );
        assert_eq!(
            pull.head_sha.as_deref(),
            Some("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")
        );
        assert_eq!(pull.base_ref.as_deref(), Some("main"));
        assert_eq!(context.head_ref.as_deref(), Some("patch-1"));
        assert_eq!(context.license, None, "NOASSERTION is not a license");
    }

    // A repository that is itself a fork sends `fork: true` on its own pull requests.
    #[test]
    fn same_repo_pr_of_a_forked_repository_is_not_a_fork_pr() {
        let mut context = pull_same().context();
        let pull = context.pull_request.as_mut().expect("pull request");
        pull.head_repo_fork = Some(true);
        assert!(!context.is_fork_pr());
        let pull = context.pull_request.as_mut().expect("pull request");
        pull.head_repo_full_name = None;
        assert!(
            context.is_fork_pr(),
            "a deleted head repository counts as a fork"
        );
    }

    #[test]
    fn missing_variables_are_named() {
        let mut run = push_main();
        run.env.insert("GITHUB_SHA".into(), String::new());
        let error = GitHubContext::from_env(&run.env, None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("environment variable `GITHUB_SHA` is not set")
        );
        let error = GitHubContext::from_env(&push_main().env, Some("{not json")).unwrap_err();
        assert!(matches!(error, ContextError::Payload { .. }), "{error}");
    }

    #[test]
    fn retarget_for_a_rebuild() {
        let mut context = dispatch().context();
        context.retarget(
            "refs/tags/v1.1.0",
            "1111111111111111111111111111111111111111",
        );
        assert_eq!(context.ref_kind(), RefKind::Tag("v1.1.0".into()));
        assert_eq!(context.ref_name, "v1.1.0");
        assert_eq!(context.ref_type.as_deref(), Some("tag"));
        assert_eq!(context.sha, "1111111111111111111111111111111111111111");
        // The payload's commit time belongs to the payload's commit only.
        let mut context = push_main().context();
        context.retarget("refs/heads/main", SHA);
        assert!(context.commit_time.is_some(), "same commit keeps its time");
        context.retarget(
            "refs/tags/v1.1.0",
            "1111111111111111111111111111111111111111",
        );
        assert_eq!(context.commit_time, None);
    }

    #[test]
    fn ref_kinds() {
        let cases = [
            ("refs/heads/a/b", RefKind::Branch("a/b".into())),
            ("refs/tags/v1", RefKind::Tag("v1".into())),
            ("refs/pull/7/merge", RefKind::PullRequest(7)),
            ("refs/pull/7/head", RefKind::PullRequest(7)),
            ("refs/pull/x/merge", RefKind::Other),
            ("", RefKind::Other),
            ("refs/remotes/origin/main", RefKind::Other),
        ];
        for (text, expected) in cases {
            assert_eq!(RefKind::parse(text), expected, "{text}");
        }
    }

    #[test]
    fn rfc3339() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-11-30T09:15:42+01:00", Some(1_796_026_542)),
            ("2026-11-30T08:15:42.123Z", Some(1_796_026_542)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2001-02-29T00:00:00Z", None),
            ("2026-11-30 08:15", None),
            ("2026-11-30T08:15:42", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-30T08:15:42+0100", None),
        ];
        for (text, expected) in cases {
            let parsed = UtcTime::parse_rfc3339(text).ok().map(UtcTime::unix);
            assert_eq!(parsed, expected, "{text}");
        }
        assert_eq!(
            UtcTime::from_unix(1_796_026_542).to_rfc3339(),
            "2026-11-30T08:15:42Z"
        );
        assert_eq!(
            UtcTime::from_unix(951_782_400).to_rfc3339(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(UtcTime::from_unix(-1).to_rfc3339(), "1969-12-31T23:59:59Z");
    }
}

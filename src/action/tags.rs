//! Image tags from git: metadata-action's rule syntax for the `tags` input, its
//! templates, the `latest` rule, and sanitizing every tag to the tag grammar.
//!
//! With no rules the action tags the branch name, the version of a semver git tag
//! (the tag name itself for any other git tag), `pr-<N>` for a pull request,
//! `nightly` for a schedule, and the full commit SHA; `latest=auto` then means a
//! non-PR run on the default branch or a stable semver git tag (unless a higher release
//! exists, see below). A `pull_request_target` run (which sits on the
//! base branch's ref) gets `pr-<N>` and the PR's head SHA, never the branch name.
//!
//! With rules, `latest=auto` follows metadata-action: the first rule that yields a tag
//! decides, and a stable semver or PEP 440 version or a git tag (`type=ref,event=tag`)
//! gets `latest`. One exception: a semver git tag below the highest release (which
//! the caller looks up) never moves `latest`, so rebuilding `v1.1.0` after `v1.2.3`
//! leaves `latest` on `v1.2.3`.

use sha2::{Digest, Sha256};

use crate::action::context::{GitHubContext, RefKind, UtcTime};

mod pep440;
mod rules;
mod template;
mod version;

pub use pep440::{Pep440, PreKind};
use rules::default_priority;
pub use rules::parse_rules;
pub use template::Template;
use template::{Eval, Piece, SemverPart, VersionParts};
pub use version::Version;

/// The longest tag the distribution spec allows.
pub const MAX_TAG_LEN: usize = 128;

/// Hex characters of the hash that ends a shortened tag.
const HASH_LEN: usize = 12;

/// A rule line that cannot be parsed, or a rule whose templates fail to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct TagRuleError {
    /// The 1-based line of the `tags` input.
    pub line: usize,
    /// What is wrong, naming the key or value.
    pub problem: String,
}

/// The `latest` input: whether the `latest` tag is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatestMode {
    /// Decided by the rules (see the module documentation).
    #[default]
    Auto,
    /// Always added.
    Always,
    /// Never added.
    Never,
}

/// How much of the commit SHA a `type=sha` rule uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShaFormat {
    /// The first 7 hex characters (`format=short`, the default).
    Short,
    /// All 40 (`format=long`).
    Long,
}

/// The event a `type=ref` rule reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefEvent {
    /// `event=branch`: the branch name on a branch ref.
    Branch,
    /// `event=tag`: the git tag name on a tag ref.
    Tag,
    /// `event=pr`: the pull request number (prefix `pr-` by default).
    Pr,
}

/// What a rule produces, per its `type=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// `type=schedule`: the pattern (default `nightly`) on `schedule` events.
    Schedule {
        /// The `pattern=` template.
        pattern: Template,
    },
    /// `type=semver`: the git tag (or `value=`) rendered through `pattern=`.
    Semver {
        /// The `pattern=` template, with `{{version}}`, `{{major}}` and so on.
        pattern: Template,
        /// The `value=` template that replaces the git tag as the version source.
        value: Option<Template>,
    },
    /// `type=pep440`: as semver, for PEP 440 versions; pre-, post- and development
    /// releases only get their full normalized version.
    Pep440 {
        /// The `pattern=` template.
        pattern: Template,
        /// The `value=` template that replaces the git tag as the version source.
        value: Option<Template>,
    },
    /// `type=edge`: `edge` on the given branch (default: the default branch).
    Edge {
        /// The `branch=` attribute.
        branch: Option<String>,
    },
    /// `type=ref`: the branch, tag or pull request number.
    Ref(RefEvent),
    /// `type=raw` (or a line without `type=`): the value as given, templated.
    Raw {
        /// The `value=` template.
        value: Template,
    },
    /// `type=sha`: the commit SHA (prefix `sha-` by default).
    Sha {
        /// The `format=` attribute.
        format: ShaFormat,
    },
}

/// One parsed line of the `tags` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRule {
    /// What the rule produces.
    pub kind: RuleKind,
    /// The `enable=` template; it must evaluate to `true` or `false`.
    pub enable: Template,
    /// The `priority=`: higher first; defaults per type as metadata-action's.
    pub priority: i64,
    /// The `prefix=` template, if any.
    pub prefix: Option<Template>,
    /// The `suffix=` template, if any.
    pub suffix: Option<Template>,
    /// The 1-based line of the input, for errors (0 for the built-in defaults).
    pub line: usize,
}

/// Everything [`compute_tags`] reads.
#[derive(Debug, Clone, Copy)]
pub struct TagRequest<'a> {
    /// The run's context, with API-filled fields (default branch) already set.
    pub context: &'a GitHubContext,
    /// The parsed `tags` input; empty means the built-in defaults.
    pub rules: &'a [TagRule],
    /// The `latest` input.
    pub latest: LatestMode,
    /// The highest stable release of the repository, when known; a git tag below it
    /// never gets `latest` in auto mode.
    pub highest_release: Option<&'a Version>,
    /// The time `{{date}}` formats: the caller's clock, never read here.
    pub now: UtcTime,
}

/// The computed tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    /// Valid, unique tags in priority order, `latest` last when present.
    pub tags: Vec<String>,
    /// The first tag: the image version for the `version` output and label.
    pub version: Option<String>,
    /// Whether `latest` is among the tags.
    pub latest: bool,
    /// Things the log should show, such as a git tag that is not semver.
    pub notes: Vec<String>,
}

/// Computes the tags of a run: rules in priority order (input order among equals),
/// each sanitized, duplicates dropped, `latest` last.
pub fn compute_tags(request: &TagRequest<'_>) -> Result<Tags, TagRuleError> {
    let context = request.context;
    let defaults;
    let rules = if request.rules.is_empty() {
        defaults = default_rules(context);
        &defaults
    } else {
        request.rules
    };
    let mut order: Vec<&TagRule> = rules.iter().collect();
    // A stable sort keeps the input order among equal priorities.
    order.sort_by_key(|rule| std::cmp::Reverse(rule.priority));

    let eval = Eval {
        context,
        now: request.now,
        version: None,
    };
    let mut notes = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    let mut auto_latest = None;
    for rule in order {
        let fail = |problem: String| TagRuleError {
            line: rule.line,
            problem,
        };
        let enabled = rule.enable.render(&eval).map_err(fail)?;
        match enabled.as_str() {
            "true" => {}
            "false" => continue,
            other => {
                return Err(fail(format!(
                    "`enable` evaluated to `{other}`, not true or false"
                )));
            }
        }
        let Some((value, latest_candidate)) = produce(rule, &eval, &mut notes).map_err(fail)?
        else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let prefix = render_optional(&rule.prefix, &eval).map_err(fail)?;
        let suffix = render_optional(&rule.suffix, &eval).map_err(fail)?;
        let tag = sanitize_tag(&format!("{prefix}{value}{suffix}"));
        // As metadata-action: the first rule that yields a tag decides `latest`.
        auto_latest.get_or_insert(latest_candidate);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }

    let mut latest = match request.latest {
        LatestMode::Always => true,
        LatestMode::Never => false,
        LatestMode::Auto if request.rules.is_empty() => {
            let release_tag = match context.ref_kind() {
                RefKind::Tag(tag) => Version::parse(&tag).is_some_and(|v| v.pre.is_empty()),
                _ => false,
            };
            release_tag
                || (context.is_default_branch() && !context.event_name.starts_with("pull_request"))
        }
        LatestMode::Auto => auto_latest.unwrap_or(false),
    };
    if latest && request.latest == LatestMode::Auto {
        latest = !older_than_highest(context, request.highest_release, &mut notes);
    }
    let version = tags.first().cloned();
    if latest && !tags.iter().any(|tag| tag == "latest") {
        tags.push("latest".to_string());
    }
    // A rule may also yield `latest` itself, like the hand-made default-branch rule.
    let latest = tags.iter().any(|tag| tag == "latest");
    Ok(Tags {
        tags,
        version,
        latest,
        notes,
    })
}

// A rebuild (or late push) of an old git tag must not move `latest` back to it.
fn older_than_highest(
    context: &GitHubContext,
    highest: Option<&Version>,
    notes: &mut Vec<String>,
) -> bool {
    let (RefKind::Tag(tag), Some(highest)) = (context.ref_kind(), highest) else {
        return false;
    };
    let Some(version) = Version::parse(&tag.replace('/', "-")) else {
        return false;
    };
    if version >= *highest {
        return false;
    }
    notes.push(format!(
        "not tagging `latest`: `{tag}` is older than the highest release `{highest}`"
    ));
    true
}

fn render_optional(template: &Option<Template>, eval: &Eval<'_>) -> Result<String, String> {
    template
        .as_ref()
        .map_or(Ok(String::new()), |template| template.render(eval))
}

// The value one rule yields for this run, and whether it would earn `latest` in auto
// mode; None when the rule does not apply to this event.
fn produce(
    rule: &TagRule,
    eval: &Eval<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<(String, bool)>, String> {
    let context = eval.context;
    let ref_kind = context.ref_kind();
    let value = match (&rule.kind, &ref_kind) {
        (RuleKind::Schedule { pattern }, _) if context.event_name == "schedule" => {
            (pattern.render(eval)?, false)
        }
        (RuleKind::Semver { pattern, value }, _) => {
            return version_tag(
                rule.line,
                pattern,
                value.as_ref(),
                eval,
                Scheme::Semver,
                notes,
            );
        }
        (RuleKind::Pep440 { pattern, value }, _) => {
            return version_tag(
                rule.line,
                pattern,
                value.as_ref(),
                eval,
                Scheme::Pep440,
                notes,
            );
        }
        (RuleKind::Edge { branch }, RefKind::Branch(current)) => {
            let wanted = branch.as_deref().or(context.default_branch.as_deref());
            if wanted != Some(current.as_str()) {
                return Ok(None);
            }
            ("edge".to_string(), false)
        }
        (RuleKind::Ref(RefEvent::Branch), RefKind::Branch(branch)) => (branch.clone(), false),
        (RuleKind::Ref(RefEvent::Tag), RefKind::Tag(tag)) => (tag.clone(), true),
        (RuleKind::Ref(RefEvent::Pr), RefKind::PullRequest(number)) => (number.to_string(), false),
        (RuleKind::Raw { value }, _) => (value.render(eval)?, false),
        (RuleKind::Sha { format }, _) if !context.sha.is_empty() => match format {
            ShaFormat::Short => (short_sha(&context.sha).to_string(), false),
            ShaFormat::Long => (context.sha.clone(), false),
        },
        _ => return Ok(None),
    };
    Ok(Some(value))
}

#[derive(Clone, Copy)]
enum Scheme {
    Semver,
    Pep440,
}

// A semver or pep440 rule: the git tag (or `value=`) parsed and rendered through the
// pattern. As metadata-action: an unstable version moves often, so it only ever gets
// its full version (or the raw text when the pattern is exactly `{{raw}}`), never
// `1` or `1.2`, and never earns `latest`.
fn version_tag(
    line: usize,
    pattern: &Template,
    value: Option<&Template>,
    eval: &Eval<'_>,
    scheme: Scheme,
    notes: &mut Vec<String>,
) -> Result<Option<(String, bool)>, String> {
    let raw = match (value, eval.context.ref_kind()) {
        (Some(value), _) => value.render(eval)?,
        (None, RefKind::Tag(tag)) => tag,
        (None, _) => return Ok(None),
    };
    let raw = raw.replace('/', "-");
    let parsed = match scheme {
        Scheme::Semver => Version::parse(&raw).map(|version| {
            let (major, minor, patch) = (version.major, version.minor, version.patch);
            (
                version.to_string(),
                [major, minor, patch],
                !version.is_prerelease(),
            )
        }),
        Scheme::Pep440 => Pep440::parse(&raw).map(|version| {
            let numbers = [0, 1, 2].map(|index| version.release_part(index));
            (version.to_string(), numbers, version.is_final())
        }),
    };
    let Some((version, [major, minor, patch], stable)) = parsed else {
        let kind = match scheme {
            Scheme::Semver => "a semantic version",
            Scheme::Pep440 => "a PEP 440 version",
        };
        notes.push(format!("`{raw}` is not {kind}, line {line}"));
        return Ok(None);
    };
    if !stable {
        let text = if pattern.is_only(Piece::Semver(SemverPart::Raw)) {
            raw
        } else {
            version
        };
        return Ok(Some((text, false)));
    }
    let parts = VersionParts {
        version,
        major,
        minor,
        patch,
        raw,
    };
    let version_eval = Eval {
        version: Some(&parts),
        ..*eval
    };
    Ok(Some((pattern.render(&version_eval)?, true)))
}

// The rules used when the `tags` input is empty (see the module documentation).
fn default_rules(context: &GitHubContext) -> Vec<TagRule> {
    let rule = |kind: RuleKind, prefix: Option<&str>| TagRule {
        priority: default_priority(&kind),
        kind,
        enable: Template::text("true"),
        prefix: prefix.map(Template::text),
        suffix: None,
        line: 0,
    };
    // `pull_request_target` runs on the base branch's ref and commit: tagging those
    // would overwrite the branch's image with a pull request's build, so its defaults
    // are the pull request's number and head commit instead.
    if context.event_name == "pull_request_target" {
        let pull = context.pull_request.clone().unwrap_or_default();
        let literal = |text: String, priority: i64| TagRule {
            priority,
            ..rule(
                RuleKind::Raw {
                    value: Template::text(&text),
                },
                None,
            )
        };
        let number = pull
            .number
            .map(|number| literal(format!("pr-{number}"), 600));
        let head = pull.head_sha.map(|sha| literal(sha, 100));
        return number.into_iter().chain(head).collect();
    }
    let mut rules = vec![rule(
        RuleKind::Schedule {
            pattern: Template::text("nightly"),
        },
        None,
    )];
    if let RefKind::Tag(tag) = context.ref_kind() {
        // A semver tag yields its version; any other tag its name, so a tag push
        // always gets a tag besides the SHA.
        if Version::parse(&tag.replace('/', "-")).is_some() {
            let pattern = Template::placeholder(Piece::Semver(SemverPart::Version));
            rules.push(rule(
                RuleKind::Semver {
                    pattern,
                    value: None,
                },
                None,
            ));
        } else {
            rules.push(rule(RuleKind::Ref(RefEvent::Tag), None));
        }
    }
    rules.push(rule(RuleKind::Ref(RefEvent::Branch), None));
    rules.push(rule(RuleKind::Ref(RefEvent::Pr), Some("pr-")));
    rules.push(rule(
        RuleKind::Sha {
            format: ShaFormat::Long,
        },
        None,
    ));
    rules
}

fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Turns any text into a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`): each run
/// of other characters becomes one `-`, leading `.` and `-` are dropped, and a result
/// over 128 characters keeps its first 115 and ends in `-` plus 12 hex characters of
/// the SHA-256 of the whole input, so texts that differ only past the cut stay apart.
/// Text with no valid character left becomes `_` plus that hash.
pub fn sanitize_tag(raw: &str) -> String {
    let mut tag = String::with_capacity(raw.len());
    let mut in_run = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            tag.push(c);
            in_run = false;
        } else if !in_run {
            tag.push('-');
            in_run = true;
        }
    }
    let tag = tag.trim_start_matches(['.', '-']);
    if tag.is_empty() {
        return format!("_{}", short_hash(raw));
    }
    if tag.len() <= MAX_TAG_LEN {
        return tag.to_string();
    }
    // The tag is ASCII by now, so byte slicing is character slicing.
    let keep = MAX_TAG_LEN - 1 - HASH_LEN;
    format!("{}-{}", &tag[..keep], short_hash(raw))
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    hex[..HASH_LEN].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::context::fixtures::{self, PR_MERGE_SHA, Run, SHA};

    // 2026-12-03T04:17:09Z, a scheduled run's clock.
    const NOW: i64 = 1_796_271_429;

    fn tags_of(run: &Run, rules: &str, latest: LatestMode, highest: Option<&str>) -> Tags {
        let context = run.context();
        let rules = parse_rules(rules).expect("rules parse");
        let highest = highest.map(|text| Version::parse(text).expect("highest"));
        let request = TagRequest {
            context: &context,
            rules: &rules,
            latest,
            highest_release: highest.as_ref(),
            now: UtcTime::from_unix(NOW),
        };
        compute_tags(&request).expect("tags compute")
    }

    fn check(run: Run, rules: &str, expected: &[&str]) {
        let tags = tags_of(&run, rules, LatestMode::Auto, Some("1.2.3"));
        assert_eq!(
            tags.tags,
            expected,
            "rules {rules:?} on {}",
            run.context().git_ref
        );
        assert_eq!(tags.version.as_deref(), expected.first().copied());
        assert_eq!(tags.latest, expected.contains(&"latest"));
    }

    #[test]
    fn defaults_for_each_simulated_run() {
        check(fixtures::push_main(), "", &["main", SHA, "latest"]);
        check(fixtures::push_branch(), "", &["feature-Login-Form", SHA]);
        check(fixtures::push_tag(), "", &["1.2.3", SHA, "latest"]);
        check(fixtures::push_prerelease(), "", &["2.0.0-rc.1", SHA]);
        check(fixtures::pull_fork(), "", &["pr-42", PR_MERGE_SHA]);
        check(fixtures::pull_same(), "", &["pr-42", PR_MERGE_SHA]);
        check(fixtures::dispatch(), "", &["main", SHA, "latest"]);
        check(
            fixtures::schedule(),
            "",
            &["nightly", "main", SHA, "latest"],
        );
    }

    // The rule set of metadata-action's own README example.
    const README_RULES: &str = "
        # the branch, the PR, and versions
        type=ref,event=branch
        type=ref,event=pr
        type=semver,pattern={{version}}
        type=semver,pattern={{major}}.{{minor}}
        type=semver,pattern=v{{major}}
        type=sha
    ";

    #[test]
    fn rules_for_each_simulated_run() {
        let short = &SHA[..7];
        let sha_tag = format!("sha-{short}");
        let pr_sha = format!("sha-{}", &PR_MERGE_SHA[..7]);
        check(fixtures::push_main(), README_RULES, &["main", &sha_tag]);
        check(
            fixtures::push_branch(),
            README_RULES,
            &["feature-Login-Form", &sha_tag],
        );
        let release = ["1.2.3", "1.2", "v1", &sha_tag, "latest"];
        check(fixtures::push_tag(), README_RULES, &release);
        check(
            fixtures::push_prerelease(),
            README_RULES,
            &["2.0.0-rc.1", &sha_tag],
        );
        check(fixtures::pull_fork(), README_RULES, &["pr-42", &pr_sha]);
        check(
            fixtures::schedule(),
            "type=schedule,pattern={{date 'YYYYMMDD'}}",
            &["20261203"],
        );
        check(fixtures::push_main(), "type=schedule", &[]);
    }

    #[test]
    fn workflow_dispatch_rebuild_of_an_old_tag_keeps_latest_where_it_is() {
        let run = fixtures::dispatch();
        let mut context = run.context();
        let target = context.dispatch_ref.clone().expect("ref input");
        context.retarget(
            &format!("refs/tags/{target}"),
            "1111111111111111111111111111111111111111",
        );
        let rules = parse_rules("type=semver,pattern={{version}}").unwrap();
        let compute = |highest: Option<&str>| {
            let highest = highest.map(|text| Version::parse(text).unwrap());
            let request = TagRequest {
                context: &context,
                rules: &rules,
                latest: LatestMode::Auto,
                highest_release: highest.as_ref(),
                now: UtcTime::from_unix(NOW),
            };
            compute_tags(&request).unwrap()
        };
        let old = compute(Some("v1.2.3"));
        assert_eq!(old.tags, ["1.1.0"]);
        assert_eq!(
            old.notes,
            ["not tagging `latest`: `v1.1.0` is older than the highest release `1.2.3`"]
        );
        assert_eq!(compute(Some("1.1.0")).tags, ["1.1.0", "latest"]);
        // Without the API's answer the metadata-action rule stands.
        assert_eq!(compute(None).tags, ["1.1.0", "latest"]);
    }

    #[test]
    fn pull_request_target_never_tags_the_base_branch() {
        let mut run = fixtures::pull_same();
        let base_sha = "5d41402abc4b2a76b9719d911017c592aa0b1c2d";
        run.env
            .insert("GITHUB_EVENT_NAME".into(), "pull_request_target".into());
        run.env
            .insert("GITHUB_REF".into(), "refs/heads/main".into());
        run.env.insert("GITHUB_SHA".into(), base_sha.into());
        let tags = tags_of(&run, "", LatestMode::Auto, None);
        let head = "b2c3d4e5f60718293a4b5c6d7e8f901234567890";
        assert_eq!(tags.tags, ["pr-42", head]);
        assert!(!tags.latest);
    }

    #[test]
    fn latest_modes() {
        let run = fixtures::push_branch();
        let always = tags_of(&run, "", LatestMode::Always, None);
        assert_eq!(always.tags, ["feature-Login-Form", SHA, "latest"]);
        let never = tags_of(&fixtures::push_main(), "", LatestMode::Never, None);
        assert_eq!(never.tags, ["main", SHA]);
        // An explicit `latest` request is honoured even for an old tag.
        let tag = tags_of(&fixtures::push_tag(), "", LatestMode::Always, Some("9.0.0"));
        assert!(tag.latest);
        // A raw rule first decides: no `latest` in auto mode, as metadata-action.
        let raw_first = "type=raw,value=stable,priority=2000\ntype=semver,pattern={{version}}";
        let tags = tags_of(&fixtures::push_tag(), raw_first, LatestMode::Auto, None);
        assert_eq!(tags.tags, ["stable", "1.2.3"]);
        let hand_made = "type=raw,value=latest,enable={{is_default_branch}}\ntype=ref,event=branch";
        check(fixtures::push_main(), hand_made, &["main", "latest"]);
        check(fixtures::push_branch(), hand_made, &["feature-Login-Form"]);
    }

    #[test]
    fn attributes_and_templates() {
        type Case = (fn() -> Run, &'static str, &'static [&'static str]);
        let cases: &[Case] = &[
            (fixtures::push_main, "type=sha,format=long,prefix=", &[SHA]),
            (
                fixtures::push_main,
                "type=sha,prefix=,suffix=-amd64",
                &["9f3c2a1-amd64"],
            ),
            (fixtures::push_main, "type=edge", &["edge"]),
            (fixtures::push_branch, "type=edge", &[]),
            (
                fixtures::push_branch,
                "type=edge,branch=feature/Login-Form",
                &["edge"],
            ),
            (
                fixtures::push_main,
                "type=raw,value={{branch}}-{{sha}}",
                &["main-9f3c2a1"],
            ),
            (fixtures::push_main, "foo\nbar", &["foo", "bar"]),
            (
                fixtures::push_main,
                "type=raw,value=a,enable=false\nb",
                &["b"],
            ),
            (
                fixtures::push_tag,
                "type=raw,value={{tag}}_{{base_ref}}",
                &["v1.2.3_main"],
            ),
            (
                fixtures::pull_same,
                "type=raw,value=to-{{base_ref}}",
                &["to-main"],
            ),
            (
                fixtures::pull_same,
                "type=ref,event=pr,prefix=review-",
                &["review-42"],
            ),
            (
                fixtures::push_tag,
                "type=ref,event=tag",
                &["v1.2.3", "latest"],
            ),
            (
                fixtures::push_tag,
                "type=semver,pattern={{raw}}",
                &["v1.2.3", "latest"],
            ),
            (
                fixtures::push_prerelease,
                "type=semver,pattern={{raw}}",
                &["v2.0.0-rc.1"],
            ),
            (
                fixtures::push_prerelease,
                "type=semver,pattern={{major}}",
                &["2.0.0-rc.1"],
            ),
            (
                fixtures::push_main,
                "type=semver,pattern={{major}},value=v3.4.5",
                &["3", "latest"],
            ),
            (
                fixtures::push_branch,
                "type=semver,pattern={{version}}",
                &[],
            ),
            (
                fixtures::push_main,
                "type=raw,value=n-{{date 'YYYY.MM.DD-HHmmss'}}",
                &["n-2026.12.03-041709"],
            ),
            (
                fixtures::push_main,
                "type=raw,value={{commit_date 'YY[w]M-D-H'}}",
                &["26w11-30-8"],
            ),
            (
                fixtures::push_main,
                "type=raw,value={{date \"X\" tz='UTC'}}",
                &["1796271429"],
            ),
            (fixtures::push_main, "type=raw,\"value=a,b\"", &["a-b"]),
            (
                fixtures::push_main,
                "type=raw,value=x,priority=50\ntype=sha",
                &["sha-9f3c2a1", "x"],
            ),
            (
                fixtures::push_main,
                "main\ntype=ref,event=branch",
                &["main"],
            ),
        ];
        for (run, rules, expected) in cases {
            let tags = tags_of(&run(), rules, LatestMode::Auto, None);
            assert_eq!(tags.tags, *expected, "rules {rules:?}");
        }
    }

    #[test]
    fn pep440_rules() {
        let rules = "type=pep440,pattern={{version}}\ntype=pep440,pattern={{major}}.{{minor}}";
        let cases = [
            ("refs/tags/v1.2.3", vec!["1.2.3", "1.2", "latest"]),
            ("refs/tags/2.0", vec!["2.0", "2.0", "latest"]),
            ("refs/tags/1.3.0RC1", vec!["1.3.0rc1"]),
            ("refs/tags/1.3.0.post2", vec!["1.3.0.post2"]),
            (
                "refs/tags/1.3.0+local.1",
                vec!["1.3.0-local.1", "1.3", "latest"],
            ),
            ("refs/tags/not-a-version", vec![]),
        ];
        for (git_ref, mut expected) in cases {
            let mut run = fixtures::push_tag();
            run.env.insert("GITHUB_REF".into(), git_ref.into());
            expected.dedup();
            let tags = tags_of(&run, rules, LatestMode::Auto, None);
            assert_eq!(tags.tags, expected, "{git_ref}");
        }
        let raw = "type=pep440,pattern={{raw}}";
        let mut run = fixtures::push_tag();
        run.env
            .insert("GITHUB_REF".into(), "refs/tags/v1.0.dev3".into());
        assert_eq!(
            tags_of(&run, raw, LatestMode::Auto, None).tags,
            ["v1.0.dev3"]
        );
        run.env.insert("GITHUB_REF".into(), "refs/tags/junk".into());
        let tags = tags_of(&run, raw, LatestMode::Auto, None);
        assert_eq!(tags.notes, ["`junk` is not a PEP 440 version, line 1"]);
    }

    #[test]
    fn a_tag_that_is_not_semver_gets_a_note() {
        let mut run = fixtures::push_tag();
        run.env
            .insert("GITHUB_REF".into(), "refs/tags/release-2026".into());
        let tags = tags_of(
            &run,
            "type=semver,pattern={{version}}",
            LatestMode::Auto,
            None,
        );
        assert!(tags.tags.is_empty());
        assert_eq!(
            tags.notes,
            ["`release-2026` is not a semantic version, line 1"]
        );
        // With no rules a non-semver tag is used by name.
        assert_eq!(
            tags_of(&run, "", LatestMode::Auto, None).tags,
            ["release-2026", SHA]
        );
    }

    #[test]
    fn enable_must_evaluate_to_a_boolean() {
        let context = fixtures::push_main().context();
        let rules = parse_rules("type=raw,value=x\ntype=raw,value=y,enable={{branch}}").unwrap();
        let request = TagRequest {
            context: &context,
            rules: &rules,
            latest: LatestMode::Auto,
            highest_release: None,
            now: UtcTime::from_unix(NOW),
        };
        let error = compute_tags(&request).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: `enable` evaluated to `main`, not true or false"
        );
    }

    #[test]
    fn commit_date_without_a_commit_time_is_an_error() {
        let context = fixtures::schedule().context();
        let rules = parse_rules("type=raw,value={{commit_date 'YYYY'}}").unwrap();
        let request = TagRequest {
            context: &context,
            rules: &rules,
            latest: LatestMode::Never,
            highest_release: None,
            now: UtcTime::from_unix(NOW),
        };
        let error = compute_tags(&request).unwrap_err();
        assert!(
            error.to_string().contains("needs the commit time"),
            "{error}"
        );
    }

    fn valid(tag: &str) -> bool {
        let mut bytes = tag.bytes();
        let first = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        first
            && tag.len() <= MAX_TAG_LEN
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }

    #[test]
    fn sanitize_edge_cases() {
        let cases = [
            ("Feature/UPPER", "Feature-UPPER"),
            ("feature//a b", "feature-a-b"),
            ("-leading", "leading"),
            (".hidden", "hidden"),
            ("..-.x", "x"),
            ("/x", "x"),
            ("a--b", "a--b"),
            ("v1.2.3+build.5", "v1.2.3-build.5"),
            ("日本/ブランチ", "_"),
            ("ok_1.0", "ok_1.0"),
        ];
        for (raw, expected) in cases {
            let tag = sanitize_tag(raw);
            if expected == "_" {
                assert_eq!(tag, format!("_{}", short_hash(raw)), "{raw}");
            } else {
                assert_eq!(tag, expected, "{raw}");
            }
            assert!(valid(&tag), "{tag} from {raw}");
        }
        let exact = "a".repeat(MAX_TAG_LEN);
        assert_eq!(sanitize_tag(&exact), exact, "128 characters are kept whole");
    }

    #[test]
    fn long_branches_that_differ_only_at_the_end_stay_apart() {
        let stem = format!("feature/{}", "x".repeat(190));
        let (one, two) = (format!("{stem}-1"), format!("{stem}-2"));
        let (tag_one, tag_two) = (sanitize_tag(&one), sanitize_tag(&two));
        assert_ne!(tag_one, tag_two);
        for tag in [&tag_one, &tag_two] {
            assert_eq!(tag.len(), MAX_TAG_LEN);
            assert!(valid(tag), "{tag}");
            assert!(tag.starts_with("feature-xxx"));
        }
        // Through the rules too: a 200-character branch push yields a valid tag.
        let mut run = fixtures::push_branch();
        run.env
            .insert("GITHUB_REF".into(), format!("refs/heads/{one}"));
        let tags = tags_of(&run, "", LatestMode::Auto, None);
        assert_eq!(tags.tags, [tag_one.as_str(), SHA]);
    }

    #[test]
    fn duplicates_are_removed_in_order() {
        let rules = "type=raw,value=Main\ntype=ref,event=branch\ntype=raw,value=main\ntype=raw,value=a/b\ntype=raw,value=a-b";
        let tags = tags_of(&fixtures::push_main(), rules, LatestMode::Never, None);
        assert_eq!(tags.tags, ["main", "Main", "a-b"]);
    }
}

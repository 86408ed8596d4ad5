//! Parsing the `tags` input into [`TagRule`]s: metadata-action's line syntax, with
//! every key and template checked so a typo fails before the build.

use super::template::{Template, Vocabulary};
use super::{RefEvent, RuleKind, ShaFormat, TagRule, TagRuleError};

/// Parses the `tags` input: one rule per line, attributes separated by commas
/// (double quotes protect a comma), `#` starting a comment line, blank lines skipped.
pub fn parse_rules(text: &str) -> Result<Vec<TagRule>, TagRuleError> {
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        rules.push(parse_rule(trimmed, index + 1)?);
    }
    Ok(rules)
}

fn parse_rule(text: &str, line: usize) -> Result<TagRule, TagRuleError> {
    let fail = |problem: String| TagRuleError { line, problem };
    let mut attributes: Vec<(String, String)> = Vec::new();
    let mut kind_name = None;
    for field in split_fields(text).map_err(fail)? {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.trim().to_ascii_lowercase(), value.trim().to_string()),
            None => ("value".to_string(), field.trim().to_string()),
        };
        if key == "type" {
            kind_name = Some(value);
            continue;
        }
        if attributes.iter().any(|(seen, _)| *seen == key) {
            return Err(fail(format!("key `{key}` is given twice")));
        }
        attributes.push((key, value));
    }
    let kind_name = kind_name.unwrap_or_else(|| "raw".to_string());
    let accepted: &[&str] = match kind_name.as_str() {
        "schedule" => &["pattern"],
        "semver" => &["pattern", "value"],
        "edge" => &["branch"],
        "ref" => &["event"],
        "raw" => &["value"],
        "sha" => &["format"],
        "pep440" => &["pattern", "value"],
        // FIXME: `type=match` is not supported: it needs a regex engine; fixed means it
        // takes `pattern=/regex/` and `group=` like metadata-action's, tests beside semver.
        // The semver and pep440 `match=` attribute waits on the same engine.
        "match" => {
            return Err(fail(format!("`type={kind_name}` is not supported yet")));
        }
        other => {
            return Err(fail(format!(
                "unknown `type={other}`, accepted: schedule, semver, pep440, edge, ref, raw, sha"
            )));
        }
    };
    const COMMON: [&str; 4] = ["enable", "priority", "prefix", "suffix"];
    for (key, _) in &attributes {
        if !COMMON.contains(&key.as_str()) && !accepted.contains(&key.as_str()) {
            let mut all: Vec<&str> = accepted.to_vec();
            all.extend(COMMON);
            return Err(fail(format!(
                "unknown key `{key}` for `type={kind_name}`, accepted: {}",
                all.join(", ")
            )));
        }
    }
    let get = |key: &str| {
        attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let template = |key: &str, vocabulary: Vocabulary| -> Result<Option<Template>, TagRuleError> {
        get(key)
            .map(|text| Template::parse(text, vocabulary))
            .transpose()
            .map_err(|problem| fail(format!("`{key}={}`: {problem}", get(key).unwrap_or(""))))
    };
    let required = |key: &str| format!("`type={kind_name}` needs `{key}=`");

    let kind = match kind_name.as_str() {
        "schedule" => RuleKind::Schedule {
            pattern: template("pattern", Vocabulary::Global)?
                .unwrap_or_else(|| Template::text("nightly")),
        },
        "semver" => RuleKind::Semver {
            pattern: template("pattern", Vocabulary::Semver)?
                .ok_or_else(|| fail(required("pattern")))?,
            value: template("value", Vocabulary::Global)?.filter(|value| !value.is_empty()),
        },
        "pep440" => RuleKind::Pep440 {
            pattern: template("pattern", Vocabulary::Semver)?
                .ok_or_else(|| fail(required("pattern")))?,
            value: template("value", Vocabulary::Global)?.filter(|value| !value.is_empty()),
        },
        "edge" => RuleKind::Edge {
            branch: get("branch")
                .filter(|branch| !branch.is_empty())
                .map(str::to_string),
        },
        "ref" => RuleKind::Ref(match get("event") {
            Some("branch") => RefEvent::Branch,
            Some("tag") => RefEvent::Tag,
            Some("pr") => RefEvent::Pr,
            Some(other) => {
                return Err(fail(format!(
                    "`event={other}`: accepted are branch, tag, pr"
                )));
            }
            None => return Err(fail(required("event"))),
        }),
        "raw" => {
            let value = template("value", Vocabulary::Global)?;
            RuleKind::Raw {
                value: value.ok_or_else(|| fail(required("value")))?,
            }
        }
        _ => RuleKind::Sha {
            format: match get("format") {
                None | Some("short") => ShaFormat::Short,
                Some("long") => ShaFormat::Long,
                Some(other) => {
                    return Err(fail(format!("`format={other}`: accepted are short, long")));
                }
            },
        },
    };

    let enable = template("enable", Vocabulary::Global)?.unwrap_or_else(|| Template::text("true"));
    if let Some(text) = enable.as_text()
        && text != "true"
        && text != "false"
    {
        return Err(fail(format!(
            "`enable={text}`: accepted are true, false or a template"
        )));
    }
    let priority = match get("priority") {
        Some(text) => text
            .parse()
            .map_err(|_| fail(format!("`priority={text}`: expected an integer")))?,
        None => default_priority(&kind),
    };
    let mut prefix = template("prefix", Vocabulary::Global)?;
    if prefix.is_none() {
        prefix = match kind {
            RuleKind::Sha { .. } => Some(Template::text("sha-")),
            RuleKind::Ref(RefEvent::Pr) => Some(Template::text("pr-")),
            _ => None,
        };
    }
    let suffix = template("suffix", Vocabulary::Global)?;
    Ok(TagRule {
        kind,
        enable,
        priority,
        prefix,
        suffix,
        line,
    })
}

// metadata-action's default priorities, so mixed rule sets order the same way.
pub(super) fn default_priority(kind: &RuleKind) -> i64 {
    match kind {
        RuleKind::Schedule { .. } => 1000,
        RuleKind::Semver { .. } | RuleKind::Pep440 { .. } => 900,
        RuleKind::Edge { .. } => 700,
        RuleKind::Ref(_) => 600,
        RuleKind::Raw { .. } => 200,
        RuleKind::Sha { .. } => 100,
    }
}

// Splits a rule line on commas the way a CSV record splits: a field wholly in double
// quotes may hold commas, and `""` inside it is one quote.
fn split_fields(text: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if current.trim().is_empty() => {
                current.clear();
                quoted = true;
            }
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err("a double quote is not closed".to_string());
    }
    fields.push(current);
    Ok(fields
        .into_iter()
        .filter(|field| !field.trim().is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_line_and_key() {
        let cases = [
            ("type=ref", "line 1: `type=ref` needs `event=`"),
            (
                "type=ref,event=push",
                "line 1: `event=push`: accepted are branch, tag, pr",
            ),
            (
                "type=sha\ntype=sha,lenght=7",
                "line 2: unknown key `lenght` for `type=sha`, accepted: format, enable, \
                 priority, prefix, suffix",
            ),
            ("type=semver", "line 1: `type=semver` needs `pattern=`"),
            (
                "type=nope",
                "line 1: unknown `type=nope`, accepted: schedule, semver, pep440, edge, ref, raw, sha",
            ),
            (
                "type=match,pattern=v(.*)",
                "line 1: `type=match` is not supported yet",
            ),
            (
                "type=sha,format=tiny",
                "line 1: `format=tiny`: accepted are short, long",
            ),
            (
                "type=sha,priority=high",
                "line 1: `priority=high`: expected an integer",
            ),
            (
                "type=sha,enable=yes",
                "line 1: `enable=yes`: accepted are true, false or a template",
            ),
            (
                "type=raw,value=a,value=b",
                "line 1: key `value` is given twice",
            ),
            ("type=raw,\"value=a", "line 1: a double quote is not closed"),
            (
                "type=raw,value={{brnch}}",
                "line 1: `value={{brnch}}`: unknown `{{brnch}}`, accepted: \
              branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, date 'FORMAT', \
              commit_date 'FORMAT'",
            ),
            (
                "type=raw,value={{branch",
                "line 1: `value={{branch`: a `{{` is not closed by `}}`",
            ),
            (
                "type=semver,pattern={{branch}}",
                "line 1: `pattern={{branch}}`: unknown `{{branch}}`, \
              accepted: {{version}}, {{major}}, {{minor}}, {{patch}}, {{raw}}",
            ),
            (
                "type=raw,value={{date 'MMM'}}",
                "line 1: `value={{date 'MMM'}}`: date token `MMM` is \
              not supported, accepted: YYYY, YY, MM, M, DD, D, HH, H, mm, m, ss, s, X and [text]",
            ),
            (
                "type=raw,value={{date 'D' tz='Europe/Paris'}}",
                "line 1: `value={{date 'D' \
              tz='Europe/Paris'}}`: `tz=Europe/Paris`: only UTC is supported",
            ),
            (
                "type=raw,value={{sha 7}}",
                "line 1: `value={{sha 7}}`: `{{sha}}` takes no arguments",
            ),
        ];
        for (rules, expected) in cases {
            let error = parse_rules(rules).unwrap_err();
            assert_eq!(error.to_string(), expected, "{rules}");
        }
    }
}

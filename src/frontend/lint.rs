//! Warnings about Dockerfiles that build but are probably not what the author meant.
//!
//! The rules and their names follow BuildKit's checks (`docker build --check`), so a
//! `# check=skip=...` directive written for BuildKit means the same here. Only rules
//! that need no image metadata are implemented; a variable that may come from a base
//! image's environment is never reported as undefined.

use std::collections::{BTreeMap, BTreeSet};

use super::diagnostic::{Diagnostic, Severity};
use super::expand::{Env, Lexer};
use super::node::Node;
use super::{Dockerfile, Instruction, Located};
use crate::plan::{Base, Plan, Vars};

/// The settings of a `# check=skip=A,B;error=true` directive.
#[derive(Clone, Debug, Default)]
pub struct CheckSettings {
    /// Rules not to report; `all` skips every rule.
    pub skip: BTreeSet<String>,
    /// Report warnings as errors.
    pub error: bool,
}

impl CheckSettings {
    /// Reads the directive's value; unknown keys are ignored, as BuildKit does.
    pub fn from_directive(value: Option<&str>) -> CheckSettings {
        let mut settings = CheckSettings::default();
        for part in value.unwrap_or_default().split(';') {
            match part.trim().split_once('=') {
                Some(("skip", rules)) => {
                    settings
                        .skip
                        .extend(rules.split(',').map(|r| r.trim().to_string()));
                }
                Some(("error", flag)) => settings.error = flag.trim() == "true",
                _ => {}
            }
        }
        settings
    }

    /// True when `diagnostic` is a warning of a skipped rule.
    pub fn skips(&self, diagnostic: &Diagnostic) -> bool {
        diagnostic.severity == Severity::Warning
            && diagnostic
                .rule
                .is_some_and(|r| self.skip.contains(r) || self.skip.contains("all"))
    }
}

/// Runs every rule over a Dockerfile that planned cleanly.
pub fn lint(dockerfile: &Dockerfile, plan: &Plan) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    check_casing(dockerfile, &mut found);
    for located in &dockerfile.instructions {
        check_instruction(&located.node, &mut found);
    }
    check_stage_names(plan, &mut found);
    let lexer = Lexer::new(dockerfile.escape);
    let meta_args: BTreeSet<String> = dockerfile
        .instructions
        .iter()
        .take_while(|l| !matches!(l.instruction, Instruction::From(_)))
        .flat_map(|l| arg_declarations(&l.node))
        .map(|(key, _)| key)
        .collect();
    for stage in &plan.stages {
        check_from(&stage.from.node, &lexer, plan, &meta_args, &mut found);
        check_repeated(&stage.instructions, &mut found);
        check_workdirs(&stage.instructions, &mut found);
    }
    check_undefined(plan, &lexer, &meta_args, &mut found);
    found
}

fn warn(found: &mut Vec<Diagnostic>, node: &Node, rule: &'static str, message: String) {
    found.push(Diagnostic::warning(node.start, rule, message).through_line(node.end_line));
}

/// ConsistentInstructionCasing: every keyword should follow the file's majority casing.
fn check_casing(dockerfile: &Dockerfile, found: &mut Vec<Diagnostic>) {
    let keywords: Vec<&Node> = dockerfile.instructions.iter().map(|l| &l.node).collect();
    let upper = keywords
        .iter()
        .filter(|n| n.keyword == n.keyword.to_uppercase())
        .count();
    let lower = keywords
        .iter()
        .filter(|n| n.keyword == n.keyword.to_lowercase())
        .count();
    let want_upper = upper >= lower;
    for node in keywords {
        let expected = if want_upper {
            node.keyword.to_uppercase()
        } else {
            node.keyword.to_lowercase()
        };
        if node.keyword != expected {
            let case = if want_upper { "uppercase" } else { "lowercase" };
            warn(
                found,
                node,
                "ConsistentInstructionCasing",
                format!(
                    "`{}` should be written `{expected}` to match the {case} instructions \
                         of this file",
                    node.keyword
                ),
            );
        }
    }
}

/// The ARG names and raw defaults a node declares.
fn arg_declarations(node: &Node) -> Vec<(String, Option<String>)> {
    if node.command() != "arg" {
        return Vec::new();
    }
    node.args
        .iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => (key.to_string(), Some(value.to_string())),
            None => (word.clone(), None),
        })
        .collect()
}

/// Rules that look at one instruction alone.
fn check_instruction(node: &Node, found: &mut Vec<Diagnostic>) {
    let command = node.command();
    match command.as_str() {
        "maintainer" => warn(
            found,
            node,
            "MaintainerDeprecated",
            "MAINTAINER is deprecated: use `LABEL org.opencontainers.image.authors=...`".into(),
        ),
        "cmd" | "entrypoint" if !node.json && !node.args.is_empty() => warn(
            found,
            node,
            "JSONArgsRecommended",
            format!(
                "{} in shell form runs under `/bin/sh -c`, which does not pass on signals: \
                 prefer the JSON form `{}`",
                command.to_uppercase(),
                r#"["executable", "arg"]"#
            ),
        ),
        "env" | "label"
            if node
                .args
                .chunks(3)
                .any(|t| t.get(2).is_some_and(|s| s.is_empty())) =>
        {
            warn(
                found,
                node,
                "LegacyKeyValueFormat",
                format!(
                    "`{} key value` is the legacy form: write `{} key=value`",
                    command.to_uppercase(),
                    command.to_uppercase()
                ),
            )
        }
        "expose" => {
            for port in &node.args {
                if let Some((_, proto)) = port.split_once('/') {
                    if proto != proto.to_lowercase() {
                        warn(
                            found,
                            node,
                            "ExposeProtoCasing",
                            format!("the protocol in `EXPOSE {port}` should be lowercase"),
                        );
                    }
                }
                if port.contains(':') {
                    warn(
                        found,
                        node,
                        "ExposeInvalidFormat",
                        format!(
                            "`EXPOSE {port}` maps a host address or port, which EXPOSE \
                             cannot do: publish ports when running the container"
                        ),
                    );
                }
            }
        }
        _ => {}
    }
    let keys: Vec<String> = match command.as_str() {
        "arg" => arg_declarations(node).into_iter().map(|(k, _)| k).collect(),
        "env" => node.args.chunks(3).map(|t| t[0].clone()).collect(),
        _ => Vec::new(),
    };
    for key in keys.iter().filter(|k| looks_secret(k)) {
        warn(
            found,
            node,
            "SecretsUsedInArgOrEnv",
            format!(
                "{} `{key}` looks like it holds a secret, which would be kept in the image: \
                 use `RUN --mount=type=secret` instead",
                command.to_uppercase()
            ),
        );
    }
}

/// True for names with a secret-like word between underscores (`DB_PASSWORD`).
fn looks_secret(key: &str) -> bool {
    const WORDS: [&str; 9] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pat",
        "secret",
        "token",
    ];
    let lower = key.to_lowercase();
    if lower.contains("public") {
        return false;
    }
    lower.split(['_', '-']).any(|part| WORDS.contains(&part))
}

/// StageNameCasing, FromAsCasing, DuplicateStageName and ReservedStageName.
fn check_stage_names(plan: &Plan, found: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for stage in &plan.stages {
        let node = &stage.from.node;
        let Some(position) = node.args.iter().position(|a| a.eq_ignore_ascii_case("as")) else {
            continue;
        };
        let as_word = &node.args[position];
        let Some(written) = node.args.get(position + 1) else {
            continue;
        };
        if written != &written.to_lowercase() {
            warn(
                found,
                node,
                "StageNameCasing",
                format!("stage name `{written}` should be lowercase"),
            );
        }
        let keyword_upper = node.keyword == node.keyword.to_uppercase();
        let as_upper = as_word == &as_word.to_uppercase();
        if keyword_upper != as_upper {
            warn(
                found,
                node,
                "FromAsCasing",
                format!(
                    "`{as_word}` does not match the casing of `{}`",
                    node.keyword
                ),
            );
        }
        let name = written.to_lowercase();
        if name == "scratch" || name == "context" {
            warn(
                found,
                node,
                "ReservedStageName",
                format!("`{name}` is a reserved name and should not name a stage"),
            );
        }
        if let Some(first) = seen.insert(name.clone(), node.start.line) {
            warn(
                found,
                node,
                "DuplicateStageName",
                format!("stage name `{name}` is already used on line {first}"),
            );
        }
    }
}

/// UndefinedArgInFrom, RedundantTargetPlatform and FromPlatformFlagConstDisallowed.
fn check_from(
    node: &Node,
    lexer: &Lexer,
    plan: &Plan,
    meta_args: &BTreeSet<String>,
    found: &mut Vec<Diagnostic>,
) {
    let globals = Vars(plan.global_args.clone());
    let mut words: Vec<&str> = node.args.first().map(String::as_str).into_iter().collect();
    let platform = node
        .flags
        .iter()
        .find_map(|f| f.strip_prefix("--platform="));
    words.extend(platform);
    for word in words {
        let Ok(expansion) = lexer.process_word(word, &globals) else {
            continue;
        };
        for name in &expansion.unmatched {
            if !meta_args.contains(name) {
                warn(
                    found,
                    node,
                    "UndefinedArgInFrom",
                    format!("FROM uses `${name}`, which no ARG before the first FROM declares"),
                );
            }
        }
    }
    if let Some(platform) = platform {
        if platform == "$TARGETPLATFORM" || platform == "${TARGETPLATFORM}" {
            warn(
                found,
                node,
                "RedundantTargetPlatform",
                "`--platform=$TARGETPLATFORM` is the default and can be left out".into(),
            );
        } else if !platform.contains('$') {
            warn(
                found,
                node,
                "FromPlatformFlagConstDisallowed",
                format!(
                    "FROM --platform should not be the constant `{platform}`: the build's \
                     target platform would be ignored"
                ),
            );
        }
    }
}

/// MultipleInstructionsDisallowed: only the last CMD, ENTRYPOINT or HEALTHCHECK counts.
fn check_repeated(instructions: &[Located], found: &mut Vec<Diagnostic>) {
    for name in ["cmd", "entrypoint", "healthcheck"] {
        let nodes: Vec<&Node> = instructions
            .iter()
            .map(|l| &l.node)
            .filter(|n| n.command() == name)
            .collect();
        if let Some((_, earlier)) = nodes.split_last() {
            for node in earlier {
                warn(
                    found,
                    node,
                    "MultipleInstructionsDisallowed",
                    format!(
                        "{} is given more than once in this stage: only the last one takes effect",
                        name.to_uppercase()
                    ),
                );
            }
        }
    }
}

/// WorkdirRelativePath: a relative WORKDIR depends on the base image's working directory.
fn check_workdirs(instructions: &[Located], found: &mut Vec<Diagnostic>) {
    let mut absolute_seen = false;
    for located in instructions {
        if located.node.command() != "workdir" {
            continue;
        }
        let path = located
            .node
            .args
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        if path.starts_with('/') || path.starts_with('$') {
            absolute_seen = true;
        } else if !absolute_seen {
            warn(
                found,
                &located.node,
                "WorkdirRelativePath",
                format!(
                    "relative `WORKDIR {path}` depends on the base image's working directory: \
                     give an absolute path"
                ),
            );
        }
    }
}

/// An environment in which every variable is set, to tell malformed words from unset
/// variables.
struct AllSet;

impl Env for AllSet {
    fn get(&self, _name: &str) -> Option<String> {
        Some("x".to_string())
    }
}

/// A stage's variables as far as they can be known without pulling images.
struct Scope {
    vars: Vars,
    /// False when the stage starts from an image whose environment is unknown.
    closed: bool,
}

/// UndefinedVar: a variable that expands to nothing where the reader can see it is unset.
///
/// It is reported when the stage chain starts from `scratch` (every variable is known),
/// or when the name is a global ARG the stage never redeclared, the most common mistake:
/// global ARGs are only visible to FROM lines.
fn check_undefined(
    plan: &Plan,
    lexer: &Lexer,
    meta_args: &BTreeSet<String>,
    found: &mut Vec<Diagnostic>,
) {
    let mut scopes: Vec<Option<Scope>> = Vec::new();
    for stage in &plan.stages {
        let mut scope = match &stage.base {
            Base::Scratch => Scope {
                vars: Vars::default(),
                closed: true,
            },
            Base::Image(_) => Scope {
                vars: Vars::default(),
                closed: false,
            },
            Base::Stage(i) => match scopes.get(*i).and_then(Option::as_ref) {
                Some(parent) => Scope {
                    vars: parent.vars.clone(),
                    closed: parent.closed,
                },
                None => Scope {
                    vars: Vars::default(),
                    closed: false,
                },
            },
        };
        for located in &stage.instructions {
            let mut unmatched = BTreeSet::new();
            let mut instruction = located.instruction.clone();
            let vars = &scope.vars;
            let mut expand = |word: &str| match lexer.process_word(word, vars) {
                Ok(expansion) => {
                    unmatched.extend(expansion.unmatched);
                    Ok(expansion.value)
                }
                Err(error) => Err(error.message),
            };
            if let Err(message) = instruction.expand(&mut expand) {
                // `${V:?msg}` fails only for unset variables, which a base image may
                // set; a word that fails even with every variable set is malformed.
                let mut probe = located.instruction.clone();
                let mut expand_all_set = |word: &str| {
                    lexer
                        .process_word(word, &AllSet)
                        .map(|e| e.value)
                        .map_err(|e| e.message)
                };
                if scope.closed || probe.expand(&mut expand_all_set).is_err() {
                    found.push(
                        Diagnostic::error(located.node.start, message)
                            .through_line(located.node.end_line),
                    );
                }
            }
            for name in unmatched {
                let global_only = meta_args.contains(&name);
                if scope.closed || global_only {
                    let hint = if global_only {
                        format!(": it is a global ARG, add `ARG {name}` inside the stage to use it")
                    } else {
                        String::new()
                    };
                    warn(
                        found,
                        &located.node,
                        "UndefinedVar",
                        format!("usage of undefined variable `${name}`{hint}"),
                    );
                }
            }
            apply_definitions(&located.node, lexer, plan, &mut scope.vars);
        }
        scopes.push(Some(scope));
    }
}

/// Records the variables an ARG or ENV defines, for the instructions after it.
fn apply_definitions(node: &Node, lexer: &Lexer, plan: &Plan, vars: &mut Vars) {
    match node.command().as_str() {
        "arg" => {
            for (key, default) in arg_declarations(node) {
                let value = match default {
                    Some(default) => lexer.process_word(&default, vars).map(|e| e.value).ok(),
                    None => plan.global_arg(&key).map(str::to_string),
                };
                // A declared ARG without a value is still defined, as empty.
                vars.set(&key, value.unwrap_or_default());
            }
        }
        "env" => {
            for triple in node.args.chunks(3) {
                let value = lexer.process_word(&triple[1], vars).map(|e| e.value);
                vars.set(&triple[0], value.unwrap_or_default());
            }
        }
        _ => {}
    }
}

/// Lints `text` and lists `LINE:RULE` for each warning, for tests.
#[cfg(test)]
fn lint_text(text: &str) -> Vec<String> {
    let (dockerfile, diagnostics) = super::parse(text);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let (plan, diagnostics) = crate::plan::plan(&dockerfile, &crate::plan::PlanOptions::default());
    let plan = plan.unwrap_or_else(|| panic!("{diagnostics:?}"));
    let mut rules: Vec<String> = lint(&dockerfile, &plan)
        .iter()
        .map(|d| format!("{}:{}", d.position.line, d.rule.unwrap_or_default()))
        .collect();
    rules.sort();
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(lint_text(text), expected, "{text}");
    }

    #[test]
    fn clean_file_has_no_warnings() {
        check(
            "FROM alpine AS build\nRUN make\nFROM scratch\nCOPY --from=build /a /a\n",
            &[],
        );
    }

    #[test]
    fn casing_rules() {
        check(
            "FROM alpine\nrun true\nRUN x\n",
            &["2:ConsistentInstructionCasing"],
        );
        check(
            "FROM alpine as Build\n",
            &["1:FromAsCasing", "1:StageNameCasing"],
        );
        check("from alpine AS b\n", &["1:FromAsCasing"]);
    }

    #[test]
    fn stage_name_rules() {
        check("FROM a AS x\nFROM b AS x\n", &["2:DuplicateStageName"]);
        check("FROM a AS scratch\n", &["1:ReservedStageName"]);
    }

    #[test]
    fn instruction_rules() {
        check("FROM a\nMAINTAINER me\n", &["2:MaintainerDeprecated"]);
        check("FROM a\nCMD echo hi\n", &["2:JSONArgsRecommended"]);
        check(
            "FROM a\nCMD [\"a\"]\nCMD [\"b\"]\n",
            &["2:MultipleInstructionsDisallowed"],
        );
        check("FROM a\nENV A b\n", &["2:LegacyKeyValueFormat"]);
        check(
            "FROM a\nEXPOSE 80/TCP 8080:80\n",
            &["2:ExposeInvalidFormat", "2:ExposeProtoCasing"],
        );
        check(
            "FROM a\nWORKDIR app\nWORKDIR /x\nWORKDIR y\n",
            &["2:WorkdirRelativePath"],
        );
        check(
            "FROM a\nARG DB_PASSWORD\nENV API_TOKEN=x PUBLIC_KEY=y\n",
            &["2:SecretsUsedInArgOrEnv", "3:SecretsUsedInArgOrEnv"],
        );
    }

    #[test]
    fn from_rules() {
        check("FROM alpine:$V\n", &["1:UndefinedArgInFrom"]);
        check("ARG V\nFROM alpine:$V\n", &[]);
        check(
            "FROM --platform=$TARGETPLATFORM a\n",
            &["1:RedundantTargetPlatform"],
        );
        check(
            "FROM --platform=linux/amd64 a\n",
            &["1:FromPlatformFlagConstDisallowed"],
        );
        check("FROM --platform=$BUILDPLATFORM a\n", &[]);
    }

    #[test]
    fn undefined_variables() {
        // From scratch every variable is known.
        check("FROM scratch\nCOPY $SRC /d\n", &["2:UndefinedVar"]);
        check("FROM scratch\nARG SRC=a\nENV D=/d\nCOPY $SRC $D\n", &[]);
        // From an image, only global ARGs not redeclared are sure to be undefined.
        check("FROM alpine\nWORKDIR $GOPATH\n", &[]);
        check(
            "ARG VERSION=1\nFROM alpine\nLABEL v=$VERSION\n",
            &["3:UndefinedVar"],
        );
        check(
            "ARG VERSION=1\nFROM alpine\nARG VERSION\nLABEL v=$VERSION\n",
            &[],
        );
        // RUN is expanded by its shell, never by the builder.
        check("FROM scratch\nRUN echo $NOPE\n", &[]);
    }

    #[test]
    fn check_directive_settings() {
        let settings = CheckSettings::from_directive(Some("skip=JSONArgsRecommended,X;error=true"));
        assert!(settings.error);
        assert!(settings.skip.contains("JSONArgsRecommended"));
        let diagnostic = Diagnostic::warning(super::super::Position::new(1, 1), "X", "m");
        assert!(settings.skips(&diagnostic));
    }
}

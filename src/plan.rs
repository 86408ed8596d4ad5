//! The build plan: stages, build arguments, bases, stage dependencies and the target.
//!
//! This is BuildKit's conversion front half without the execution: ARGs before the
//! first FROM form the global scope (seeded with the platform arguments and
//! overridden by `--build-arg`), each FROM is expanded in that scope and resolved to
//! `scratch`, an earlier stage or an image, `COPY --from` and `RUN --mount from=`
//! add dependencies, and only the stages the target reaches are scheduled.

use std::collections::{BTreeMap, BTreeSet};

use crate::frontend::expand::{Env, Lexer};
use crate::frontend::instructions::{Instruction, MountType};
use crate::frontend::{Diagnostic, Dockerfile, Located, Position};
use crate::platform::Platform;

/// Build arguments every build knows without an ARG declaring them as consumed.
///
/// The proxy variables are passed to RUN but never stored in the image, as Docker
/// does; none of these is reported as unused.
pub const PREDEFINED_ARGS: [&str; 16] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SOURCE_DATE_EPOCH",
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SANDBOX_HOSTNAME",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    "BUILDKIT_CACHE_MOUNT_NS",
];

/// What the caller chose for this build.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// `--build-arg` values, by name.
    pub build_args: BTreeMap<String, String>,
    /// The stage to build; the last one when absent.
    pub target: Option<String>,
    /// The platform the image is for.
    pub target_platform: Platform,
    /// The platform the build runs on.
    pub build_platform: Platform,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            build_args: BTreeMap::new(),
            target: None,
            target_platform: Platform::host(),
            build_platform: Platform::host(),
        }
    }
}

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// The empty image.
    Scratch,
    /// An earlier stage of this Dockerfile, by index.
    Stage(usize),
    /// An image reference, as written after expansion (`alpine:3.20`).
    Image(String),
}

/// Something a stage reads from outside itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Another stage, by index.
    Stage(usize),
    /// An image used by `COPY --from` or a `RUN --mount from=`.
    Image(String),
}

/// One stage: a FROM and the instructions up to the next.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Position in the Dockerfile, from 0.
    pub index: usize,
    /// The `AS` name, lowercased, if any.
    pub name: Option<String>,
    /// The FROM line's base after expansion in the global scope.
    pub base_name: String,
    /// What the base resolved to.
    pub base: Base,
    /// `FROM --platform` after expansion, if given.
    pub platform: Option<Platform>,
    /// The FROM instruction.
    pub from: Located,
    /// The instructions after FROM, in order.
    pub instructions: Vec<Located>,
    /// Stages and images read by `COPY --from` and `RUN --mount from=`.
    pub sources: BTreeSet<Source>,
}

impl Stage {
    /// The name shown to users: the `AS` name or `stage-N`.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("stage-{}", self.index),
        }
    }

    /// True when the stage runs commands (and so needs its root file system).
    pub fn has_run(&self) -> bool {
        self.instructions
            .iter()
            .any(|l| matches!(l.instruction, Instruction::Run(_)))
    }

    /// The stages this one needs built first: its base and its stage sources.
    pub fn stage_dependencies(&self) -> BTreeSet<usize> {
        let mut deps: BTreeSet<usize> = self
            .sources
            .iter()
            .filter_map(|s| match s {
                Source::Stage(i) => Some(*i),
                Source::Image(_) => None,
            })
            .collect();
        if let Base::Stage(i) = self.base {
            deps.insert(i);
        }
        deps
    }
}

/// A checked plan for one build.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Every stage of the Dockerfile.
    pub stages: Vec<Stage>,
    /// The index of the target stage.
    pub target: usize,
    /// The stages to build, dependencies first; the target is last.
    pub order: Vec<usize>,
    /// The global scope: platform arguments and the ARGs before the first FROM,
    /// with build-arg overrides applied.
    pub global_args: Vec<(String, String)>,
    /// The escape character the Dockerfile uses.
    pub escape: char,
}

impl Plan {
    /// The target stage.
    pub fn target_stage(&self) -> &Stage {
        &self.stages[self.target]
    }

    /// Looks up a global argument.
    pub fn global_arg(&self, name: &str) -> Option<&str> {
        self.global_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The platform arguments BuildKit defines in the global scope.
fn platform_args(options: &PlanOptions, target: &str) -> Vec<(String, String)> {
    let build = &options.build_platform;
    let target_platform = &options.target_platform;
    let pairs = [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", build.variant.clone()),
        ("TARGETPLATFORM", target_platform.to_string()),
        ("TARGETOS", target_platform.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target_platform.architecture.clone()),
        ("TARGETVARIANT", target_platform.variant.clone()),
        ("TARGETSTAGE", target.to_string()),
    ];
    pairs
        .into_iter()
        .map(|(key, value)| {
            let value = options.build_args.get(key).cloned().unwrap_or(value);
            (key.to_string(), value)
        })
        .collect()
}

/// An ordered variable list usable as an expansion environment (later wins).
#[derive(Clone, Debug, Default)]
pub struct Vars(pub Vec<(String, String)>);

impl Vars {
    /// Sets `key`, replacing an earlier value.
    pub fn set(&mut self, key: &str, value: String) {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value));
    }
}

impl Env for Vars {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Builds the plan for `dockerfile`, or the diagnostics that prevent one.
///
/// Warnings (an unused build argument) come back beside a plan; any error means no
/// plan. Several independent errors are reported together.
pub fn plan(dockerfile: &Dockerfile, options: &PlanOptions) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let lexer = Lexer::new(dockerfile.escape);

    // Split the file into the global scope and stages.
    let mut meta_args = Vec::new();
    let mut raw_stages: Vec<(Located, Vec<Located>)> = Vec::new();
    for located in &dockerfile.instructions {
        match (&located.instruction, raw_stages.last_mut()) {
            (Instruction::From(_), _) => raw_stages.push((located.clone(), Vec::new())),
            (_, Some((_, body))) => body.push(located.clone()),
            (Instruction::Arg(_), None) => meta_args.push(located.clone()),
            (other, None) => diagnostics.push(Diagnostic::error(
                located.node.start,
                format!("{} comes before the first FROM: only ARG may", other.name()),
            )),
        }
    }
    if raw_stages.is_empty() {
        let position = dockerfile
            .instructions
            .last()
            .map_or(Position::new(1, 1), |l| l.node.start);
        diagnostics.push(Diagnostic::error(
            position,
            "the Dockerfile has no FROM instruction",
        ));
        return (None, diagnostics);
    }

    let names: Vec<Option<String>> = raw_stages
        .iter()
        .map(|(from, _)| match &from.instruction {
            Instruction::From(f) => f.stage_name.clone(),
            _ => None,
        })
        .collect();
    let target_name = match &options.target {
        Some(target) => target.to_ascii_lowercase(),
        None => names.last().cloned().flatten().unwrap_or_default(),
    };

    // The global scope, as BuildKit builds it: platform arguments, then each meta ARG
    // (a build argument wins over its default, which is expanded in the scope so far).
    let mut globals = Vars(platform_args(options, &target_name));
    let mut declared: BTreeSet<String> = BTreeSet::new();
    for located in &meta_args {
        let Instruction::Arg(arg) = &located.instruction else {
            continue;
        };
        for (key, default) in &arg.args {
            declared.insert(key.clone());
            let value = match (options.build_args.get(key), default) {
                (Some(value), _) => Some(value.clone()),
                (None, Some(default)) => match lexer.process_word(default, &globals) {
                    Ok(expansion) => Some(expansion.value),
                    Err(error) => {
                        diagnostics.push(Diagnostic::error(located.node.start, error.message));
                        None
                    }
                },
                (None, None) => None,
            };
            if let Some(value) = value {
                globals.set(key, value);
            }
        }
    }

    let mut stages: Vec<Stage> = Vec::with_capacity(raw_stages.len());
    for (index, (from, instructions)) in raw_stages.into_iter().enumerate() {
        let Instruction::From(from_instruction) = &from.instruction else {
            continue;
        };
        let position = from.node.start;
        let base_name = match lexer.process_word(&from_instruction.image, &globals) {
            Ok(expansion) if expansion.value.is_empty() => {
                diagnostics.push(Diagnostic::error(
                    position,
                    format!("base name ({}) should not be blank", from_instruction.image),
                ));
                continue;
            }
            Ok(expansion) => expansion.value,
            Err(error) => {
                diagnostics.push(Diagnostic::error(position, error.message));
                continue;
            }
        };
        let platform = match &from_instruction.platform {
            None => None,
            Some(text) => match expand_platform(&lexer, text, &globals) {
                Ok(platform) => Some(platform),
                Err(message) => {
                    diagnostics.push(Diagnostic::error(position, message));
                    continue;
                }
            },
        };
        let lowered = base_name.to_ascii_lowercase();
        // FROM sees only the stages above it; a later stage of the same name is not a
        // base but an image reference, as in BuildKit.
        let base = if lowered == "scratch" {
            Base::Scratch
        } else {
            match names[..index]
                .iter()
                .rposition(|n| n.as_deref() == Some(&lowered))
            {
                Some(i) => Base::Stage(i),
                None => Base::Image(base_name.clone()),
            }
        };
        for located in &instructions {
            if let Instruction::Arg(arg) = &located.instruction {
                declared.extend(arg.args.iter().map(|(k, _)| k.clone()));
            }
        }
        stages.push(Stage {
            index,
            name: names[index].clone(),
            base_name,
            base,
            platform,
            from,
            instructions,
            sources: BTreeSet::new(),
        });
    }
    if stages.len() != names.len() {
        return (None, diagnostics);
    }

    // Sources named by COPY --from and RUN --mount from= may be any stage, also a
    // later one; cycles are caught below.
    let total = stages.len();
    for stage in &mut stages {
        let mut sources = BTreeSet::new();
        for located in &stage.instructions {
            for from in source_references(&located.instruction) {
                match resolve_source(&lexer, from, &names, total) {
                    Ok(source) => {
                        sources.insert(source);
                    }
                    Err(message) => {
                        diagnostics.push(Diagnostic::error(located.node.start, message));
                    }
                }
            }
        }
        stage.sources = sources;
    }

    let target = match &options.target {
        None => total - 1,
        Some(wanted) => match names
            .iter()
            .position(|n| n.as_deref() == Some(&target_name))
        {
            Some(index) => index,
            None => {
                let known: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
                let hint = match known.as_slice() {
                    [] => "the Dockerfile names no stages (FROM ... AS name)".to_string(),
                    known => format!("the stages are: {}", known.join(", ")),
                };
                diagnostics.push(Diagnostic::error(
                    Position::new(1, 1),
                    format!("target stage `{wanted}` could not be found; {hint}"),
                ));
                return (None, diagnostics);
            }
        },
    };

    if let Some(cycle) = find_cycle(&stages) {
        let stage = &stages[cycle];
        diagnostics.push(Diagnostic::error(
            stage.from.node.start,
            format!(
                "circular dependency detected on stage `{}`",
                stage.display_name()
            ),
        ));
    }
    if diagnostics
        .iter()
        .any(|d| d.severity == crate::frontend::Severity::Error)
    {
        return (None, diagnostics);
    }

    let order = build_order(&stages, target);
    for key in options.build_args.keys() {
        if !declared.contains(key) && !PREDEFINED_ARGS.contains(&key.as_str()) {
            let is_platform = platform_args(options, "").iter().any(|(k, _)| k == key);
            if !is_platform {
                diagnostics.push(Diagnostic::warning(
                    Position::new(1, 1),
                    "UnusedBuildArg",
                    format!("build argument `{key}` is not consumed: no ARG declares it"),
                ));
            }
        }
    }
    let plan = Plan {
        stages,
        target,
        order,
        global_args: globals.0,
        escape: dockerfile.escape,
    };
    (Some(plan), diagnostics)
}

/// Expands and parses `FROM --platform`.
fn expand_platform(lexer: &Lexer, text: &str, globals: &Vars) -> Result<Platform, String> {
    let expansion = lexer.process_word(text, globals).map_err(|e| {
        format!(
            "failed to process arguments for platform `{text}`: {}",
            e.message
        )
    })?;
    if expansion.value.is_empty() {
        return Err(format!("empty platform value from expression `{text}`"));
    }
    Platform::parse(&expansion.value).map_err(|e| e.to_string())
}

/// The `--from` values an instruction reads from: COPY's and each RUN mount's.
fn source_references(instruction: &Instruction) -> Vec<&str> {
    match instruction {
        Instruction::Copy(copy) => copy.from.as_deref().into_iter().collect(),
        Instruction::Run(run) => run
            .mounts
            .iter()
            .filter(|m| m.kind != MountType::Secret && m.kind != MountType::Ssh)
            .filter_map(|m| m.from.as_deref())
            .collect(),
        _ => Vec::new(),
    }
}

/// Resolves a `--from` value: a stage index, a stage name (any case), else an image.
fn resolve_source(
    lexer: &Lexer,
    from: &str,
    names: &[Option<String>],
    total: usize,
) -> Result<Source, String> {
    // BuildKit refuses variables here rather than expanding them in some scope.
    let literal = lexer.process_word(from, &Vars::default()).map(|e| e.value);
    if literal.as_deref() != Ok(from) {
        return Err(format!(
            "variable expansion is not supported for --from (`{from}`)\n\
             hint: define a stage with `FROM ${{VAR}} AS name` using a global ARG, \
             and copy from that stage"
        ));
    }
    if let Ok(index) = from.parse::<i64>() {
        return match usize::try_from(index) {
            Ok(index) if index < total => Ok(Source::Stage(index)),
            _ => Err(format!("invalid stage index {index}")),
        };
    }
    let lowered = from.to_ascii_lowercase();
    match names.iter().position(|n| n.as_deref() == Some(&lowered)) {
        Some(index) => Ok(Source::Stage(index)),
        None => Ok(Source::Image(from.to_string())),
    }
}

/// Returns a stage on a dependency cycle, if there is one.
fn find_cycle(stages: &[Stage]) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(stage: usize, stages: &[Stage], marks: &mut [Mark]) -> Option<usize> {
        match marks[stage] {
            Mark::Active => return Some(stage),
            Mark::Done => return None,
            Mark::New => {}
        }
        marks[stage] = Mark::Active;
        for dep in stages[stage].stage_dependencies() {
            if let Some(found) = visit(dep, stages, marks) {
                return Some(found);
            }
        }
        marks[stage] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; stages.len()];
    (0..stages.len()).find_map(|stage| visit(stage, stages, &mut marks))
}

/// The stages the target reaches, each after everything it depends on.
///
/// Must be called on an acyclic graph.
fn build_order(stages: &[Stage], target: usize) -> Vec<usize> {
    fn visit(stage: usize, stages: &[Stage], seen: &mut [bool], order: &mut Vec<usize>) {
        if seen[stage] {
            return;
        }
        seen[stage] = true;
        for dep in stages[stage].stage_dependencies() {
            visit(dep, stages, seen, order);
        }
        order.push(stage);
    }
    let mut seen = vec![false; stages.len()];
    let mut order = Vec::new();
    visit(target, stages, &mut seen, &mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend;

    fn plan_text(text: &str, options: &PlanOptions) -> (Option<Plan>, Vec<Diagnostic>) {
        let (dockerfile, diagnostics) = frontend::parse(text);
        assert!(diagnostics.is_empty(), "parse diagnostics: {diagnostics:?}");
        plan(&dockerfile, options)
    }

    fn options(args: &[(&str, &str)], target: Option<&str>) -> PlanOptions {
        PlanOptions {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target: target.map(str::to_string),
            target_platform: Platform::parse("linux/arm64").unwrap_or_else(|_| Platform::host()),
            build_platform: Platform::parse("linux/amd64").unwrap_or_else(|_| Platform::host()),
        }
    }

    fn messages(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics.iter().map(|d| d.render("Dockerfile")).collect()
    }

    const MULTI: &str = "\
ARG GO=1.22
ARG BASE=alpine
FROM golang:${GO} AS build
RUN go build
FROM $BASE AS test
COPY --from=build /app /app
FROM scratch AS unused
FROM ${BASE}:3.20 AS final
COPY --from=BUILD /app /app
RUN --mount=type=bind,from=test,target=/t true
";

    #[test]
    fn global_args_expand_from_lines() {
        let (plan, diagnostics) = plan_text(MULTI, &options(&[], None));
        let plan = plan.unwrap_or_else(|| panic!("{diagnostics:?}"));
        let bases: Vec<&str> = plan.stages.iter().map(|s| s.base_name.as_str()).collect();
        assert_eq!(bases, ["golang:1.22", "alpine", "scratch", "alpine:3.20"]);
        assert_eq!(plan.stages[2].base, Base::Scratch);
        assert_eq!(plan.target, 3);
        assert_eq!(plan.order, [0, 1, 3]);
    }

    #[test]
    fn build_args_override_defaults() {
        let (plan, _) = plan_text(MULTI, &options(&[("GO", "1.23"), ("BASE", "debian")], None));
        let plan = plan.unwrap_or_else(|| panic!("no plan"));
        assert_eq!(plan.stages[0].base_name, "golang:1.23");
        assert_eq!(plan.stages[3].base_name, "debian:3.20");
    }

    #[test]
    fn target_limits_the_stages_built() {
        let (plan, _) = plan_text(MULTI, &options(&[], Some("Test")));
        let plan = plan.unwrap_or_else(|| panic!("no plan"));
        assert_eq!(plan.order, [0, 1]);
        assert_eq!(plan.global_arg("TARGETSTAGE"), Some("test"));
    }

    #[test]
    fn unknown_target_is_an_error_listing_stages() {
        let (plan, diagnostics) = plan_text(MULTI, &options(&[], Some("nope")));
        assert!(plan.is_none());
        assert_eq!(
            messages(&diagnostics),
            [
                "Dockerfile:1:1: error: target stage `nope` could not be found; \
              the stages are: build, test, unused, final"
            ]
        );
    }

    #[test]
    fn platform_args_are_in_the_global_scope() {
        let text = "ARG TARGETARCH\nFROM --platform=$BUILDPLATFORM busybox:$TARGETARCH\n";
        let (plan, _) = plan_text(text, &options(&[], None));
        let plan = plan.unwrap_or_else(|| panic!("no plan"));
        assert_eq!(plan.stages[0].base_name, "busybox:arm64");
        assert_eq!(
            plan.stages[0]
                .platform
                .as_ref()
                .map(|p| p.to_string())
                .as_deref(),
            Some("linux/amd64")
        );
    }

    #[test]
    fn stage_reference_to_later_stage_is_an_image() {
        let text = "FROM later AS first\nFROM alpine AS later\n";
        let (plan, _) = plan_text(text, &options(&[], None));
        let plan = plan.unwrap_or_else(|| panic!("no plan"));
        assert_eq!(plan.stages[0].base, Base::Image("later".to_string()));
    }

    #[test]
    fn cycles_are_errors() {
        let text = "FROM alpine AS a\nCOPY --from=b /x /x\nFROM a AS b\n";
        let (plan, diagnostics) = plan_text(text, &options(&[], None));
        assert!(plan.is_none());
        assert_eq!(
            messages(&diagnostics),
            ["Dockerfile:1:1: error: circular dependency detected on stage `a`"]
        );
    }

    #[test]
    fn copy_from_index_and_image() {
        let text = "FROM alpine\nFROM busybox\nCOPY --from=0 /a /a\nCOPY --from=nginx:1 /b /b\n";
        let (plan, _) = plan_text(text, &options(&[], None));
        let plan = plan.unwrap_or_else(|| panic!("no plan"));
        let sources: Vec<Source> = plan.stages[1].sources.iter().cloned().collect();
        assert_eq!(
            sources,
            [Source::Stage(0), Source::Image("nginx:1".to_string())]
        );
        let text = "FROM alpine\nCOPY --from=3 /a /a\n";
        let (plan, diagnostics) = plan_text(text, &options(&[], None));
        assert!(plan.is_none());
        assert_eq!(
            messages(&diagnostics),
            ["Dockerfile:2:1: error: invalid stage index 3"]
        );
    }

    #[test]
    fn copy_from_with_variable_is_refused() {
        let text = "ARG S=a\nFROM alpine AS a\nFROM busybox\nCOPY --from=$S /a /a\n";
        let (plan, diagnostics) = plan_text(text, &options(&[], None));
        assert!(plan.is_none());
        assert!(
            diagnostics[0]
                .message
                .starts_with("variable expansion is not supported")
        );
    }

    #[test]
    fn unused_build_args_are_warnings() {
        let (plan, diagnostics) = plan_text(
            MULTI,
            &options(&[("NOPE", "1"), ("GO", "1"), ("http_proxy", "x")], None),
        );
        assert!(plan.is_some());
        assert_eq!(
            messages(&diagnostics),
            [
                "Dockerfile:1:1: warning: build argument `NOPE` is not consumed: no ARG declares it \
              (UnusedBuildArg)"
            ]
        );
    }

    #[test]
    fn instructions_before_from_are_errors() {
        let text = "ENV A=b\nFROM alpine\n";
        let (plan, diagnostics) = plan_text(text, &options(&[], None));
        assert!(plan.is_none());
        assert_eq!(
            messages(&diagnostics),
            ["Dockerfile:1:1: error: ENV comes before the first FROM: only ARG may"]
        );
    }

    #[test]
    fn blank_base_is_an_error() {
        let text = "ARG B\nFROM $B\n";
        let (plan, diagnostics) = plan_text(text, &options(&[], None));
        assert!(plan.is_none());
        assert_eq!(
            messages(&diagnostics),
            ["Dockerfile:2:1: error: base name ($B) should not be blank"]
        );
    }
}

//! From raw nodes to typed instructions: BuildKit's arity, flag and argument rules, checked in
//! BuildKit's order so the first error reported is the one BuildKit would report.

use super::flags::{FlagError, FlagKind, FlagSet, ParsedFlags, with_suggestion};
use super::heredoc::{chomp_content, parse_heredoc_word};
use super::mount::{NetworkMode, SecurityMode, parse_device, parse_mount};
use super::values::{go_quote, parse_go_i32, parse_interval};
use super::{
    Add, Arg, Cmd, CommandLine, Copy, Diagnostic, Entrypoint, Env, Expose, From, HealthCheck,
    Healthcheck, Instruction, KeyValue, Label, Maintainer, Node, Onbuild, Position, Run, Shell,
    SourceHeredoc, StopSignal, User, Volume, Workdir,
};

/// Why a node was rejected, and which flag word is to blame when one is.
struct Problem {
    message: String,
    flag: Option<usize>,
}

impl std::convert::From<String> for Problem {
    fn from(message: String) -> Self {
        Problem {
            message,
            flag: None,
        }
    }
}

impl std::convert::From<&str> for Problem {
    fn from(message: &str) -> Self {
        Problem::from(message.to_string())
    }
}

impl std::convert::From<FlagError> for Problem {
    fn from(error: FlagError) -> Self {
        Problem {
            message: error.message,
            flag: Some(error.index),
        }
    }
}

type Parsed<T> = Result<T, Problem>;

/// Every instruction word, for the "did you mean" hint on an unknown one.
const INSTRUCTION_NAMES: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses one raw node into a typed instruction.
///
/// Errors point at the instruction, or at the offending flag when it can be located on a
/// single-line instruction, and cover the node's lines.
pub fn parse_instruction(node: &Node) -> Result<Instruction, Diagnostic> {
    dispatch(node).map_err(|problem| {
        let position = problem
            .flag
            .map_or(node.start, |index| flag_position(node, index));
        Diagnostic::error(position, problem.message).through_line(node.end_line)
    })
}

fn dispatch(node: &Node) -> Parsed<Instruction> {
    Ok(match node.command().as_str() {
        "env" => Instruction::Env(Env {
            vars: key_values(node, "ENV")?,
        }),
        "maintainer" => Instruction::Maintainer(Maintainer {
            name: single(node, "MAINTAINER")?,
        }),
        "label" => Instruction::Label(Label {
            labels: key_values(node, "LABEL")?,
        }),
        "add" => Instruction::Add(parse_add(node)?),
        "copy" => Instruction::Copy(parse_copy(node)?),
        "from" => Instruction::From(parse_from(node)?),
        "onbuild" => Instruction::Onbuild(parse_onbuild(node)?),
        "workdir" => Instruction::Workdir(Workdir {
            path: single(node, "WORKDIR")?,
        }),
        "run" => Instruction::Run(parse_run(node)?),
        "cmd" => {
            no_flags(node)?;
            Instruction::Cmd(Cmd {
                command: command_line(node),
            })
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "entrypoint" => {
            no_flags(node)?;
            Instruction::Entrypoint(Entrypoint {
                command: command_line(node),
            })
        }
        "expose" => {
            at_least_one(node, "EXPOSE")?;
            no_flags(node)?;
            let mut ports = node.args.clone();
            ports.sort();
            Instruction::Expose(Expose { ports })
        }
        "user" => Instruction::User(User {
            user: single(node, "USER")?,
        }),
        "volume" => Instruction::Volume(parse_volume(node)?),
        // BuildKit never looks at STOPSIGNAL's or ARG's flags, so neither do we.
        "stopsignal" => {
            let signal = exactly_one(node, "STOPSIGNAL")?;
            Instruction::StopSignal(StopSignal { signal })
        }
        "arg" => Instruction::Arg(parse_arg(node)?),
        "shell" => Instruction::Shell(parse_shell(node)?),
        _ => {
            let message = format!("unknown instruction: {}", node.keyword);
            return Err(with_suggestion(message, &node.keyword, &INSTRUCTION_NAMES, false).into());
        }
    })
}

fn no_flags(node: &Node) -> Parsed<()> {
    FlagSet::new().parse(&node.flags)?;
    Ok(())
}

fn at_least_one(node: &Node, name: &str) -> Parsed<()> {
    if node.args.is_empty() {
        return Err(format!("{name} requires at least one argument").into());
    }
    Ok(())
}

fn exactly_one(node: &Node, name: &str) -> Parsed<String> {
    match node.args.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(format!("{name} requires exactly one argument").into()),
    }
}

/// One argument, then no flags: the order MAINTAINER, WORKDIR and USER check in.
fn single(node: &Node, name: &str) -> Parsed<String> {
    let value = exactly_one(node, name)?;
    no_flags(node)?;
    Ok(value)
}

/// The command of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD from `args`.
fn command_from(args: &[String], json: bool) -> CommandLine {
    let args = match args {
        [] => Vec::new(),
        _ if json => args.to_vec(),
        _ => vec![args.join(" ")],
    };
    CommandLine {
        args,
        prepend_shell: !json,
    }
}

fn command_line(node: &Node) -> CommandLine {
    command_from(&node.args, node.json)
}

/// ENV and LABEL: the parser's key, value, separator triples.
fn key_values(node: &Node, name: &str) -> Parsed<Vec<KeyValue>> {
    no_flags(node)?;
    at_least_one(node, name)?;
    if !node.args.len().is_multiple_of(3) {
        return Err(format!("bad input to {name}, too many arguments").into());
    }
    node.args
        .chunks_exact(3)
        .map(|triple| match triple {
            [key, ..] if key.is_empty() => Err(format!("{name} names can not be blank").into()),
            [key, value, separator] => Ok(KeyValue {
                key: key.clone(),
                value: value.clone(),
                no_delimiter: separator.is_empty(),
            }),
            _ => Err(format!("bad input to {name}, too many arguments").into()),
        })
        .collect()
}

/// Sources, heredoc sources and destination of COPY and ADD.
struct Transfer {
    sources: Vec<String>,
    heredocs: Vec<SourceHeredoc>,
    dest: String,
}

fn transfer(node: &Node, name: &str) -> Parsed<Transfer> {
    let Some((dest, sources)) = node.args.split_last() else {
        return Err(no_destination(name));
    };
    if parse_heredoc_word(dest).is_some() {
        return Err(format!("{name} cannot accept a heredoc as a destination").into());
    }
    let mut transfer = Transfer {
        sources: Vec::new(),
        heredocs: Vec::new(),
        dest: dest.to_string(),
    };
    for source in sources {
        let Some(word) = parse_heredoc_word(source) else {
            transfer.sources.push(source.to_string());
            continue;
        };
        // A marker without a body (possible in JSON form) is an empty file, as in BuildKit.
        let body = node.heredocs.iter().rev().find(|h| h.name == word.name);
        let raw = body.map_or("", |h| h.content.as_str());
        let content = if word.chomp {
            chomp_content(raw)
        } else {
            raw.to_string()
        };
        transfer.heredocs.push(SourceHeredoc {
            path: word.name,
            content,
            expand: word.expand,
        });
    }
    Ok(transfer)
}

fn no_destination(name: &str) -> Problem {
    format!(
        "{name} requires at least two arguments, but only one was provided. \
         destination could not be determined"
    )
    .into()
}

fn parse_add(node: &Node) -> Parsed<Add> {
    if node.args.len() < 2 {
        return Err(no_destination("ADD"));
    }
    let flags = FlagSet::new()
        .with("chown", FlagKind::String)
        .with("chmod", FlagKind::String)
        .with("link", FlagKind::Bool)
        .with("keep-git-dir", FlagKind::Bool)
        .with("checksum", FlagKind::String)
        .with("unpack", FlagKind::Bool)
        .with("exclude", FlagKind::List)
        .parse(&node.flags)?;
    let Transfer {
        sources,
        heredocs,
        dest,
    } = transfer(node, "ADD")?;
    Ok(Add {
        sources,
        heredocs,
        dest,
        chown: flags.non_empty("chown"),
        chmod: flags.non_empty("chmod"),
        link: flags.bool("link").unwrap_or(false),
        exclude: flags.list("exclude").to_vec(),
        keep_git_dir: flags.bool("keep-git-dir"),
        checksum: flags.non_empty("checksum"),
        unpack: flags.bool("unpack"),
    })
}

fn parse_copy(node: &Node) -> Parsed<Copy> {
    if node.args.len() < 2 {
        return Err(no_destination("COPY"));
    }
    let flags = FlagSet::new()
        .with("chown", FlagKind::String)
        .with("from", FlagKind::String)
        .with("chmod", FlagKind::String)
        .with("link", FlagKind::Bool)
        .with("exclude", FlagKind::List)
        .with("parents", FlagKind::Bool)
        .parse(&node.flags)?;
    let Transfer {
        sources,
        heredocs,
        dest,
    } = transfer(node, "COPY")?;
    Ok(Copy {
        sources,
        heredocs,
        dest,
        from: flags.non_empty("from"),
        chown: flags.non_empty("chown"),
        chmod: flags.non_empty("chmod"),
        link: flags.bool("link").unwrap_or(false),
        exclude: flags.list("exclude").to_vec(),
        parents: flags.bool("parents").unwrap_or(false),
    })
}

fn parse_from(node: &Node) -> Parsed<From> {
    let (image, stage_name) = match node.args.as_slice() {
        [image] => (image.clone(), None),
        [image, keyword, name] if keyword.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !is_valid_stage_name(&lower) {
                return Err(format!(
                    "invalid name for build stage: {}, name can't start with a number or \
                     contain symbols",
                    go_quote(name)
                )
                .into());
            }
            (image.clone(), Some(lower))
        }
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    let flags = FlagSet::new()
        .with("platform", FlagKind::String)
        .parse(&node.flags)?;
    Ok(From {
        image,
        stage_name,
        platform: flags.non_empty("platform"),
    })
}

/// A lowercase letter, then lowercase letters, digits, `-`, `_` or `.`.
fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn parse_onbuild(node: &Node) -> Parsed<Onbuild> {
    let Some(inner) = node.inner.as_deref() else {
        return Err("ONBUILD requires at least one argument".into());
    };
    no_flags(node)?;
    let trigger = inner.keyword.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger").into());
        }
        _ => {}
    }
    let mut expression = strip_onbuild_keyword(&node.original).to_string();
    // The bodies belong to the ONBUILD line; accept them on the trigger node too.
    let heredocs = if node.heredocs.is_empty() {
        &inner.heredocs
    } else {
        &node.heredocs
    };
    for heredoc in heredocs {
        expression.push('\n');
        expression.push_str(&heredoc.content);
        expression.push_str(&heredoc.name);
    }
    Ok(Onbuild {
        trigger,
        expression,
    })
}

/// The text after a leading `ONBUILD` keyword (any case) and the blanks around it.
fn strip_onbuild_keyword(original: &str) -> &str {
    let blank = ['\t', '\n', '\x0c', '\r', ' '];
    let rest = original.trim_start_matches(blank);
    match rest.get(..7) {
        Some(word) if word.eq_ignore_ascii_case("onbuild") => rest[7..].trim_start_matches(blank),
        _ => original,
    }
}

fn parse_run(node: &Node) -> Parsed<Run> {
    let flags: ParsedFlags = FlagSet::new()
        .with("device", FlagKind::List)
        .with("mount", FlagKind::List)
        .with("network", FlagKind::String)
        .with("security", FlagKind::String)
        .parse(&node.flags)?;
    // Checked in BuildKit's order; a bad value points at the flag that holds it.
    let mut devices = Vec::new();
    for (nth, spec) in flags.list("device").iter().enumerate() {
        devices.push(parse_device(spec).map_err(|e| at_flag(node, "device", nth, e))?);
    }
    let mount_specs = flags.list("mount").to_vec();
    let mut mounts = Vec::new();
    for (nth, spec) in mount_specs.iter().enumerate() {
        mounts.push(parse_mount(spec, None).map_err(|e| at_flag(node, "mount", nth, e))?);
    }
    let network = match flags.string("network") {
        Some(value) => Some(NetworkMode::parse(value).map_err(|e| at_flag(node, "network", 0, e))?),
        None => None,
    };
    let security = match flags.string("security") {
        Some(value) => {
            Some(SecurityMode::parse(value).map_err(|e| at_flag(node, "security", 0, e))?)
        }
        None => None,
    };
    Ok(Run {
        command: command_line(node),
        heredocs: node.heredocs.clone(),
        mount_specs,
        mounts,
        network,
        security,
        devices,
        flags_used: flags.used().into_iter().map(str::to_string).collect(),
    })
}

/// A problem with the value of the `nth` `--name=` word among the node's flags.
fn at_flag(node: &Node, name: &str, nth: usize, message: String) -> Problem {
    let prefix = format!("--{name}=");
    let flag = node
        .flags
        .iter()
        .take_while(|word| word.as_str() != "--")
        .enumerate()
        .filter(|(_, word)| word.starts_with(&prefix))
        .nth(nth)
        .map(|(index, _)| index);
    Problem { message, flag }
}

fn parse_healthcheck(node: &Node) -> Parsed<Healthcheck> {
    let Some((kind, rest)) = node.args.split_first() else {
        return Err("HEALTHCHECK requires at least one argument".into());
    };
    let kind = kind.to_uppercase();
    if kind == "NONE" {
        // BuildKit ignores flags on NONE rather than rejecting them.
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let flags = FlagSet::new()
        .with("interval", FlagKind::String)
        .with("timeout", FlagKind::String)
        .with("start-period", FlagKind::String)
        .with("start-interval", FlagKind::String)
        .with("retries", FlagKind::String)
        .parse(&node.flags)?;
    if kind != "CMD" {
        return Err(format!("unknown type {} in HEALTHCHECK (try CMD)", go_quote(&kind)).into());
    }
    let command = command_from(rest, node.json);
    if command.args.is_empty() {
        return Err("missing command after HEALTHCHECK CMD".into());
    }
    let interval = parse_interval("interval", flags.string("interval"))?;
    let timeout = parse_interval("timeout", flags.string("timeout"))?;
    let start_period = parse_interval("start-period", flags.string("start-period"))?;
    let start_interval = parse_interval("start-interval", flags.string("start-interval"))?;
    let retries = match flags.string("retries").filter(|r| !r.is_empty()) {
        None => 0,
        Some(text) => {
            let retries = parse_go_i32(text)?;
            u32::try_from(retries)
                .map_err(|_| format!("--retries cannot be negative ({retries})"))?
        }
    };
    Ok(Healthcheck::Check(HealthCheck {
        command,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }))
}

fn parse_volume(node: &Node) -> Parsed<Volume> {
    at_least_one(node, "VOLUME")?;
    no_flags(node)?;
    let mut paths = Vec::with_capacity(node.args.len());
    for path in &node.args {
        let path = path.trim();
        if path.is_empty() {
            return Err("VOLUME specified can not be an empty string".into());
        }
        paths.push(path.to_string());
    }
    Ok(Volume { paths })
}

fn parse_arg(node: &Node) -> Parsed<Arg> {
    at_least_one(node, "ARG")?;
    let mut args = Vec::with_capacity(node.args.len());
    for word in &node.args {
        match word.split_once('=') {
            Some(("", _)) => return Err("ARG names can not be blank".into()),
            Some((name, default)) => args.push((name.to_string(), Some(default.to_string()))),
            None => args.push((word.clone(), None)),
        }
    }
    Ok(Arg { args })
}

fn parse_shell(node: &Node) -> Parsed<Shell> {
    no_flags(node)?;
    let command = command_line(node);
    if command.args.is_empty() {
        return Err("SHELL requires at least one argument".into());
    }
    if !node.json {
        return Err("SHELL requires the arguments to be in JSON form".into());
    }
    Ok(Shell {
        shell: command.args,
    })
}

/// Where flag word `index` starts, when the instruction's text is one physical line.
///
/// Continuation lines are joined in `original`, so columns past a join cannot be mapped
/// back; in that case the instruction's start is the best honest answer.
fn flag_position(node: &Node, index: usize) -> Position {
    let heredoc_lines: usize = node
        .heredocs
        .iter()
        .map(|h| h.content.matches('\n').count() + 1)
        .sum();
    if node.end_line.saturating_sub(heredoc_lines) != node.start.line {
        return node.start;
    }
    let original = node.original.as_str();
    let keyword_len = node.keyword.len();
    let Some(keyword_at) = original.char_indices().map(|(at, _)| at).find(|at| {
        original
            .get(*at..at + keyword_len)
            .is_some_and(|w| w.eq_ignore_ascii_case(&node.keyword))
    }) else {
        return node.start;
    };
    let mut cursor = keyword_at + keyword_len;
    let mut found = None;
    for flag in node.flags.iter().take(index + 1) {
        let name = flag.split('=').next().unwrap_or(flag);
        let Some(offset) = original[cursor..].find(name) else {
            return node.start;
        };
        found = Some(cursor + offset);
        cursor += offset + name.len();
    }
    match found {
        Some(at) => {
            let column = node.start.column + original[keyword_at..at].chars().count();
            Position::new(node.start.line, column)
        }
        None => node.start,
    }
}

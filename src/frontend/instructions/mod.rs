//! Typed Dockerfile instructions built from raw parser nodes, with BuildKit's rules and errors.
//!
//! [`parse_instruction`] checks one node the way BuildKit's `instructions` package does and
//! returns its typed form; variables stay as written until [`Instruction::expand`] runs with
//! the environment of the build step (see each struct for the fields it touches).

mod expand;
pub mod flags;
mod heredoc;
pub mod mount;
mod parse;
mod values;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::mount::{
    CacheSharing, Device, Mount, MountType, NetworkMode, SecurityMode, WordExpander, parse_device,
    parse_mount,
};
pub use self::parse::parse_instruction;
use super::diagnostic::{Diagnostic, Position};
use super::node::{Heredoc, Node};

/// One typed instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM image [AS name]`.
    From(From),
    /// `RUN command`.
    Run(Run),
    /// `CMD command`.
    Cmd(Cmd),
    /// `LABEL key=value ...`.
    Label(Label),
    /// `MAINTAINER name` (deprecated).
    Maintainer(Maintainer),
    /// `EXPOSE port[/proto] ...`.
    Expose(Expose),
    /// `ENV key=value ...`.
    Env(Env),
    /// `ADD src ... dest`.
    Add(Add),
    /// `COPY src ... dest`.
    Copy(Copy),
    /// `ENTRYPOINT command`.
    Entrypoint(Entrypoint),
    /// `VOLUME path ...`.
    Volume(Volume),
    /// `USER user[:group]`.
    User(User),
    /// `WORKDIR path`.
    Workdir(Workdir),
    /// `ARG name[=default] ...`.
    Arg(Arg),
    /// `ONBUILD instruction`.
    Onbuild(Onbuild),
    /// `STOPSIGNAL signal`.
    StopSignal(StopSignal),
    /// `HEALTHCHECK ...`.
    Healthcheck(Healthcheck),
    /// `SHELL ["exe", "arg"]`.
    Shell(Shell),
}

impl Instruction {
    /// The instruction word in upper case (`FROM`, `RUN`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

/// A command in exec form (`["a", "b"]`) or shell form (`a b`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec form: the argument vector. Shell form: one string, the whole command text.
    pub args: Vec<String>,
    /// True for shell form: the image's shell (`SHELL`, default `/bin/sh -c`) runs the text.
    pub prepend_shell: bool,
}

/// One `key=value` of `ENV` or `LABEL`, in written order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The name, quotes still in place until expansion.
    pub key: String,
    /// The value, quotes still in place until expansion.
    pub value: String,
    /// True for the legacy `ENV key value` form written without `=`.
    pub no_delimiter: bool,
}

/// A heredoc used as a `COPY`/`ADD` source: an inline file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceHeredoc {
    /// The delimiter, which is also the file's name (`<<EOF` creates `EOF`).
    pub path: String,
    /// The file's content, leading tabs already removed for `<<-`.
    pub content: String,
    /// True when variables in the content are expanded (the delimiter was not quoted).
    pub expand: bool,
}

/// `FROM [--platform=P] image [AS name]`.
///
/// Expansion touches `image` and `platform` (BuildKit expands them with the ARGs declared
/// before the first FROM); `stage_name` never changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    /// The base image or stage reference, as written.
    pub image: String,
    /// The stage name after `AS`, lowercased.
    pub stage_name: Option<String>,
    /// `--platform`, when given and non-empty.
    pub platform: Option<String>,
}

/// `RUN [--mount=...] [--network=...] [--security=...] [--device=...] command`.
///
/// Expansion touches only the mounts: `mounts` is rebuilt from `mount_specs` with every
/// value expanded. The command, heredocs, network, security and devices never change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// What to run; see [`Run::program`] for how heredocs change it.
    pub command: CommandLine,
    /// Heredocs on the RUN line, bodies exactly as written (`chomp` not yet applied).
    pub heredocs: Vec<Heredoc>,
    /// Every `--mount` value as written; the source `mounts` is parsed from.
    pub mount_specs: Vec<String>,
    /// One entry per `--mount`. Until [`Instruction::expand`] runs this is BuildKit's
    /// parse-time view: only `from` is filled (for stage ordering) and the rest are defaults;
    /// expansion replaces it with the complete, validated mounts.
    pub mounts: Vec<Mount>,
    /// `--network`, `None` when not given (BuildKit's `default`).
    pub network: Option<NetworkMode>,
    /// `--security`, `None` when not given (BuildKit's `sandbox`).
    pub security: Option<SecurityMode>,
    /// Every `--device`, parsed.
    pub devices: Vec<Device>,
    /// The names of the flags used, in order of first use (`mount`, `network`, ...).
    pub flags_used: Vec<String>,
}

/// What a RUN step executes once its heredocs are taken into account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunProgram {
    /// Run this command line.
    Command(CommandLine),
    /// Write `content` to an executable file called `name` and run it (a `#!` heredoc).
    Script {
        /// The heredoc's delimiter, used as the file name.
        name: String,
        /// The script, starting with `#!`.
        content: String,
    },
}

/// `CMD command`. Expansion touches nothing: the shell or the runtime sees the text as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    /// The default command; `CMD []` gives an empty exec-form list.
    pub command: CommandLine,
}

/// `LABEL key=value ...`. Expansion touches every key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The labels in written order.
    pub labels: Vec<KeyValue>,
}

/// `MAINTAINER name`. Expansion touches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maintainer {
    /// The text after the keyword.
    pub name: String,
}

/// `EXPOSE port ...`. Expansion touches every port, and splits results at whitespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expose {
    /// The ports as written (`80`, `53/udp`), sorted like BuildKit sorts them.
    pub ports: Vec<String>,
}

/// `ENV key=value ...`. Expansion touches every key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Env {
    /// The variables in written order.
    pub vars: Vec<KeyValue>,
}

/// `ADD [flags] src ... dest`.
///
/// Expansion touches `sources`, `dest`, `chown`, `chmod` and `checksum`; heredoc contents
/// are expanded separately by [`Instruction::expand_heredocs`]. `exclude` is used as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Add {
    /// Source paths and URLs (heredoc sources are in `heredocs`).
    pub sources: Vec<String>,
    /// Inline files given as heredocs.
    pub heredocs: Vec<SourceHeredoc>,
    /// The destination path.
    pub dest: String,
    /// `--chown`, when non-empty.
    pub chown: Option<String>,
    /// `--chmod`, when non-empty.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// Every `--exclude` pattern.
    pub exclude: Vec<String>,
    /// `--keep-git-dir`, `None` when not given.
    pub keep_git_dir: Option<bool>,
    /// `--checksum`, when non-empty.
    pub checksum: Option<String>,
    /// `--unpack`, `None` when not given (archives from the context are then unpacked).
    pub unpack: Option<bool>,
}

/// `COPY [flags] src ... dest`.
///
/// Expansion touches `sources`, `dest`, `chown` and `chmod`; heredoc contents are expanded
/// separately by [`Instruction::expand_heredocs`]. `from` and `exclude` stay as written
/// (BuildKit refuses variables in `--from`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    /// Source paths (heredoc sources are in `heredocs`).
    pub sources: Vec<String>,
    /// Inline files given as heredocs.
    pub heredocs: Vec<SourceHeredoc>,
    /// The destination path.
    pub dest: String,
    /// `--from`: a stage name, stage index or image, when non-empty.
    pub from: Option<String>,
    /// `--chown`, when non-empty.
    pub chown: Option<String>,
    /// `--chmod`, when non-empty.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// Every `--exclude` pattern.
    pub exclude: Vec<String>,
    /// `--parents`: keep the sources' parent directories.
    pub parents: bool,
}

/// `ENTRYPOINT command`. Expansion touches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entrypoint {
    /// The entrypoint; `ENTRYPOINT []` gives an empty list, which clears it.
    pub command: CommandLine,
}

/// `VOLUME path ...`. Expansion touches every path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The mount points, surrounding whitespace trimmed.
    pub paths: Vec<String>,
}

/// `USER user[:group]`. Expansion touches `user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The user (and group) text.
    pub user: String,
}

/// `WORKDIR path`. Expansion touches `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workdir {
    /// The directory.
    pub path: String,
}

/// `ARG name[=default] ...`.
///
/// Expansion touches the defaults only: BuildKit expands an ARG's default when it is
/// declared, never its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// `(name, default)` in written order; the default keeps its quotes until expansion.
    pub args: Vec<(String, Option<String>)>,
}

/// `ONBUILD instruction`. Expansion touches nothing: the trigger runs in a later build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger's instruction word, upper case (`RUN`).
    pub trigger: String,
    /// The trigger's source text, with its heredoc bodies appended; parsed when it fires.
    pub expression: String,
}

/// `STOPSIGNAL signal`. Expansion touches `signal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopSignal {
    /// The signal name or number.
    pub signal: String,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`. Expansion touches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    None,
    /// `HEALTHCHECK CMD ...`.
    Check(HealthCheck),
}

/// The check of `HEALTHCHECK CMD`; zero durations and retries mean "inherit or default".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// The test command (exec form becomes `CMD`, shell form `CMD-SHELL` in the image).
    pub command: CommandLine,
    /// `--interval`.
    pub interval: Duration,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--start-period`.
    pub start_period: Duration,
    /// `--start-interval`.
    pub start_interval: Duration,
    /// `--retries`.
    pub retries: u32,
}

impl Healthcheck {
    /// The image config's `Test` list: `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", text]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".to_string()],
            Healthcheck::Check(check) => {
                let kind = if check.command.prepend_shell {
                    "CMD-SHELL"
                } else {
                    "CMD"
                };
                std::iter::once(kind.to_string())
                    .chain(check.command.args.clone())
                    .collect()
            }
        }
    }
}

/// `SHELL ["exe", "arg", ...]`. Expansion touches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shell {
    /// The shell and its leading arguments.
    pub shell: Vec<String>,
}

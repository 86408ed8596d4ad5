//! The `rust-image-action` command line: parse arguments, call the library, map errors
//! to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rust_image_action::build;
use rust_image_action::check::{self, CheckOptions};
use rust_image_action::layer::compress::Compression;
use rust_image_action::platform::Platform;
use rust_image_action::sandbox;

#[derive(Parser)]
#[command(
    name = "rust-image-action",
    version,
    about = "Build Dockerfiles without a daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a Dockerfile into an OCI image without a daemon.
    ///
    /// Prints the image's manifest digest on stdout; progress goes to stderr.
    Build(Box<BuildArgs>),
    /// Run as the GitHub Action: inputs from `INPUT_*`, the run from `GITHUB_*` and the
    /// event payload; builds, pushes and writes the step's outputs and summary.
    Action,
    /// Parse, expand and plan a Dockerfile and report its problems.
    ///
    /// Prints one `FILE:LINE:COL: severity: message` line per finding and exits 1
    /// when any is an error.
    Check {
        /// The build context directory.
        #[arg(default_value = ".")]
        context: PathBuf,
        /// The Dockerfile (default: `Dockerfile` in the context).
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// A build argument, `KEY=VALUE` (or `KEY` to take it from the environment).
        #[arg(long = "build-arg", value_name = "KEY=VALUE")]
        build_args: Vec<String>,
        /// The stage to build (default: the last one).
        #[arg(long)]
        target: Option<String>,
        /// The target platform, `os/arch[/variant]` (default: this machine's).
        #[arg(long)]
        platform: Option<String>,
    },
    /// The sandbox's helper processes (internal: started by this program itself).
    #[command(hide = true, name = "__sandbox")]
    Sandbox {
        /// The helper mode.
        mode: String,
    },
}

#[derive(clap::Args)]
struct BuildArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    context: PathBuf,
    /// The Dockerfile (default: `Dockerfile` in the context).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// A name for the image, `[registry/]repository[:tag]` (repeatable).
    #[arg(short = 't', long = "tag", value_name = "REF")]
    tags: Vec<String>,
    /// A build argument, `KEY=VALUE` (or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// A label for the final image, `KEY=VALUE` (repeatable; wins over LABEL).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// The stage to build (default: the last one).
    #[arg(long)]
    target: Option<String>,
    /// The target platform, `os/arch[/variant]` (default: this machine's).
    #[arg(long)]
    platform: Option<String>,
    /// `NAME=DIR`, `NAME=oci-layout://DIR[:TAG]` or `NAME=docker-image://REF` (repeatable).
    #[arg(long = "build-context", value_name = "NAME=SOURCE")]
    build_contexts: Vec<String>,
    /// Write the image as an OCI image layout in this directory.
    #[arg(long = "oci-layout", value_name = "DIR")]
    oci_layout: Option<PathBuf>,
    /// Write the image as a docker-archive (`docker load`, `podman load`).
    #[arg(long = "tar", value_name = "PATH")]
    tar: Option<PathBuf>,
    /// Write the manifest digest to this file.
    #[arg(long = "digest-file", value_name = "PATH")]
    digest_file: Option<PathBuf>,
    /// Write build metadata (digests, tags, layers) as JSON to this file.
    #[arg(long = "metadata-file", value_name = "PATH")]
    metadata_file: Option<PathBuf>,
    /// Clamp all times to this Unix time for reproducible images (also SOURCE_DATE_EPOCH).
    #[arg(long = "source-date-epoch", value_name = "SECONDS")]
    source_date_epoch: Option<i64>,
    /// Accepted for compatibility: there is no step cache yet, so every step runs.
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// The content store directory (default: the user's cache directory).
    #[arg(long = "cache-dir", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// How RUN steps are isolated: auto, namespace, container or chroot.
    #[arg(long, default_value = "auto", value_name = "MODE")]
    isolation: String,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VARIABLE`.
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    secrets: Vec<String>,
    /// Layer compression: `gzip` or `zstd`.
    #[arg(long, default_value = "gzip")]
    compression: String,
    /// A registry to reach over plain HTTP, `HOST[:PORT]` (loopback ones always are).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Push the image to the repositories its `-t` tags name.
    #[arg(long)]
    push: bool,
    /// A PEM file of extra CA certificates for registries (`SSL_CERT_FILE` is read too).
    #[arg(long = "registry-ca", value_name = "FILE")]
    registry_ca: Option<PathBuf>,
    /// The user name for pushing (with `--password-stdin` or `--password-env`).
    #[arg(long)]
    username: Option<String>,
    /// Read the password or token from standard input (it is never echoed or logged).
    #[arg(long = "password-stdin")]
    password_stdin: bool,
    /// Read the password or token from this environment variable.
    #[arg(long = "password-env", value_name = "VAR")]
    password_env: Option<String>,
}

fn key_values(
    values: &[String],
    what: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut map = std::collections::BTreeMap::new();
    for value in values {
        let Some((key, value)) = value.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            anyhow::bail!("invalid {what} `{value}`: expected KEY=VALUE");
        };
        map.insert(key.to_string(), value.to_string());
    }
    Ok(map)
}

/// `--username` with a password from stdin or an environment variable, never argv.
fn explicit_credentials(
    username: Option<String>,
    from_stdin: bool,
    from_env: Option<&str>,
) -> anyhow::Result<Option<rust_image_action::registry::ExplicitCredentials>> {
    use rust_image_action::registry::{ExplicitCredentials, Secret};
    let password = match (from_stdin, from_env) {
        (true, Some(_)) => anyhow::bail!("give `--password-stdin` or `--password-env`, not both"),
        (true, None) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            Some(Secret::new(text.trim_end_matches(['\r', '\n']).to_string()))
        }
        (false, Some(name)) => match std::env::var(name) {
            Ok(value) => Some(Secret::new(value)),
            Err(_) => anyhow::bail!("`--password-env {name}`: the variable is not set"),
        },
        (false, None) => None,
    };
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(ExplicitCredentials { username, password })),
        (None, None) => Ok(None),
        (Some(_), None) => anyhow::bail!(
            "`--username` needs a password: pass it with `--password-stdin` or `--password-env`"
        ),
        (None, Some(_)) => anyhow::bail!("a password was given without `--username`"),
    }
}

fn build_options(args: BuildArgs) -> anyhow::Result<build::BuildOptions> {
    use anyhow::Context as _;
    let mut options = build::BuildOptions::new(args.context);
    options.dockerfile = args.file;
    options.tags = args.tags;
    options.build_args = check::parse_build_args(&args.build_args)?;
    options.labels = key_values(&args.labels, "label")?;
    options.target = args.target;
    options.platform = match args.platform {
        Some(text) => Some(Platform::parse(&text).context("invalid `--platform`")?),
        None => None,
    };
    for (name, value) in key_values(&args.build_contexts, "build context")? {
        options
            .build_contexts
            .insert(name, build::NamedContext::parse(&value));
    }
    options.oci_layout = args.oci_layout;
    options.tar = args.tar;
    options.digest_file = args.digest_file;
    options.metadata_file = args.metadata_file;
    options.source_date_epoch = args.source_date_epoch;
    options.no_cache = args.no_cache;
    options.cache_dir = args.cache_dir;
    options.isolation = sandbox::Isolation::parse(&args.isolation)
        .map_err(|e| anyhow::anyhow!("invalid `--isolation`: {e}"))?;
    for value in &args.secrets {
        let (id, source) = build::SecretSource::parse(value)
            .map_err(|e| anyhow::anyhow!("invalid `--secret`: {e}"))?;
        options.secrets.insert(id, source);
    }
    options.compression = match args.compression.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        other => anyhow::bail!("invalid `--compression` `{other}`: expected gzip or zstd"),
    };
    options.insecure_registries = args.insecure_registries;
    options.push = args.push;
    options.registry_ca = args.registry_ca;
    options.credentials = explicit_credentials(
        args.username,
        args.password_stdin,
        args.password_env.as_deref(),
    )?;
    Ok(options)
}

#[allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "main reports results and the final error"
)]
fn run_build(args: BuildArgs) -> ExitCode {
    let result = build_options(args).and_then(|options| {
        build::build(&options, &build::report::PlainReporter).map_err(anyhow::Error::from)
    });
    match result {
        Ok(outcome) => {
            println!("{}", outcome.manifest.digest);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // First, before any logging, runtime or thread exists: a helper may change the
        // credentials and root of the whole process.
        Command::Sandbox { mode } => rust_image_action::sandbox::helper::helper_main(&mode),
        Command::Build(args) => run_build(*args),
        Command::Action => match rust_image_action::action::mode::run_from_process() {
            Ok(()) => ExitCode::SUCCESS,
            // The log already has the error as an annotation.
            Err(_) => ExitCode::FAILURE,
        },
        Command::Check {
            context,
            file,
            build_args,
            target,
            platform,
        } => {
            let options = CheckOptions {
                context,
                file,
                build_args,
                target,
                platform,
            };
            match check::run(&options, &mut std::io::stdout().lock()) {
                Ok(report) => {
                    // Findings are the data on stdout; the summary is for the person.
                    #[allow(clippy::print_stderr, reason = "a one-line human summary")]
                    {
                        eprintln!("{}", report.summary());
                    }
                    if report.failed() {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(error) => {
                    #[allow(clippy::print_stderr, reason = "main reports the final error")]
                    {
                        eprintln!("error: {error:#}");
                    }
                    ExitCode::from(2)
                }
            }
        }
    }
}

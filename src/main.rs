//! The `rust-image-action` command line: parse arguments, call the library, map errors
//! to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rust_image_action::check::{self, CheckOptions};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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

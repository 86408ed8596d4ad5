//! The hidden `__sandbox MODE` entry points: this binary re-executed as the single-threaded
//! helper processes of the backends. Called from `main` before anything else runs.

use std::process::ExitCode;

/// Runs helper `mode`; the process exits with what it returns (or becomes the step).
pub fn helper_main(mode: &str) -> ExitCode {
    match mode {
        "namespace" => super::namespace::namespace_main(),
        "init" => super::namespace::init_main(),
        "probe-namespace" => super::namespace::probe_main(),
        other => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("rust-image-action: unknown sandbox helper `{other}`\n").as_bytes(),
            );
            ExitCode::from(125)
        }
    }
}

//! rust-image-action builds Dockerfiles into OCI images without a daemon.
//!
//! The pipeline: the [`frontend`] turns Dockerfile text into typed instructions with
//! located diagnostics; the [`plan`] groups them into stages, resolves build
//! arguments, bases and stage dependencies, and picks what the target needs. Later
//! stages of the pipeline (executor, image writer, registry client, the GitHub
//! Action layer) build on the plan; `docs/architecture.md` keeps the map.

pub mod action;
pub mod build;
pub mod check;
pub mod frontend;
pub mod ignore;
pub mod layer;
pub mod oci;
pub mod output;
pub mod plan;
pub mod platform;
pub mod registry;
pub mod sandbox;
pub mod store;

/// An error with its causes, `: `-separated.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

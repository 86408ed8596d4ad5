//! The GitHub Action's pure core: the runner's inputs and context, metadata-action's tag
//! rules, OCI labels, workflow commands, `GITHUB_OUTPUT` and the job summary.
//!
//! Nothing here touches the network, a registry or the build engine; the action mode that
//! wires it to them is the next step (issue 6).

pub mod commands;
pub mod context;
pub mod github;
pub mod inputs;
pub mod labels;
pub mod mode;
pub mod outputs;
pub mod summary;
pub mod tags;

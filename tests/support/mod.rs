//! Shared support for the integration tests: a throw-away local registry, a busybox root
//! file system, pushing images built from it, and preconfigured `podman`, `buildah` and
//! `skopeo` commands that keep all their state in a per-test temporary directory.
//!
//! Every helper needs tools from Debian packages; when one is missing it fails with a message
//! naming the tool and `scripts/install-test-deps` rather than skipping the test.
//!
//! Use it from a test crate with `mod support;`. Besides the modules above it holds
//! [`image_tree`] (reading docker-archive tarballs) and [`reference`] (a private Docker
//! daemon), written for the BuildKit comparison tests, [`debian`] (a cached mmdebstrap
//! root of Debian bookworm, pushed as an image) and [`bench`] (driving RUN builds and
//! reading back their layers, for the RUN tests).

#![allow(
    dead_code,
    unused_imports,
    reason = "each test crate uses a different part of the shared support"
)]

pub mod auth_registry;
pub mod bench;
pub mod debian;
pub mod fake_github;
pub mod fault_proxy;
pub mod http_wire;
pub mod image;
pub mod image_tree;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod runner;
pub mod token_server;
pub mod tools;

pub use image::{
    PushedImage, PushedIndex, push_image, push_multi_platform_image, push_rootfs_image,
};
pub use registry::Registry;
pub use rootfs::busybox_rootfs;
pub use tools::{Buildah, Podman, ToolCommand, buildah, podman, require_tool, run, skopeo};

//! Kiln's integration tests, one binary (one link of the workspace instead of one per file): the
//! real kiln binary, real HTTP, real guest components, and the real services each module names.
//! Run one module with `cargo test -p kiln-tests --test integration python::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod boundary;
mod client;
mod control;
mod control_cli;
mod drift;
mod errors;
mod faults;
mod images;
mod lifecycle;
mod metrics;
mod protocols;
mod python;
mod registry;
mod rollout;
mod runs;
mod runs_docker;
mod runs_spark;
mod scaling;
mod tampering;

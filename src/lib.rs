//! portalctl: onboard municipalities as tenants of a shared Serviceportal, roll the portal
//! server out to Kubernetes in waves, and track go-live status across a rollout group.
//!
//! See `ARCHITECTURE.md` for the code map and the invariants.

pub mod audit;
pub mod build_info;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod content;
pub mod db;
pub mod diagnostics;
pub mod dns;
pub mod exit_codes;
pub mod failpoint;
pub mod local;
pub mod municipality;
pub mod names;
pub mod output;
pub mod portal;
pub mod render;
pub mod rollout;
pub mod scaffold;
pub mod servicekonto;
pub mod status;
pub mod tenant;
pub mod theme;

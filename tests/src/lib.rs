//! Shared fixtures for the end-to-end tests: building trees, RPMs, repositories and ISOs with
//! real tools, and comparing trees. One module per area.

pub mod minidistro;
pub mod tools;

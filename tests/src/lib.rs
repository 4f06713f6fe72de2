//! Shared fixtures for the end-to-end tests: building trees, RPMs, repositories and ISOs with
//! real tools, and comparing trees. One module per area.

pub mod oracle;
pub mod rpmbuild;
pub mod solve;
pub mod tools;
pub mod universe;

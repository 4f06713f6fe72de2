//! Shared fixtures for the end-to-end tests: building trees, RPMs, repositories and ISOs with
//! real tools, and comparing trees. One module per area.

pub mod install;
pub mod iso;
pub mod kernelspec;
pub mod luaroot;
pub mod minidistro;
pub mod oracle;
pub mod rpmbuild;
pub mod signing;
pub mod solve;
pub mod specfile;
pub mod spine;
pub mod tools;
pub mod trees;
pub mod universe;

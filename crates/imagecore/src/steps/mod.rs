//! One file per node kind, each implementing [`crate::graph::Step`]. The graph, the cache and the
//! executor never look inside a step.

pub mod capture;
pub mod copycds;
pub mod files;
pub mod initrd;
pub mod install;
pub mod kernel;
pub mod otherpkgs;
pub mod pack;
pub mod postinstall;
pub mod repo;
pub mod resolve;
pub mod sync;
pub mod trim;
pub mod util;

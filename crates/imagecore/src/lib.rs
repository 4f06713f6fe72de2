//! # imagecore
//!
//! Build stateless (diskless) Linux node images the way xCAT's `copycds`, `genimage` and
//! `packimage` do, declared in a TOML osimage spec and built as a content-hashed graph of steps.
//!
//! The flow: [`Spec::load`] reads a spec (with `extends`), [`Plan::new`] compiles it into a graph
//! of nodes whose keys are blake3 hashes of everything they read, and [`Plan::build`] runs the
//! nodes whose outputs are not in the [`Store`] yet.
//!
//! Modules, one concern each:
//! - [`spec`]: the osimage TOML model, `extends` merging, validation with file:line:col errors.
//! - [`lists`]: xCAT list-file grammars (pkglist, exlist, synclist, postinstall entries).
//! - [`graph`]: the build graph, node keys, plan (why dirty), executor, and the [`graph::Step`] trait.
//! - [`store`]: the content-addressed cache (blobs, manifests, step outputs, build records).
//! - [`tree`]: tree manifests, scanning a directory into the store, materialising a manifest.
//! - [`archive`]: deterministic newc cpio writer/reader and compressors.
//! - [`rpm`], [`repo`], [`solve`]: RPM headers/payloads/EVR, repository metadata, dependency solver.
//! - [`install`]: the RPM install engine (payload unpack, scriptlets, rpmdb).
//! - [`media`]: install media (ISO 9660) reading and `copycds`.
//! - [`boot`]: kernel selection, module closure, ELF closure, the stateless `/init`, qemu boot test.
//! - [`steps`]: one file per node kind, each implementing [`graph::Step`].

#![deny(missing_docs)]

pub mod archive;
pub mod boot;
pub mod demo;
pub mod error;
pub mod graph;
pub mod hash;
pub mod install;
mod ioutil;
pub mod lists;
pub mod media;
pub mod repo;
pub mod rpm;
pub mod solve;
pub mod spec;
pub mod steps;
pub mod store;
pub mod tree;

pub use error::Error;
pub use graph::{BuildOptions, Plan};
pub use hash::Hash;
pub use spec::Spec;
pub use store::Store;

//! The [`Step`] trait: what every stage implements. The graph, the cache and the executor see a
//! stage only through this trait: its kind, implementation version, declared inputs and `run`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hash::Hash;
use crate::store::Store;

/// The kinds of node, named after the stages. `plan` and `graph` print these names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Import install media into the media store.
    Copycds,
    /// Index one package repository.
    Repo,
    /// Solve the package lists into a lock.
    Resolve,
    /// Install the resolved packages into a tree.
    Install,
    /// xCAT otherpkgs passes on top of the install.
    Otherpkgs,
    /// Import an existing root tree.
    Capture,
    /// Run postinstall scripts on the tree.
    Postinstall,
    /// Apply synclist entries.
    Sync,
    /// Write the fixed files of a stateless node.
    Files,
    /// Apply the exlist.
    Trim,
    /// Select the kernel and its modules.
    Kernel,
    /// The part of the image an initrd can be made of (a manifest filter).
    #[serde(rename = "initrd-tree")]
    InitrdTree,
    /// Pick the initrd's files (modules, firmware, tools) out of the image.
    #[serde(rename = "initrd-inputs")]
    InitrdInputs,
    /// Build the stateless initrd.
    Initrd,
    /// Pack the root image archive.
    Pack,
}

impl NodeKind {
    /// The lowercase stage name.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Copycds => "copycds",
            NodeKind::Repo => "repo",
            NodeKind::Resolve => "resolve",
            NodeKind::Install => "install",
            NodeKind::Otherpkgs => "otherpkgs",
            NodeKind::Capture => "capture",
            NodeKind::Postinstall => "postinstall",
            NodeKind::Sync => "sync",
            NodeKind::Files => "files",
            NodeKind::Trim => "trim",
            NodeKind::Kernel => "kernel",
            NodeKind::InitrdTree => "initrd-tree",
            NodeKind::InitrdInputs => "initrd-inputs",
            NodeKind::Initrd => "initrd",
            NodeKind::Pack => "pack",
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One file (or directory tree) a step reads; its content hash goes into the node key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// What the file is, for "why dirty" messages, e.g. `postinstall script compute.postinstall`.
    pub label: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Trees only: `Some(epoch)` hashes mtimes too, clamped to `epoch` (for trees whose mtimes
    /// reach the output, like a captured root); `None` ignores mtimes.
    pub mtime_clamp: Option<i64>,
}

/// Everything a step declares about what it reads, besides its parents' outputs.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// Options as canonical `name = value` strings (sorted by name when hashed).
    pub options: BTreeMap<String, String>,
    /// Files whose content is hashed into the key.
    pub files: Vec<InputFile>,
    /// Directory trees whose full content (names, metadata, file contents) is hashed.
    pub trees: Vec<InputFile>,
}

impl Inputs {
    /// Add an option.
    pub fn option(&mut self, name: &str, value: impl fmt::Display) -> &mut Self {
        self.options.insert(name.to_string(), value.to_string());
        self
    }

    /// Add a file input.
    pub fn file(&mut self, label: impl Into<String>, path: impl Into<PathBuf>) -> &mut Self {
        self.files.push(InputFile {
            label: label.into(),
            path: path.into(),
            mtime_clamp: None,
        });
        self
    }

    /// Add a directory-tree input.
    pub fn tree(&mut self, label: impl Into<String>, path: impl Into<PathBuf>) -> &mut Self {
        self.trees.push(InputFile {
            label: label.into(),
            path: path.into(),
            mtime_clamp: None,
        });
        self
    }

    /// Add a directory-tree input whose mtimes (clamped to `epoch`) are part of its content.
    pub fn tree_with_mtimes(
        &mut self,
        label: impl Into<String>,
        path: impl Into<PathBuf>,
        epoch: i64,
    ) -> &mut Self {
        self.trees.push(InputFile {
            label: label.into(),
            path: path.into(),
            mtime_clamp: Some(epoch),
        });
        self
    }
}

/// What a step produced. Stored in the cache under the node key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The output tree's manifest id (a blob holding the serialised [`crate::tree::Manifest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Hash>,
    /// Named file artifacts (archives, kernel, initrd, lock, index), each a blob id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, Hash>,
    /// Small structured facts (kernel version, package counts, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// Settings that shape exported files but never a step's output (so they are not in keys).
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Base URL the root image is served from (`imgurl=` in the netboot stanzas).
    pub image_url: Option<String>,
}

/// What a running step may use: the store, a scratch directory, and build settings.
pub struct StepCtx<'a> {
    /// The content-addressed store (blobs, manifests).
    pub store: &'a Store,
    /// A private scratch directory, removed after the step.
    pub scratch: &'a Path,
    /// Worker threads the step may use.
    pub jobs: usize,
    /// The node's name (for log lines).
    pub node: &'a str,
    /// `--locked`: a resolve must use the existing lock file, never solve again.
    pub locked: bool,
}

/// A stage. Implementations are pure functions of their options, declared input files and
/// parents' outputs: everything else they read must be declared in [`Step::inputs`].
pub trait Step: Send + Sync {
    /// The node kind.
    fn kind(&self) -> NodeKind;

    /// Implementation version: bump it whenever the step's output for the same inputs changes.
    fn version(&self) -> u32;

    /// Options and files this step reads.
    fn inputs(&self) -> Result<Inputs, Error>;

    /// Produce the output from the parents' outputs (in the order the graph lists the parents).
    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error>;

    /// Write the step's user-visible results (e.g. into `rootimgdir`) from its output, whether it
    /// was just built or came from the cache. Default: nothing.
    fn export(&self, _store: &Store, _out: &Output, _opts: &ExportOptions) -> Result<(), Error> {
        Ok(())
    }

    /// Notes for `plan` (e.g. synclist sections that are kept but not applied). Default: none.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

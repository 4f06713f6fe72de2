//! `repo`: index one `pkgdir` entry. The directory is searched recursively for `repodata/`
//! like xCAT (BaseOS/AppStream sub-repositories); a directory without repodata is scanned.
//! The parsed indexes are cached as a blob keyed by the repository metadata checksums, so a warm
//! resolve never re-parses XML.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::repo::{RepoIndex, find_repos, load_tree, repo_fingerprint};
use crate::spec::{Located, PkgDir, Spec};

/// The artifact name of the `Vec<RepoIndex>` encoded by [`crate::repo::blob::encode`].
pub const INDEX: &str = "repo-index.bin";

/// Where `media:` references resolve and where ISOs named in `pkgdir` are imported:
/// `$OSIMAGE_STORE` (as for `osimage copycds --store`), else the first `install/` directory
/// found in the spec's directory or above it (so `specs/x.toml` finds the project's
/// `./install`), else `install/` beside the spec.
pub fn media_store(spec: &Spec) -> PathBuf {
    if let Some(s) = std::env::var_os("OSIMAGE_STORE") {
        return PathBuf::from(s);
    }
    spec.dir
        .ancestors()
        .map(|d| d.join("install"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| spec.dir.join("install"))
}

/// How the repo node finds its directory.
#[derive(Clone, Debug)]
enum Source {
    /// A directory on disk (given, or resolved from `media:`).
    Dir(PathBuf),
    /// The destination of the parent `copycds` node.
    FromCopycds,
    /// Not supported (URLs): fails loudly at build time.
    Unsupported(String),
}

/// The repo step.
pub struct Repo {
    index: usize,
    source: Source,
    origin: String,
}

impl Repo {
    /// For the `index`-th `pkgdir` entry.
    pub fn new(spec: &Spec, index: usize, dir: &Located<PkgDir>) -> Repo {
        let source = match &dir.value {
            PkgDir::Path(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("iso")) => {
                Source::FromCopycds
            }
            PkgDir::Path(p) => Source::Dir(p.clone()),
            PkgDir::Media(m) => Source::Dir(media_store(spec).join(m)),
            PkgDir::Url(u) => Source::Unsupported(u.clone()),
        };
        Repo {
            index,
            source,
            origin: dir.origin.to_string(),
        }
    }

    fn dirs(&self, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        if !dir.is_dir() {
            return Err(Error::Step {
                node: format!("repo:{}", self.index),
                message: format!(
                    "{}: pkgdir {} does not exist (for media: run `osimage copycds` first)",
                    self.origin,
                    dir.display()
                ),
            });
        }
        Ok(find_repos(dir)?)
    }
}

/// Load the repository indexes a repo node produced.
pub fn indexes(ctx: &StepCtx<'_>, out: &Output) -> Result<Vec<RepoIndex>, Error> {
    let Some(h) = out.artifacts.get(INDEX) else {
        return Ok(Vec::new());
    };
    let bytes = ctx.store.read(h)?;
    crate::repo::blob::decode(&bytes).map_err(|e| Error::Step {
        node: ctx.node.to_string(),
        message: format!("cached repository index is unreadable ({e}); run `osimage cache gc`"),
    })
}

impl Step for Repo {
    fn kind(&self) -> NodeKind {
        NodeKind::Repo
    }

    fn version(&self) -> u32 {
        // 2: sub-repositories below a repository root are indexed too
        // 3: binary index blob (repo::blob) instead of JSON
        3
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("index", self.index);
        match &self.source {
            Source::Dir(d) => {
                // cheap fingerprints (repomd.xml checksum, or file list of a plain dir)
                if d.is_dir() {
                    for (n, r) in self.dirs(d)?.iter().enumerate() {
                        i.option(&format!("repo{n}"), repo_fingerprint(r)?);
                    }
                } else {
                    i.option("missing", d.display());
                }
            }
            Source::FromCopycds => {}
            Source::Unsupported(u) => {
                i.option("url", u);
            }
        }
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let dir = match &self.source {
            Source::Dir(d) => d.clone(),
            Source::FromCopycds => parents
                .iter()
                .find_map(|p| p.meta.get("dest"))
                .map(PathBuf::from)
                .ok_or_else(|| Error::Step {
                    node: ctx.node.to_string(),
                    message: "internal: copycds parent has no destination".into(),
                })?,
            Source::Unsupported(u) => {
                return Err(Error::NotImplemented(format!(
                    "{}: remote repositories ({u}); mirror it to a directory and name that",
                    self.origin
                )));
            }
        };
        if !dir.is_dir() {
            self.dirs(&dir)?; // the error that names the spec line
        }
        let all = load_tree(&dir, &format!("pkgdir{}", self.index))?;
        let bytes = crate::repo::blob::encode(&all);
        let mut out = Output::default();
        out.artifacts
            .insert(INDEX.to_string(), ctx.store.put_bytes(&bytes)?);
        out.meta.insert(
            "packages".into(),
            all.iter()
                .map(|r| r.packages.len())
                .sum::<usize>()
                .to_string(),
        );
        Ok(out)
    }
}

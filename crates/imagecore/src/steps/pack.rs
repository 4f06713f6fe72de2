//! `pack`: the deterministic root image archive (newc cpio, zstd by default; gzip or xz for
//! compatibility), streamed from the store without materialising the tree.
//!
//! Export writes `rootimgdir/rootimg.cpio.<zst|gz|xz>` atomically, and only after the new
//! archive is complete removes stale `rootimg.*` siblings (xCAT #2225: a node must never boot an
//! old image, and there must never be no image while packing).

use std::io::BufWriter;
use std::path::PathBuf;

use crate::archive::{BlobSource, Compress, PackOptions};
use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::hash::Hash;
use crate::spec::{self, Spec};
use crate::store::Store;

impl BlobSource for Store {
    fn open_blob(&self, h: &Hash) -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
        Store::open_blob(self, h).map_err(std::io::Error::other)
    }
}

/// The pack step.
pub struct Pack {
    compress: spec::Compress,
    level: i32,
    epoch: i64,
    rootimgdir: PathBuf,
}

impl Pack {
    /// From the spec's `[pack]`.
    pub fn new(spec: &Spec) -> Pack {
        Pack {
            compress: spec.pack.compress,
            level: spec.pack.level,
            epoch: spec.pack.source_date_epoch,
            rootimgdir: spec.image.rootimgdir.clone(),
        }
    }

    /// The archive file name, e.g. `rootimg.cpio.zst`.
    pub fn file_name(&self) -> &'static str {
        match self.compress {
            spec::Compress::Zstd => "rootimg.cpio.zst",
            spec::Compress::Gzip => "rootimg.cpio.gz",
            spec::Compress::Xz => "rootimg.cpio.xz",
        }
    }

    fn codec(&self) -> Compress {
        match self.compress {
            // Fixed thread count: the compressed bytes must not depend on the machine.
            spec::Compress::Zstd => Compress::Zstd {
                level: self.level,
                threads: 2,
            },
            spec::Compress::Gzip => Compress::Gzip {
                level: self.level.clamp(1, 9) as u32,
            },
            spec::Compress::Xz => Compress::Xz {
                level: self.level.clamp(0, 9) as u32,
            },
        }
    }
}

impl Step for Pack {
    fn kind(&self) -> NodeKind {
        NodeKind::Pack
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("method", "cpio")
            .option("compress", format!("{:?}", self.codec()))
            .option("source_date_epoch", self.epoch);
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let m = super::util::parent_tree(ctx, parents)?;
        let path = ctx.scratch.join(self.file_name());
        let f = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let opts = PackOptions {
            source_date_epoch: Some(self.epoch),
            compress: self.codec(),
            pad_to: None,
        };
        let stats = crate::archive::pack_manifest(
            ctx.store,
            &m,
            BufWriter::with_capacity(1 << 20, f),
            &opts,
        )?;
        let (blob, size) = ctx.store.put_file(&path)?;
        let mut out = Output::default();
        out.artifacts.insert(self.file_name().to_string(), blob);
        out.meta.insert("entries".into(), stats.entries.to_string());
        out.meta
            .insert("bytes_in".into(), stats.bytes_in.to_string());
        out.meta.insert("bytes_out".into(), size.to_string());
        Ok(out)
    }

    fn export(
        &self,
        store: &Store,
        out: &Output,
        _opts: &crate::graph::step::ExportOptions,
    ) -> Result<(), Error> {
        let name = self.file_name();
        let Some(blob) = out.artifacts.get(name) else {
            return Err(Error::Step {
                node: "pack".into(),
                message: format!("cached output has no {name}; run `osimage cache verify`"),
            });
        };
        let dest = self.rootimgdir.join(name);
        super::util::export_blob(store, blob, &dest)?;
        // Only now that the new archive is complete: drop stale images of other formats.
        if let Ok(rd) = std::fs::read_dir(&self.rootimgdir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let stale = (n.starts_with("rootimg.") || n.starts_with(".rootimg."))
                    && n != name
                    && n != format!(".{name}.osimage")
                    && e.file_type().is_ok_and(|t| t.is_file());
                if stale {
                    std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
                }
            }
        }
        Ok(())
    }
}

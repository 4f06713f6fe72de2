//! `kernel`: choose the image's kernel (`kernelver` = xCAT `-k`, `krpmver` = `-g`; otherwise the
//! highest by rpm version order, not xCAT's lexical "last") from the installed or captured tree,
//! and publish its `vmlinuz`. Export: `rootimgdir/kernel`.
//!
//! Only `boot/` and each module tree's `vmlinuz` are materialised to choose: the module trees
//! themselves are read by the `initrd` node.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::Spec;
use crate::store::Store;

/// True when a root tree holds a kernel (`boot/vmlinuz-*` or `lib/modules/*/vmlinuz`).
pub fn tree_has_kernel(root: &Path) -> bool {
    crate::boot::list_kernels(root).is_ok_and(|v| !v.is_empty())
}

/// The artifact name of the kernel image.
pub const KERNEL: &str = "kernel";

/// The kernel step.
pub struct Kernel {
    kernelver: String,
    krpmver: String,
    kerneldir: Option<PathBuf>,
    rootimgdir: PathBuf,
}

impl Kernel {
    /// From the spec's `[kernel]` (defaults when absent).
    pub fn new(spec: &Spec) -> Kernel {
        let k = spec.kernel.as_ref();
        Kernel {
            kernelver: k.map(|k| k.kernelver.clone()).unwrap_or_default(),
            krpmver: k.map(|k| k.krpmver.clone()).unwrap_or_default(),
            kerneldir: k.and_then(|k| k.kerneldir.as_ref().map(|d| d.value.clone())),
            rootimgdir: spec.image.rootimgdir.clone(),
        }
    }
}

impl Step for Kernel {
    fn kind(&self) -> NodeKind {
        NodeKind::Kernel
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("kernelver", &self.kernelver)
            .option("krpmver", &self.krpmver);
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        if let Some(d) = &self.kerneldir {
            return Err(Error::NotImplemented(format!(
                "kernel from kerneldir {} (issue 6): put the kernel package in the pkglist instead",
                d.display()
            )));
        }
        let m = super::util::parent_tree(ctx, parents)?;
        let root = ctx.scratch.join("root");
        super::util::materialize_subset(ctx.store, &m, &root, |p| {
            p.starts_with("boot/")
                || super::util::modules_path(p).is_some_and(|(_, rest)| rest == "vmlinuz")
        })?;
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let k = crate::boot::select_kernel(
            &root,
            opt(&self.kernelver).as_deref(),
            opt(&self.krpmver).as_deref(),
        )?;
        let (blob, _) = ctx.store.put_file(&k.vmlinuz)?;
        let mut out = Output::default();
        out.artifacts.insert(KERNEL.into(), blob);
        out.meta.insert("kernel_version".into(), k.version.clone());
        tracing::info!(version = %k.version, "kernel chosen");
        Ok(out)
    }

    fn export(
        &self,
        store: &Store,
        out: &Output,
        _opts: &crate::graph::step::ExportOptions,
    ) -> Result<(), Error> {
        if let Some(h) = out.artifacts.get(KERNEL) {
            super::util::export_blob(store, h, &self.rootimgdir.join(KERNEL))?;
        }
        Ok(())
    }
}

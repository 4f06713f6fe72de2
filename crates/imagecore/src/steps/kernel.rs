//! `kernel`: choose the image's kernel (`kernelver` = xCAT `-k`, `krpmver` = `-g`; otherwise the
//! highest by rpm version order, not xCAT's lexical "last") from the installed or captured tree,
//! and publish its `vmlinuz`. Export: `rootimgdir/kernel`.
//!
//! Only `boot/` and each module tree's `vmlinuz` are materialised to choose: the module trees
//! themselves are read by the `initrd-inputs` node.
//!
//! With `kerneldir` (a repository or plain directory of kernel RPMs) the kernel comes from
//! there, by the same rules, and wins over a kernel the pkglist installed: its packages
//! (`kernel`, `kernel-core`, `kernel-modules*` as present) are unpacked with the install engine
//! (no scriptlets, no rpmdb) into this node's output tree, where `initrd-inputs` takes the
//! modules from. The chosen RPM files are declared inputs (their content is in the key) and the
//! choice itself is an option, so a newer kernel dropped into the directory changes the key.

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

impl Kernel {
    fn choose(&self, dir: &Path) -> Result<crate::boot::KernelRpms, Error> {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(crate::boot::choose_kerneldir(
            dir,
            opt(&self.kernelver).as_deref(),
            opt(&self.krpmver).as_deref(),
        )?)
    }

    /// The kernel from `kerneldir`: unpack its packages, publish the tree and the vmlinuz.
    fn run_kerneldir(&self, ctx: &StepCtx<'_>, dir: &Path) -> Result<Output, Error> {
        let k = self.choose(dir)?;
        let work = super::util::work_dir(ctx.scratch, 1 << 30)?;
        let root = work.path().join("root");
        crate::boot::unpack_rpms(&root, &k.rpms)?;
        let chosen = crate::boot::select_kernel(&root, Some(&k.version), None)?;
        let (blob, _) = ctx.store.put_file(&chosen.vmlinuz)?;
        let m = crate::tree::scan(ctx.store, &root, None)?;
        let mut out = super::util::tree_output(ctx.store, &m)?;
        out.artifacts.insert(KERNEL.into(), blob);
        out.meta.insert("kernel_version".into(), k.version.clone());
        out.meta
            .insert("kernel_packages".into(), k.nevras.join(" "));
        tracing::info!(version = %k.version, packages = %k.nevras.join(" "), "kernel chosen from kerneldir");
        Ok(out)
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
        if let Some(d) = &self.kerneldir {
            let k = self.choose(d)?;
            i.option("kerneldir", d.display())
                .option("kerneldir_packages", k.nevras.join(" "));
            for (p, n) in k.rpms.iter().zip(&k.nevras) {
                i.file(format!("kernel package {n}"), p);
            }
        }
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        if let Some(d) = &self.kerneldir {
            return self.run_kerneldir(ctx, d);
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

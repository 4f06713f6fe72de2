//! `kernel`: choose the kernel and its module tree (issue 6).

use std::path::Path;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::Spec;

/// True when a root tree holds a kernel (`boot/vmlinuz-*` or `lib/modules/*/vmlinuz`).
pub fn tree_has_kernel(root: &Path) -> bool {
    let boot = std::fs::read_dir(root.join("boot"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        })
        .unwrap_or(false);
    boot || ["lib/modules", "usr/lib/modules"].iter().any(|m| {
        std::fs::read_dir(root.join(m))
            .map(|d| d.flatten().any(|e| e.path().join("vmlinuz").is_file()))
            .unwrap_or(false)
    })
}

/// The kernel step.
pub struct Kernel {
    kernelver: String,
    krpmver: String,
}

impl Kernel {
    /// From the spec's `[kernel]` (defaults when absent).
    pub fn new(spec: &Spec) -> Kernel {
        let k = spec.kernel.as_ref();
        Kernel {
            kernelver: k.map(|k| k.kernelver.clone()).unwrap_or_default(),
            krpmver: k.map(|k| k.krpmver.clone()).unwrap_or_default(),
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

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        Err(super::util::not_implemented("kernel", 6))
    }
}

//! `initrd-tree`: the part of the image tree an initrd can be made of — the chosen kernel's
//! module tree, firmware, the program and library directories (for the tools and their ELF
//! closure) and `etc/ld.so.conf*` — as a manifest of its own (blobs are shared, nothing is
//! copied or read). It costs a manifest filter, and its output only changes when one of those
//! files changes, so with early cutoff a postinstall script or synclist that touches anything
//! else (the usual case: `/etc`, `/opt`, `/root`) leaves `initrd-inputs` (module closure) and
//! `initrd` (compression) cached.
//!
//! Directory entries that are not themselves selected (`etc`, `usr`) are recreated as plain
//! root-owned 0755 directories, so their own mtimes (which change with every file written
//! beside them) do not reach the selection.

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::tree::Manifest;

/// Directories (and `etc/ld.so*`) whose content the initrd may take files from, besides the
/// kernel's module tree.
pub const TOOL_DIRS: [&str; 9] = [
    "bin/",
    "sbin/",
    "lib/",
    "lib64/",
    "usr/bin/",
    "usr/sbin/",
    "usr/lib/",
    "usr/lib64/",
    "etc/ld.so",
];

/// Whether `path` (root-relative) is something an initrd for kernel `kver` may be made of.
pub fn initrd_relevant(path: &str, kver: &str) -> bool {
    match super::util::modules_path(path) {
        Some((v, _)) => v == kver,
        None => {
            TOOL_DIRS.iter().any(|d| path.starts_with(d))
                // the directories themselves, or usrmerge symlinks (`bin -> usr/bin`)
                || TOOL_DIRS
                    .iter()
                    .any(|d| d.strip_suffix('/') == Some(path))
        }
    }
}

/// The `initrd-tree` step.
pub struct InitrdTree;

impl Step for InitrdTree {
    fn kind(&self) -> NodeKind {
        NodeKind::InitrdTree
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        Ok(Inputs::default())
    }

    /// Parents: the `kernel` node (its version), then the image tree.
    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let internal = |what: &str| Error::Step {
            node: ctx.node.into(),
            message: format!("internal: {what}"),
        };
        let (kernel, tree) = match parents {
            [k, t, ..] => (*k, *t),
            _ => return Err(internal("initrd-tree needs the kernel and tree parents")),
        };
        let kver = kernel
            .meta
            .get("kernel_version")
            .ok_or_else(|| internal("kernel parent has no version"))?;
        let m = super::util::parent_tree(ctx, &[tree])?;
        let mut sel = Manifest::default();
        for e in m.entries.iter().filter(|e| initrd_relevant(&e.path, kver)) {
            sel.insert(e.clone());
        }
        // parents created by insert take their child's mtime: make them independent of it
        for e in &mut sel.entries {
            if !initrd_relevant(&e.path, kver) {
                e.mtime = 0;
            }
        }
        tracing::info!(
            "initrd-tree for {kver}: {} of {} entries",
            sel.entries.len(),
            m.entries.len()
        );
        super::util::tree_output(ctx.store, &sel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_tools_libraries_and_this_kernels_modules() {
        let k = "6.1.0-1";
        for p in [
            "bin",
            "usr/bin/busybox",
            "lib64/ld-linux-x86-64.so.2",
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            "etc/ld.so.conf",
            "etc/ld.so.conf.d/x.conf",
            "lib/modules/6.1.0-1/kernel/net/virtio_net.ko",
            "usr/lib/modules/6.1.0-1/modules.dep",
            "usr/lib/firmware/a.bin",
        ] {
            assert!(initrd_relevant(p, k), "{p}");
        }
        for p in [
            "etc",
            "etc/motd",
            "usr",
            "opt/app/data",
            "lib/modules/5.14.0/kernel/x.ko",
            "usr/lib/modules/5.14.0",
            "binary",
            "var/lib/rpm/rpmdb.sqlite",
        ] {
            assert!(!initrd_relevant(p, k), "{p}");
        }
    }
}

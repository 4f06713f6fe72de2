//! `initrd`: the stateless initrd — our `/init` (see `boot/init/init.sh`), the image's busybox
//! and zstd with their shared-library closure, and the kernel modules of the driver set
//! (`netdrivers`, plus the per-arch defaults when `netdrivers_defaults`, plus virtio_pci and
//! virtio_blk to read a root image from disk) in load order. Packed as newc + zstd.
//!
//! Export: `rootimgdir/initrd-stateless.zst`, and `rootimgdir/netboot.ipxe`, an iPXE script
//! whose kernel command line carries xCAT's `imgurl=` (set `image-url` in iPXE to the HTTP
//! directory that serves `rootimgdir`).

use std::path::PathBuf;

use crate::boot::{InitrdOptions, default_netdrivers, module_closure, pack_initrd, select_kernel};
use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::Spec;
use crate::store::Store;

/// The artifact name of the initrd.
pub const INITRD: &str = "initrd-stateless.zst";

/// The initrd step.
pub struct Initrd {
    netdrivers: Vec<String>,
    defaults: bool,
    rootlimit: String,
    addkcmdline: String,
    arch: String,
    rootimg_name: String,
    rootimgdir: PathBuf,
}

impl Initrd {
    /// From the spec's `[kernel]`.
    pub fn new(spec: &Spec) -> Initrd {
        let k = spec.kernel.as_ref();
        Initrd {
            netdrivers: k.map(|k| k.netdrivers.clone()).unwrap_or_default(),
            defaults: k.is_none_or(|k| k.netdrivers_defaults),
            rootlimit: k
                .map(|k| k.rootlimit.clone())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "80%".into()),
            addkcmdline: k.map(|k| k.addkcmdline.clone()).unwrap_or_default(),
            arch: spec.osimage.arch.clone(),
            rootimg_name: format!("rootimg.cpio.{}", spec.pack.compress.suffix()),
            rootimgdir: spec.image.rootimgdir.clone(),
        }
    }

    /// The kernel command line a node boots with (without `initrd=`).
    pub fn cmdline(&self, url_base: &str) -> String {
        let mut s = format!(
            "imgurl={url_base}/{} rootlimit={} console=tty0 console=ttyS0,115200",
            self.rootimg_name, self.rootlimit
        );
        if !self.addkcmdline.is_empty() {
            s.push(' ');
            s.push_str(&self.addkcmdline);
        }
        s
    }

    fn wanted(&self) -> Vec<String> {
        let mut w: Vec<String> = Vec::new();
        if self.defaults {
            w.extend(default_netdrivers(&self.arch).iter().map(|s| s.to_string()));
        }
        for d in ["virtio_pci", "virtio_blk"] {
            if !w.iter().any(|x| x == d) {
                w.push(d.to_string());
            }
        }
        w
    }
}

impl Step for Initrd {
    fn kind(&self) -> NodeKind {
        NodeKind::Initrd
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("netdrivers", self.netdrivers.join(","))
            .option("netdrivers_defaults", self.defaults)
            .option("rootlimit", &self.rootlimit)
            .option("arch", &self.arch)
            .option(
                "init",
                crate::hash::Hash::of(crate::boot::INIT_SCRIPT.as_bytes()),
            );
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let kver = parents
            .first()
            .and_then(|p| p.meta.get("kernel_version"))
            .cloned()
            .ok_or_else(|| Error::Step {
                node: ctx.node.into(),
                message: "internal: kernel parent has no version".into(),
            })?;
        let m = super::util::parent_tree(ctx, &parents[1..])?;
        let work = super::postinstall::work_dir(ctx.scratch, 1 << 30)?;
        let root = work.path().join("root");
        let tool_dirs = [
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
        super::util::materialize_subset(
            ctx.store,
            &m,
            &root,
            |p| match super::util::modules_path(p) {
                Some((v, _)) => v == kver,
                None => tool_dirs.iter().any(|d| p.starts_with(d)),
            },
        )?;
        let k = select_kernel(&root, Some(&kver), None)?;
        let drivers = module_closure(&k.modules_dir, &self.wanted(), &self.netdrivers)?;
        if !drivers.missing_default.is_empty() {
            tracing::warn!(
                "default drivers not in kernel {kver}: {}",
                drivers.missing_default.join(" ")
            );
        }
        let nmods = drivers.modules.len();
        let opts = InitrdOptions {
            rootlimit: self.rootlimit.clone(),
            drivers,
            static_zstd: None,
            extra_binaries: Vec::new(),
        };
        let staging = work.path().join("initrd");
        crate::boot::stage_initrd(&root, &k, &opts, &staging)?;
        let out_path = work.path().join(INITRD);
        pack_initrd(&staging, &out_path, 12)?;
        let (blob, size) = ctx.store.put_file(&out_path)?;
        let mut out = Output::default();
        out.artifacts.insert(INITRD.into(), blob);
        out.meta.insert("kernel_version".into(), kver);
        out.meta.insert("modules".into(), nmods.to_string());
        out.meta.insert("bytes".into(), size.to_string());
        Ok(out)
    }

    fn export(&self, store: &Store, out: &Output) -> Result<(), Error> {
        if let Some(h) = out.artifacts.get(INITRD) {
            super::util::export_blob(store, h, &self.rootimgdir.join(INITRD))?;
        }
        let ipxe = format!(
            "#!ipxe\n# written by osimage: set image-url to the HTTP URL of this directory first\n\
             isset ${{image-url}} || set image-url http://${{next-server}}{}\n\
             kernel ${{image-url}}/kernel {}\ninitrd ${{image-url}}/{INITRD}\nboot\n",
            self.rootimgdir.display(),
            self.cmdline("${image-url}")
        );
        let p = self.rootimgdir.join("netboot.ipxe");
        if std::fs::read_to_string(&p).ok().as_deref() != Some(ipxe.as_str()) {
            std::fs::write(&p, ipxe).map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    }
}

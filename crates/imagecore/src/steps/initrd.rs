//! `initrd`: the stateless initrd — our `/init` (see `boot/init/init.sh`), the image's busybox
//! and zstd with their shared-library closure, and the kernel modules of the driver set
//! (`netdrivers`, plus the per-arch defaults when `netdrivers_defaults`, plus virtio_pci and
//! virtio_blk to read a root image from disk) in load order. Packed as newc + zstd.
//!
//! Export: `rootimgdir/initrd-stateless.zst`, and the netboot stanzas `netboot.ipxe`,
//! `netboot.pxelinux` and `netboot.grub.cfg`, whose kernel command line carries xCAT's `imgurl=`
//! (from `osimage build --image-url URL`; see [`Initrd::stanzas`]).

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

    /// The netboot stanzas: `netboot.ipxe`, `netboot.pxelinux` and `netboot.grub.cfg`. With
    /// `image_url` (`osimage build --image-url`) the URLs are complete; without it iPXE uses
    /// its `image-url` variable and the others a `@IMAGE_URL@` placeholder to replace.
    pub fn stanzas(&self, image_url: Option<&str>) -> Vec<(&'static str, String)> {
        let base = image_url.map(|u| u.trim_end_matches('/').to_string());
        let ipxe_base = base.clone().unwrap_or_else(|| "${image-url}".into());
        let ipxe = format!(
            "#!ipxe\n# written by osimage for {dir}\n{set}kernel {ipxe_base}/kernel {cmd}\ninitrd {ipxe_base}/{INITRD}\nboot\n",
            dir = self.rootimgdir.display(),
            set = if base.is_some() {
                String::new()
            } else {
                "# set image-url to the HTTP URL that serves this directory\n".to_string()
            },
            cmd = self.cmdline(&ipxe_base),
        );
        let b = base.unwrap_or_else(|| "@IMAGE_URL@".into());
        let label = self
            .rootimgdir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "osimage".into());
        let pxe = format!(
            "LABEL {label}\n  KERNEL {b}/kernel\n  INITRD {b}/{INITRD}\n  APPEND {}\n",
            self.cmdline(&b)
        );
        let grub = format!(
            "menuentry '{label}' {{\n  linux {b}/kernel {}\n  initrd {b}/{INITRD}\n}}\n",
            self.cmdline(&b)
        );
        vec![
            ("netboot.ipxe", ipxe),
            ("netboot.pxelinux", pxe),
            ("netboot.grub.cfg", grub),
        ]
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
        let work = super::util::work_dir(ctx.scratch, 1 << 30)?;
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

    fn export(
        &self,
        store: &Store,
        out: &Output,
        opts: &crate::graph::step::ExportOptions,
    ) -> Result<(), Error> {
        if let Some(h) = out.artifacts.get(INITRD) {
            super::util::export_blob(store, h, &self.rootimgdir.join(INITRD))?;
        }
        for (name, text) in self.stanzas(opts.image_url.as_deref()) {
            let p = self.rootimgdir.join(name);
            if std::fs::read_to_string(&p).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
            }
        }
        Ok(())
    }
}

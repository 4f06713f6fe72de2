//! The stateless initrd, in three nodes:
//!
//! - `initrd-tree` ([`super::initrd_tree`]): a manifest filter keeping the kernel's modules and
//!   the program/library directories, so changes elsewhere in the image stop there.
//! - `initrd-inputs` ([`InitrdInputs`]): from that tree (and the kerneldir kernel's
//!   tree, and the `driverupdatesrc` `rpm:` packages applied on top) it picks what the initrd is
//!   made of — the kernel modules of the driver set (`netdrivers`, plus the per-arch defaults
//!   when `netdrivers_defaults`, plus virtio_pci and virtio_blk to read a root image from disk)
//!   with their firmware, and busybox and zstd with their shared-library closure — and outputs
//!   a small tree of just those (manifest entries: the blobs are shared, nothing is copied).
//! - `initrd` ([`Initrd`]): our `/init` (see `boot/init/init.sh`) + that tree, modules in load
//!   order, packed as newc + zstd. Its only tree parent is the selection, so (keys follow
//!   parents' output digests) a change elsewhere in the image (a postinstall line) re-runs the
//!   cheap `initrd-tree` only, and a change in a library the tools don't use re-runs
//!   `initrd-inputs` but leaves `initrd` cached.
//!
//! Export: `rootimgdir/initrd-stateless.zst`, and the netboot stanzas `netboot.ipxe`,
//! `netboot.pxelinux` and `netboot.grub.cfg`, whose kernel command line carries xCAT's `imgurl=`
//! (from `osimage build --image-url URL`; see [`Initrd::stanzas`]).

use std::path::{Path, PathBuf};

#[path = "initrd_select.rs"]
pub(crate) mod select;

use crate::boot::{InitrdOptions, KernelChoice, default_netdrivers, module_closure, pack_initrd};
use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::Spec;
use crate::store::Store;

/// The artifact name of the initrd.
pub const INITRD: &str = "initrd-stateless.zst";

/// The initrd step.
pub struct Initrd {
    rootlimit: String,
    addkcmdline: String,
    rootimg_name: String,
    rootimgdir: PathBuf,
}

impl Initrd {
    /// From the spec's `[kernel]`.
    pub fn new(spec: &Spec) -> Initrd {
        let k = spec.kernel.as_ref();
        Initrd {
            rootlimit: k
                .map(|k| k.rootlimit.clone())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "80%".into()),
            addkcmdline: k.map(|k| k.addkcmdline.clone()).unwrap_or_default(),
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
}

impl Step for Initrd {
    fn kind(&self) -> NodeKind {
        NodeKind::Initrd
    }

    fn version(&self) -> u32 {
        2
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("rootlimit", &self.rootlimit).option(
            "init",
            crate::hash::Hash::of(crate::boot::INIT_SCRIPT.as_bytes()),
        );
        Ok(i)
    }

    /// The only parent is `initrd-inputs`: its small tree holds everything this node reads.
    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let sel = parents
            .first()
            .ok_or_else(|| internal(ctx, "no initrd-inputs parent"))?;
        let kver = sel
            .meta
            .get("kernel_version")
            .cloned()
            .ok_or_else(|| internal(ctx, "initrd-inputs has no kernel version"))?;
        let m = super::util::parent_tree(ctx, parents)?;
        let work = super::util::work_dir(ctx.scratch, m.content_size())?;
        let root = work.path().join("root");
        crate::tree::materialize(ctx.store, &m, &root)?;
        let k = kernel_choice(&root, &kver);
        // the load order and firmware the selection computed, on the same relative paths
        let listed = |key: &str| -> Vec<PathBuf> {
            sel.meta
                .get(key)
                .map(|l| l.lines().map(|r| root.join(r)).collect())
                .unwrap_or_default()
        };
        let drivers = crate::boot::DriverSet {
            modules: listed("module_list"),
            missing_default: Vec::new(),
            firmware: listed("firmware_list"),
        };
        if let Some(p) = drivers
            .modules
            .iter()
            .chain(&drivers.firmware)
            .find(|p| !p.exists())
        {
            return Err(internal(
                ctx,
                &format!("{} listed but not in the selection", p.display()),
            ));
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

/// The `initrd-inputs` step: the subset of the image the initrd is built from.
pub struct InitrdInputs {
    netdrivers: Vec<String>,
    defaults: bool,
    arch: String,
    /// `driverupdatesrc` entries: (`rpm`/`dud`, path, origin for messages).
    updates: Vec<(String, PathBuf, String)>,
}

impl InitrdInputs {
    /// From the spec's `[kernel]`.
    pub fn new(spec: &Spec) -> InitrdInputs {
        let k = spec.kernel.as_ref();
        let updates = k
            .map(|k| {
                k.driverupdatesrc
                    .iter()
                    .map(|l| {
                        let (kind, path) = match l.value.split_once(':') {
                            Some((p @ ("rpm" | "dud"), rest)) => (p.to_string(), rest.to_string()),
                            _ => ("rpm".to_string(), l.value.clone()),
                        };
                        (kind, PathBuf::from(path), l.origin.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        InitrdInputs {
            netdrivers: k.map(|k| k.netdrivers.clone()).unwrap_or_default(),
            defaults: k.is_none_or(|k| k.netdrivers_defaults),
            arch: spec.osimage.arch.clone(),
            updates,
        }
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

fn internal(ctx: &StepCtx<'_>, what: &str) -> Error {
    Error::Step {
        node: ctx.node.into(),
        message: format!("internal: {what}"),
    }
}

/// The kernel `kver` of a materialised root (its vmlinuz is not needed to build the initrd).
fn kernel_choice(root: &Path, kver: &str) -> KernelChoice {
    let modules_dir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| root.join(d).join(kver))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| root.join("lib/modules").join(kver));
    KernelChoice {
        version: kver.to_string(),
        vmlinuz: modules_dir.join("vmlinuz"),
        modules_dir,
    }
}

/// Root-relative paths, one per line (the selection's module load order and firmware, which
/// the initrd node uses as they are).
fn rel_lines(root: &Path, paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Step for InitrdInputs {
    fn kind(&self) -> NodeKind {
        NodeKind::InitrdInputs
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("netdrivers", self.netdrivers.join(","))
            .option("netdrivers_defaults", self.defaults)
            .option("arch", &self.arch);
        for (kind, path, origin) in &self.updates {
            if kind == "dud" {
                return Err(Error::NotImplemented(format!(
                    "dud: driver update disks in driverupdatesrc ({}, {origin}); use an rpm: driver package instead",
                    path.display()
                )));
            }
            i.file(format!("driver update {}", path.display()), path);
        }
        Ok(i)
    }

    /// Parents: the `kernel` node (version, and with kerneldir its unpacked tree), then the
    /// image tree.
    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let (kernel, tree) = match parents {
            [k, t, ..] => (*k, *t),
            _ => {
                return Err(internal(
                    ctx,
                    "initrd-inputs needs the kernel and tree parents",
                ));
            }
        };
        let kver = kernel
            .meta
            .get("kernel_version")
            .cloned()
            .ok_or_else(|| internal(ctx, "kernel parent has no version"))?;
        let mut m = super::util::parent_tree(ctx, &[tree])?;
        if let Some(kt) = kernel.tree {
            let km = ctx.store.get_manifest(&kt)?;
            select::overlay_kernel(&mut m, &km, &kver);
        }
        let work = super::util::work_dir(ctx.scratch, 1 << 30)?;
        if !self.updates.is_empty() {
            let mut unpacked = Vec::new();
            for (n, (_, rpm, _)) in self.updates.iter().enumerate() {
                let d = work.path().join(format!("driver-{n}"));
                crate::boot::unpack_rpms(&d, std::slice::from_ref(rpm))?;
                unpacked.push((rpm.clone(), d));
            }
            let placed = select::overlay_drivers(ctx.store, &mut m, &kver, &unpacked)?;
            tracing::info!("driver updates for {kver}: {}", placed.join(" "));
        }
        let root = work.path().join("root");
        let t0 = std::time::Instant::now();
        super::util::materialize_subset(ctx.store, &m, &root, |p| {
            super::initrd_tree::initrd_relevant(p, &kver)
        })?;
        let t1 = std::time::Instant::now();
        let k = kernel_choice(&root, &kver);
        let drivers = module_closure(&k.modules_dir, &self.wanted(), &self.netdrivers)?;
        let t2 = std::time::Instant::now();
        if !drivers.missing_default.is_empty() {
            tracing::warn!(
                "default drivers not in kernel {kver}: {}",
                drivers.missing_default.join(" ")
            );
        }
        let mut paths = crate::boot::initrd_root_paths(&root, &InitrdOptions::default())?;
        let builtin = k.modules_dir.join("modules.builtin");
        let mut wanted: Vec<PathBuf> = drivers.modules.clone();
        wanted.extend(drivers.firmware.iter().cloned());
        if builtin.is_file() {
            wanted.push(builtin);
        }
        for p in &wanted {
            let rel = p
                .strip_prefix(&root)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned();
            let (links, real) = crate::boot::resolve_in_root(&root, &format!("/{rel}"))
                .ok_or_else(|| internal(ctx, &format!("cannot resolve /{rel}")))?;
            paths.extend(links);
            paths.push(real);
        }
        let sel = select::subset(&m, &root, &paths)?;
        tracing::info!(
            "initrd-inputs: materialised in {:.2?}, module closure in {:.2?}, tools and subset in {:.2?}: {} entries",
            t1 - t0,
            t2 - t1,
            t2.elapsed(),
            sel.entries.len()
        );
        let mut out = super::util::tree_output(ctx.store, &sel)?;
        out.meta.insert("kernel_version".into(), kver);
        out.meta
            .insert("modules".into(), drivers.modules.len().to_string());
        out.meta
            .insert("module_list".into(), rel_lines(&root, &drivers.modules));
        if !drivers.firmware.is_empty() {
            out.meta
                .insert("firmware_list".into(), rel_lines(&root, &drivers.firmware));
        }
        if !drivers.missing_default.is_empty() {
            out.meta
                .insert("missing_default".into(), drivers.missing_default.join(" "));
        }
        Ok(out)
    }
}

//! `files`: the fixed files xCAT's genimage (`generic_post`) writes into every stateless image.
//!
//! What is written, and when:
//! - `etc/fstab`, always: devpts, `/dev/shm`, proc, sysfs, and the tmpfs root line
//!   `<profile>_<arch> / tmpfs rw[,size=<rootlimit>] 0 1`. Images without systemd (no
//!   `usr/lib/systemd/systemd`) also get `/tmp` and `/var/tmp` tmpfs lines (`size=10m`, xCAT's
//!   default), as xCAT writes them only for non-systemd images.
//! - `etc/sysconfig/network` (`NETWORKING=yes`), only when the image has `etc/sysconfig`
//!   (RHEL family), as xCAT's RH path does.
//! - `etc/sysconfig/network-scripts/ifcfg-<nodebootif>` (`ONBOOT=no BOOTPROTO=dhcp`) when
//!   `nodebootif` is set, and `ifcfg-<each otherifce>` (`ONBOOT=yes BOOTPROTO=dhcp`).
//! - `etc/resolv.conf`, a placeholder comment, only when the image has none (a symlink, e.g. to
//!   systemd-resolved, is left alone).
//!
//! All files are root-owned 0644 with the pack `source_date_epoch` as mtime, so the step is a
//! pure function of the tree and these options.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::Spec;
use crate::store::Store;
use crate::tree::{Entry, Kind, Manifest};

/// The files step.
pub struct Files {
    profile: String,
    arch: String,
    rootlimit: String,
    nodebootif: String,
    otherifce: Vec<String>,
    epoch: i64,
}

impl Files {
    /// From the spec.
    pub fn new(spec: &Spec) -> Files {
        Files {
            profile: spec.osimage.profile.clone(),
            arch: spec.osimage.arch.clone(),
            rootlimit: spec
                .kernel
                .as_ref()
                .map(|k| k.rootlimit.clone())
                .unwrap_or_default(),
            nodebootif: spec.image.nodebootif.clone(),
            otherifce: spec.image.otherifce.clone(),
            epoch: spec.pack.source_date_epoch,
        }
    }

    /// The fstab text for a tree.
    pub fn fstab(&self, systemd: bool) -> String {
        let mut root_opts = "rw".to_string();
        if !self.rootlimit.is_empty() {
            root_opts.push_str(&format!(",size={}", self.rootlimit));
        }
        let mut s = String::from("# written by osimage (xCAT genimage generic_post)\n");
        s.push_str("devpts  /dev/pts devpts   gid=5,mode=620 0 0\n");
        s.push_str("tmpfs   /dev/shm tmpfs    defaults       0 0\n");
        s.push_str("proc    /proc    proc     defaults       0 0\n");
        s.push_str("sysfs   /sys     sysfs    defaults       0 0\n");
        if !systemd {
            s.push_str("tmpfs   /tmp     tmpfs    defaults,size=10m 0 2\n");
            s.push_str("tmpfs   /var/tmp tmpfs    defaults,size=10m 0 2\n");
        }
        s.push_str(&format!(
            "{}_{} / tmpfs {root_opts} 0 1\n",
            self.profile, self.arch
        ));
        s
    }

    fn put(&self, store: &Store, m: &mut Manifest, path: &str, text: &str) -> Result<(), Error> {
        let blob = store.put_bytes(text.as_bytes())?;
        m.insert(Entry {
            path: path.to_string(),
            kind: Kind::File {
                blob,
                size: text.len() as u64,
                link: None,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: self.epoch,
            xattrs: BTreeMap::new(),
        });
        Ok(())
    }

    /// Apply to a manifest (the step's whole work).
    pub fn apply(&self, store: &Store, m: &mut Manifest) -> Result<(), Error> {
        let systemd =
            m.get("usr/lib/systemd/systemd").is_some() || m.get("lib/systemd/systemd").is_some();
        self.put(store, m, "etc/fstab", &self.fstab(systemd))?;
        if m.get("etc/sysconfig").is_some_and(Entry::is_dir) {
            self.put(store, m, "etc/sysconfig/network", "NETWORKING=yes\n")?;
            let dir = "etc/sysconfig/network-scripts";
            if !self.nodebootif.is_empty() {
                let t = format!("DEVICE={0}\nBOOTPROTO=dhcp\nONBOOT=no\n", self.nodebootif);
                self.put(store, m, &format!("{dir}/ifcfg-{}", self.nodebootif), &t)?;
            }
            for i in &self.otherifce {
                let t = format!("DEVICE={i}\nBOOTPROTO=dhcp\nONBOOT=yes\n");
                self.put(store, m, &format!("{dir}/ifcfg-{i}"), &t)?;
            }
        }
        if m.get("etc/resolv.conf").is_none() {
            self.put(
                store,
                m,
                "etc/resolv.conf",
                "# placeholder written by osimage; the node's DHCP client fills it at boot\n",
            )?;
        }
        Ok(())
    }
}

impl Step for Files {
    fn kind(&self) -> NodeKind {
        NodeKind::Files
    }

    fn version(&self) -> u32 {
        // 2: a kerneldir kernel is installed into the image
        2
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("profile", &self.profile)
            .option("arch", &self.arch)
            .option("rootlimit", &self.rootlimit)
            .option("nodebootif", &self.nodebootif)
            .option("otherifce", self.otherifce.join(","))
            .option("source_date_epoch", self.epoch);
        Ok(i)
    }

    /// Parents: the tree, then (with `kerneldir`) the kernel node, whose unpacked kernel
    /// packages are installed into the image as xCAT's genimage does: its module tree replaces
    /// the image's for that version, and its `boot/` files are added.
    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let mut m = super::util::parent_tree(ctx, &parents[..parents.len().min(1)])?;
        if let Some(k) = parents.get(1)
            && let (Some(kt), Some(kver)) = (k.tree, k.meta.get("kernel_version"))
        {
            let km = ctx.store.get_manifest(&kt)?;
            super::initrd::select::overlay_kernel(&mut m, &km, kver);
            for e in km.entries.iter().filter(|e| e.path.starts_with("boot/")) {
                let mut e = e.clone();
                e.path = super::initrd::select::canonical(&m, &e.path);
                m.insert(e);
            }
        }
        self.apply(ctx.store, &mut m)?;
        super::util::tree_output(ctx.store, &m)
    }
}

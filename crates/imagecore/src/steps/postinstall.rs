//! `postinstall`: run the image's postinstall scripts with xCAT's calling convention:
//! `script <rootimg> <osvers> <arch> <profile> args…`, with `IMG_NAME IMG_ARCH IMG_OSVER
//! IMG_KERNELVERSION IMG_PROFILE IMG_PKGLIST IMG_PKGDIR IMG_OTHERPKGLIST IMG_OTHERPKGDIR
//! IMG_ROOTIMGDIR` (each only when non-empty, as xCAT) and the spec's `environvar` exported.
//!
//! Scripts run not chrooted (as in xCAT), in their own process group and — when root — in a
//! private mount namespace, so nothing they mount can leak to the host (xCAT #1767, #1936).
//! A non-zero exit or a timeout fails the build with the tail of the script's stderr, and
//! nothing is cached.
//!
//! Where the scripts' `$1` points: as root, an overlayfs (mounted inside each script's private
//! namespace) over a persistent read-only checkout of the parent tree
//! ([`crate::tree::overlay`]): the parent tree is materialised once and reused by every later
//! run, and afterwards only the upper layer — what the scripts changed — is scanned.
//! Otherwise (not root, overlayfs unavailable, or `OSIMAGE_POSTINSTALL_OVERLAY=0`): a fresh
//! materialised copy (tmpfs when it fits), re-scanned afterwards, re-hashing only changed files.
//! Either way, mtimes later than `source_date_epoch` are clamped to it.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::lists::PostinstallEntry;
use crate::spec::{PkgDir, Spec};
use crate::tree::Manifest;

/// Default time limit for one script; `OSIMAGE_POSTINSTALL_TIMEOUT` (seconds) overrides it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The postinstall step.
pub struct Postinstall {
    scripts: Vec<PostinstallEntry>,
    env: BTreeMap<String, String>,
    osvers: String,
    arch: String,
    profile: String,
    /// `source_date_epoch`: mtimes the scripts leave later than this are clamped to it.
    epoch: i64,
}

fn join_paths<'a>(it: impl Iterator<Item = &'a Path>) -> String {
    it.map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn pkgdir_str(d: &PkgDir) -> String {
    match d {
        PkgDir::Path(p) => p.display().to_string(),
        PkgDir::Media(m) => format!("media:{m}"),
        PkgDir::Url(u) => u.clone(),
    }
}

impl Postinstall {
    /// From the spec's `[image] postinstall`.
    pub fn new(spec: &Spec) -> Postinstall {
        let o = &spec.osimage;
        let mut env = BTreeMap::new();
        env.extend(o.environvar.clone());
        let p = spec.packages.as_ref();
        let r = spec.repos.as_ref();
        let vars = [
            ("IMG_NAME", o.name.clone()),
            ("IMG_ARCH", o.arch.clone()),
            ("IMG_OSVER", o.osvers.clone()),
            ("IMG_PROFILE", o.profile.clone()),
            (
                "IMG_PKGLIST",
                p.map(|p| join_paths(p.pkglist.iter().map(|l| l.value.as_path())))
                    .unwrap_or_default(),
            ),
            (
                "IMG_OTHERPKGLIST",
                p.map(|p| join_paths(p.otherpkglist.iter().map(|l| l.value.as_path())))
                    .unwrap_or_default(),
            ),
            (
                "IMG_PKGDIR",
                r.map(|r| {
                    r.pkgdir
                        .iter()
                        .map(|d| pkgdir_str(&d.value))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
            ),
            (
                "IMG_OTHERPKGDIR",
                r.and_then(|r| r.otherpkgdir.as_ref())
                    .map(|d| pkgdir_str(&d.value))
                    .unwrap_or_default(),
            ),
        ];
        for (k, v) in vars {
            if !v.is_empty() {
                env.insert(k.to_string(), v);
            }
        }
        Postinstall {
            scripts: spec
                .image
                .postinstall
                .iter()
                .map(|l| l.value.clone())
                .collect(),
            env,
            osvers: o.osvers.clone(),
            arch: o.arch.clone(),
            profile: o.profile.clone(),
            epoch: spec.pack.source_date_epoch,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_script(
        &self,
        s: &PostinstallEntry,
        root: &Path,
        env: &BTreeMap<String, String>,
        logs: &Path,
        timeout: Duration,
        overlay: Option<&CString>,
    ) -> Result<(), Error> {
        let name = s.script.display().to_string();
        let fail = |message: String| Error::Step {
            node: "postinstall".into(),
            message,
        };
        let out_path = logs.join("stdout");
        let err_path = logs.join("stderr");
        let out = std::fs::File::create(&out_path).map_err(|e| Error::io(&out_path, e))?;
        let err = std::fs::File::create(&err_path).map_err(|e| Error::io(&err_path, e))?;
        let mut cmd = Command::new(&s.script);
        cmd.arg(root)
            .arg(&self.osvers)
            .arg(&self.arch)
            .arg(&self.profile)
            .args(&s.args)
            .envs(env)
            .env("IMG_ROOTIMGDIR", root)
            .current_dir(s.script.parent().unwrap_or(Path::new("/")))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        isolate(&mut cmd, root, overlay)?;
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("{name}: cannot run it: {e} (is it executable?)")))?;
        let pgid = child.id() as i32;
        let t0 = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if t0.elapsed() > timeout => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(fail(format!("{name}: wait failed: {e}"))),
            }
        };
        // Whatever the script left running in its process group goes too.
        kill_group(pgid);
        let _ = child.wait();
        let tail = std::fs::read_to_string(&err_path)
            .map(|s| {
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(20)..].join("\n")
            })
            .unwrap_or_default();
        match status {
            None => Err(fail(format!(
                "{name} timed out after {}s (set OSIMAGE_POSTINSTALL_TIMEOUT to allow longer); stderr tail:\n{tail}",
                timeout.as_secs()
            ))),
            Some(st) if !st.success() => {
                Err(fail(format!("{name} failed ({st}); stderr tail:\n{tail}")))
            }
            Some(_) => Ok(()),
        }
    }
}

/// Run `cmd` in its own session and — when root — in a private mount namespace; with `overlay`
/// (mount data from [`crate::tree::overlay::overlay_options`]), mount that overlayfs at `root`
/// inside the namespace first.
fn isolate(cmd: &mut Command, root: &Path, overlay: Option<&CString>) -> Result<(), Error> {
    let private_ns = rustix::process::geteuid().is_root();
    let mount = match overlay {
        Some(data) => Some((
            CString::new(root.as_os_str().as_encoded_bytes()).map_err(|_| Error::Step {
                node: "postinstall".into(),
                message: format!("{}: path contains a NUL byte", root.display()),
            })?,
            data.clone(),
        )),
        None => None,
    };
    // SAFETY: only async-signal-safe syscalls run between fork and exec (the strings above are
    // allocated before the fork).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::setsid().map_err(std::io::Error::from)?;
            if private_ns {
                rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)
                    .map_err(std::io::Error::from)?;
                rustix::mount::mount_change(
                    "/",
                    rustix::mount::MountPropagationFlags::PRIVATE
                        | rustix::mount::MountPropagationFlags::REC,
                )
                .map_err(std::io::Error::from)?;
                if let Some((target, data)) = &mount {
                    rustix::mount::mount(
                        c"overlay",
                        target.as_c_str(),
                        c"overlay",
                        rustix::mount::MountFlags::empty(),
                        data.as_c_str(),
                    )
                    .map_err(std::io::Error::from)?;
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// Whether the overlay described by `data` can be mounted at `root` (tried in a throwaway
/// process's private namespace).
fn overlay_works(root: &Path, data: &CString) -> bool {
    let mut cmd = Command::new("true");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if isolate(&mut cmd, root, Some(data)).is_err() {
        return false;
    }
    match cmd.status() {
        Ok(st) => st.success(),
        Err(e) => {
            tracing::info!("overlayfs not usable for postinstall ({e}); materialising a copy");
            false
        }
    }
}

fn kill_group(pgid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

impl Step for Postinstall {
    fn kind(&self) -> NodeKind {
        NodeKind::Postinstall
    }

    fn version(&self) -> u32 {
        // 2: mtimes clamped to source_date_epoch
        2
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        for (k, v) in &self.env {
            i.option(&format!("env.{k}"), v);
        }
        i.option("osvers", &self.osvers)
            .option("arch", &self.arch)
            .option("profile", &self.profile)
            .option("source_date_epoch", self.epoch);
        for (n, s) in self.scripts.iter().enumerate() {
            let short = s
                .script
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            i.option(&format!("script{n}.args"), shell_words::join(&s.args));
            i.file(format!("postinstall script {short}"), &s.script);
        }
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let m = super::util::parent_tree(ctx, parents)?;
        let mut env = self.env.clone();
        if let Some(kv) = parents.iter().find_map(|p| p.meta.get("kernel_version")) {
            env.insert("IMG_KERNELVERSION".into(), kv.clone());
        }
        let timeout = std::env::var("OSIMAGE_POSTINSTALL_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        let mut new = match self.run_on_overlay(ctx, &m, &env, timeout)? {
            Some(new) => new,
            None => self.run_on_copy(ctx, &m, &env, timeout)?,
        };
        new.clamp_mtimes(self.epoch);
        super::util::tree_output(ctx.store, &new)
    }
}

impl Postinstall {
    /// The scripts on an overlay over the parent's checkout; `None` when overlays can't be used.
    fn run_on_overlay(
        &self,
        ctx: &StepCtx<'_>,
        m: &Manifest,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Option<Manifest>, Error> {
        if !rustix::process::geteuid().is_root()
            || std::env::var("OSIMAGE_POSTINSTALL_OVERLAY").as_deref() == Ok("0")
        {
            return Ok(None);
        }
        // absolute: scripts run in their own directory, and overlayfs resolves the mount data
        // relative to the mounting process's working directory
        let scratch = std::path::absolute(ctx.scratch).map_err(|e| Error::io(ctx.scratch, e))?;
        let [upper, work, merged] = ["upper", "work", "rootimg"].map(|d| scratch.join(d));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d).map_err(|e| Error::io(d, e))?;
        }
        let lower = crate::tree::overlay::checkout(ctx.store, m)?;
        let lower = std::path::absolute(&lower).map_err(|e| Error::io(&lower, e))?;
        use crate::tree::overlay::{clear_volatile, overlay_options};
        // volatile where the kernel has it (no sync of the upper filesystem at each unmount)
        let mut data = None;
        for volatile in [true, false] {
            let Some(d) = overlay_options(&lower, &upper, &work, volatile) else {
                return Ok(None);
            };
            clear_volatile(&work);
            if overlay_works(&merged, &d) {
                data = Some(d);
                break;
            }
        }
        let Some(data) = data else {
            return Ok(None);
        };
        for s in &self.scripts {
            tracing::info!(script = %s.script.display(), "postinstall (overlay)");
            clear_volatile(&work);
            self.run_script(s, &merged, env, ctx.scratch, timeout, Some(&data))?;
        }
        let changed = crate::tree::scan(ctx.store, &upper, None)?;
        Ok(Some(crate::tree::overlay::apply_upper(m, &changed)))
    }

    /// The scripts on a freshly materialised copy of the parent tree.
    fn run_on_copy(
        &self,
        ctx: &StepCtx<'_>,
        m: &Manifest,
        env: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Manifest, Error> {
        let work = super::util::work_dir(ctx.scratch, m.content_size())?;
        let root = std::path::absolute(work.path().join("rootimg"))
            .map_err(|e| Error::io(work.path(), e))?;
        std::fs::create_dir(&root).map_err(|e| Error::io(&root, e))?;
        let stat = crate::tree::materialize(ctx.store, m, &root)?;
        for s in &self.scripts {
            tracing::info!(script = %s.script.display(), "postinstall");
            self.run_script(s, &root, env, work.path(), timeout, None)?;
        }
        Ok(crate::tree::scan(ctx.store, &root, Some(&stat))?)
    }
}

//! `postinstall`: run the image's postinstall scripts with xCAT's calling convention:
//! `script <rootimg> <osvers> <arch> <profile> args…`, with `IMG_NAME IMG_ARCH IMG_OSVER
//! IMG_KERNELVERSION IMG_PROFILE IMG_PKGLIST IMG_PKGDIR IMG_OTHERPKGLIST IMG_OTHERPKGDIR
//! IMG_ROOTIMGDIR` (each only when non-empty, as xCAT) and the spec's `environvar` exported.
//!
//! Scripts run on a materialised copy of the parent tree (on tmpfs when it fits, never on the
//! cache's blobs), not chrooted (as in xCAT), in their own process group and — when root — in a
//! private mount namespace, so nothing they mount can leak to the host (xCAT #1767, #1936).
//! A non-zero exit or a timeout fails the build with the tail of the script's stderr, and
//! nothing is cached. The changed tree is re-scanned, re-hashing only files that changed.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::lists::PostinstallEntry;
use crate::spec::{PkgDir, Spec};

/// Default time limit for one script; `OSIMAGE_POSTINSTALL_TIMEOUT` (seconds) overrides it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The postinstall step.
pub struct Postinstall {
    scripts: Vec<PostinstallEntry>,
    env: BTreeMap<String, String>,
    osvers: String,
    arch: String,
    profile: String,
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
        }
    }

    fn run_script(
        &self,
        s: &PostinstallEntry,
        root: &Path,
        env: &BTreeMap<String, String>,
        logs: &Path,
        timeout: Duration,
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
        let private_ns = rustix::process::geteuid().is_root();
        // SAFETY: only async-signal-safe syscalls run between fork and exec.
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
                }
                Ok(())
            });
        }
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
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        for (k, v) in &self.env {
            i.option(&format!("env.{k}"), v);
        }
        i.option("osvers", &self.osvers)
            .option("arch", &self.arch)
            .option("profile", &self.profile);
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
        let work = super::util::work_dir(ctx.scratch, m.content_size())?;
        let root = work.path().join("rootimg");
        std::fs::create_dir(&root).map_err(|e| Error::io(&root, e))?;
        let stat = crate::tree::materialize(ctx.store, &m, &root)?;
        let mut env = self.env.clone();
        if let Some(kv) = parents.iter().find_map(|p| p.meta.get("kernel_version")) {
            env.insert("IMG_KERNELVERSION".into(), kv.clone());
        }
        let timeout = std::env::var("OSIMAGE_POSTINSTALL_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        for s in &self.scripts {
            tracing::info!(script = %s.script.display(), "postinstall");
            self.run_script(s, &root, &env, work.path(), timeout)?;
        }
        let new = crate::tree::scan(ctx.store, &root, Some(&stat))?;
        super::util::tree_output(ctx.store, &new)
    }
}

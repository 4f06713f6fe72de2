//! Running package scriptlets chrooted into the image, in a private mount namespace with a
//! minimal /proc, /sys and /dev (a tmpfs with a few device nodes, never the host's /dev).
//!
//! The child process unshares its mount namespace, makes `/` recursively private and mounts
//! inside the root; the mounts die with the namespace when the child exits, on every path, so
//! nothing leaks to the host. Mount points missing from the image are created for the run and
//! removed afterwards.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::fs::{FileType, Mode};
use rustix::mount::{MountFlags, MountPropagationFlags};

use super::InstallError;

/// A scriptlet: which one, interpreter + args, body.
#[derive(Debug, Clone)]
pub struct Script {
    /// "%pre", "%post", "%filetriggerin", …
    pub tag: String,
    /// Interpreter and its arguments (`/bin/sh`, or `<lua>`).
    pub prog: Vec<String>,
    /// Script text (may be empty when only a program runs, e.g. `-p /sbin/ldconfig`).
    pub body: String,
}

impl Script {
    /// True for an embedded Lua scriptlet.
    pub fn is_lua(&self) -> bool {
        self.prog.first().map(|p| p == "<lua>").unwrap_or(false)
    }
}

fn cstr(p: &Path) -> CString {
    // Paths come from our own root path; an interior NUL cannot occur in a real path.
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

const DEV_NODES: [(&str, u32, u32, u32); 7] = [
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("tty", 5, 0, 0o666),
    ("console", 5, 1, 0o600),
];

/// Run `script` of package `nevra` inside `root` with the positional `args` ($1, $2…) and
/// optional `stdin` text (file-trigger path lists). `scratch` is a directory inside the root
/// (root-relative) where the script file can be written. Returns Ok(Err(msg)) when the script
/// ran and failed, so callers decide whether that is fatal (`%pre`) or a warning (`%post`).
pub fn run(
    root: &Path,
    scratch_rel: &str,
    nevra: &str,
    script: &Script,
    args: &[String],
    stdin: Option<&str>,
) -> Result<Result<(), String>, InstallError> {
    let root = root.canonicalize().map_err(|source| InstallError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if script.is_lua() {
        let Some(rpm) = super::lua::image_rpm(&root) else {
            return Err(super::lua::no_rpm(nevra, &script.tag));
        };
        let (argv, files) =
            super::lua::prepare(&root, scratch_rel, rpm, script, args, stdin, &name())?;
        let r = finish(&root, &argv, None);
        for f in files {
            let _ = std::fs::remove_file(f);
        }
        return r;
    }
    let mut argv: Vec<String> = if script.prog.is_empty() {
        vec!["/bin/sh".into()]
    } else {
        script.prog.clone()
    };
    if !script.body.is_empty() {
        let name = name();
        let host = root.join(scratch_rel).join(&name);
        std::fs::write(&host, &script.body).map_err(|source| InstallError::Io {
            path: host.clone(),
            source,
        })?;
        argv.push(format!("/{scratch_rel}/{name}"));
    }
    argv.extend(args.iter().cloned());
    // The path list is fed from a file, not a pipe: a trigger that does not read it must not
    // take a SIGPIPE to us (the CLI keeps the default SIGPIPE action), nor block on a full
    // pipe.
    let input = match stdin {
        Some(text) => {
            let host = root.join(scratch_rel).join(format!("{}.in", name()));
            std::fs::write(&host, text).map_err(|source| InstallError::Io {
                path: host.clone(),
                source,
            })?;
            Some(host)
        }
        None => None,
    };
    let r = finish(&root, &argv, input.as_deref());
    if let Some(f) = input {
        let _ = std::fs::remove_file(f);
    }
    r
}

/// A unique script file name.
fn name() -> String {
    format!(
        "script-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Run `argv` chrooted into `root` (canonical) and turn its exit into the scriptlet result.
fn finish(
    root: &Path,
    argv: &[String],
    stdin: Option<&Path>,
) -> Result<Result<(), String>, InstallError> {
    // Mount points: create missing ones for this run, remove them afterwards.
    let mut made = Vec::new();
    for d in ["proc", "sys", "dev"] {
        let p = root.join(d);
        if std::fs::symlink_metadata(&p).is_err() {
            std::fs::create_dir(&p).map_err(|source| InstallError::Io {
                path: p.clone(),
                source,
            })?;
            made.push(p);
        }
    }
    let result = spawn(root, argv, stdin);
    for p in made {
        let _ = std::fs::remove_dir(&p);
    }
    let out = result.map_err(|source| InstallError::Io {
        path: PathBuf::from(&argv[0]),
        source,
    })?;
    if out.status.success() {
        Ok(Ok(()))
    } else {
        let mut msg = format!("exit status {}", out.status);
        let text = String::from_utf8_lossy(&out.stderr);
        let text = text.trim();
        if !text.is_empty() {
            msg.push_str(": ");
            msg.push_str(&text.chars().take(2000).collect::<String>());
        }
        Ok(Err(msg))
    }
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn spawn(
    root: &Path,
    argv: &[String],
    stdin: Option<&Path>,
) -> std::io::Result<std::process::Output> {
    let c_root = cstr(root);
    let c_proc = cstr(&root.join("proc"));
    let c_sys = cstr(&root.join("sys"));
    let c_dev = cstr(&root.join("dev"));
    let nodes: Vec<(CString, u32, u32, u32)> = DEV_NODES
        .iter()
        .map(|(n, a, b, m)| (cstr(&root.join("dev").join(n)), *a, *b, *m))
        .collect();
    let c_slash = CString::new("/").unwrap_or_default();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/root")
        .env("LANG", "C")
        .env("RPM_INSTALL_PREFIX", "/")
        .stdin(match stdin {
            Some(f) => Stdio::from(std::fs::File::open(f)?),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure only performs raw syscalls on pre-built C strings (no allocation,
    // no locks), which is what is allowed between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)?;
            rustix::mount::mount_change(
                c_slash.as_c_str(),
                MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
            )?;
            let nosuid = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
            rustix::mount::mount(c"proc", c_proc.as_c_str(), c"proc", nosuid, None)?;
            rustix::mount::mount(
                c"sysfs",
                c_sys.as_c_str(),
                c"sysfs",
                nosuid | MountFlags::RDONLY,
                None,
            )?;
            rustix::mount::mount(
                c"tmpfs",
                c_dev.as_c_str(),
                c"tmpfs",
                MountFlags::NOSUID | MountFlags::NOEXEC,
                Some(c"mode=0755,size=64k"),
            )?;
            for (p, maj, min, mode) in &nodes {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    p.as_c_str(),
                    FileType::CharacterDevice,
                    Mode::from_raw_mode(*mode),
                    rustix::fs::makedev(*maj, *min),
                )?;
                rustix::fs::chmodat(
                    rustix::fs::CWD,
                    p.as_c_str(),
                    Mode::from_raw_mode(*mode),
                    rustix::fs::AtFlags::empty(),
                )?;
            }
            rustix::process::chroot(c_root.as_c_str())?;
            rustix::process::chdir(c"/")?;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    child.wait_with_output()
}

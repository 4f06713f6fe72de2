//! Locating and running the external tools the tests compare against.

use std::path::PathBuf;
use std::process::Command;

/// The path of the `osimage` binary built for this test run.
pub fn osimage_bin() -> PathBuf {
    // tests/ is a workspace member; the binary sits in the shared target dir.
    let mut p = std::env::current_exe().expect("test exe path");
    p.pop(); // deps
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("osimage")
}

/// True when `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True when running as root (uid 0).
/// `osimage install --nodeps --dbpath /var/lib/rpm --root <root> <args…>` (the rpmdb where rpm
/// on this host looks for it), run to completion.
pub fn osimage_install<I, A>(root: &std::path::Path, args: I) -> std::process::Output
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    std::process::Command::new(osimage_bin())
        .args(["install", "--nodeps", "--dbpath", "/var/lib/rpm", "--root"])
        .arg(root)
        .args(args)
        .output()
        .expect("running osimage install")
}

pub fn is_root() -> bool {
    // SAFETY-free: read our own uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Skip (return early) from a test with a clear message when `cond` is false.
#[macro_export]
macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            eprintln!("SKIPPED: {}", $why);
            return;
        }
    };
}

/// What a test needs: root (`chroot`, mount namespaces), these tools on `PATH`, and the static
/// busybox scriptlets run with. `Err` says what is missing (for [`require_all!`]).
pub fn needs(root: bool, tools: &[&str], busybox: bool) -> Result<(), String> {
    let mut missing: Vec<String> = Vec::new();
    if root && !is_root() {
        missing.push("root (id -u is not 0)".into());
    }
    missing.extend(tools.iter().filter(|t| !have(t)).map(|t| t.to_string()));
    if busybox && !std::path::Path::new("/bin/busybox").exists() {
        missing.push("static busybox (/bin/busybox)".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("needs {}", missing.join(", ")))
    }
}

/// Skip the test (printing `SKIPPED: why`) unless `needs(...)` is `Ok`.
#[macro_export]
macro_rules! require_all {
    ($needs:expr) => {
        if let Err(why) = $needs {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

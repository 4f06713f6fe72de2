//! Signing test packages with the real `gpg` and `rpmsign`, in a throwaway GNUPGHOME, and
//! asking the real `rpm` for its verdict (`rpm --import` the key into a scratch root, then
//! `rpm -K`, or an install with `_pkgverify_level signature`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway GnuPG home with generated signing keys.
pub struct GpgHome {
    /// The GNUPGHOME directory.
    pub home: PathBuf,
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let o = cmd.output()?;
    anyhow::ensure!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

impl GpgHome {
    /// Create the home (mode 0700) under `dir`.
    pub fn new(dir: &Path) -> anyhow::Result<GpgHome> {
        use std::os::unix::fs::PermissionsExt;
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home)?;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
        Ok(GpgHome { home })
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &self.home)
            .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
            .args(["--passphrase", ""]);
        c
    }

    /// Generate a signing key for `uid` (`algo`: `rsa2048`, `ed25519`, …) and write its
    /// ASCII-armored public key to `out`.
    pub fn gen_key(&self, uid: &str, algo: &str, out: &Path) -> anyhow::Result<()> {
        run(self
            .gpg()
            .args(["--quick-gen-key", uid, algo, "sign", "never"]))?;
        let armored = run(self.gpg().args(["--armor", "--export", uid]))?;
        anyhow::ensure!(
            armored.contains("BEGIN PGP PUBLIC KEY BLOCK"),
            "no key exported"
        );
        std::fs::write(out, armored)?;
        Ok(())
    }

    /// Sign `rpm` in place with the key of `uid` (`rpmsign --addsign`).
    pub fn sign(&self, rpm: &Path, uid: &str) -> anyhow::Result<()> {
        run(Command::new("rpmsign")
            .env("GNUPGHOME", &self.home)
            .arg("--define")
            .arg(format!("_gpg_name {uid}"))
            .arg("--define")
            .arg(format!("_gpg_path {}", self.home.display()))
            .arg("--define")
            .arg("__gpg /usr/bin/gpg")
            .arg("--addsign")
            .arg(rpm))?;
        Ok(())
    }

    /// Stop the gpg-agent this home started.
    pub fn kill_agent(&self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        self.kill_agent();
    }
}

/// The real rpm's verdict on `rpm_file` with only `keys` trusted: `rpm --import` them into a
/// fresh root under `scratch`, then `rpm -K`. True when rpm says the signatures are OK.
pub fn rpm_k(scratch: &Path, keys: &[PathBuf], rpm_file: &Path) -> anyhow::Result<(bool, String)> {
    let root = tempfile::tempdir_in(scratch)?;
    for k in keys {
        run(Command::new("rpm")
            .arg("--root")
            .arg(root.path())
            .args(["--dbpath", "/var/lib/rpm", "--import"])
            .arg(k))?;
    }
    let o = Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .args(["--dbpath", "/var/lib/rpm", "-K"])
        .arg(rpm_file)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok((o.status.success(), text))
}

/// The real rpm's install verdict with signatures enforced (`_pkgverify_level signature`,
/// which refuses unsigned packages too): `rpm --import` the keys into a fresh root under
/// `scratch`, then `rpm -i --nodeps --noscripts`. True when rpm installed the package.
pub fn rpm_install_enforced(
    scratch: &Path,
    keys: &[PathBuf],
    rpm_file: &Path,
) -> anyhow::Result<(bool, String)> {
    let root = tempfile::tempdir_in(scratch)?;
    for k in keys {
        run(Command::new("rpm")
            .arg("--root")
            .arg(root.path())
            .args(["--dbpath", "/var/lib/rpm", "--import"])
            .arg(k))?;
    }
    let o = Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .args(["--dbpath", "/var/lib/rpm"])
        .args(["--define", "_pkgverify_level signature"])
        .args(["-i", "--nodeps", "--noscripts", "--ignorearch"])
        .arg(rpm_file)
        .output()?;
    Ok((
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

/// Flip one byte of the first occurrence of `needle` in `file` (to tamper with a signed header
/// or payload). Panics when `needle` is absent.
pub fn tamper(file: &Path, needle: &[u8]) -> anyhow::Result<()> {
    let mut data = std::fs::read(file)?;
    let at = data
        .windows(needle.len())
        .position(|w| w == needle)
        .ok_or_else(|| anyhow::anyhow!("{}: marker not found", file.display()))?;
    data[at] ^= 0x20;
    std::fs::write(file, data)?;
    Ok(())
}

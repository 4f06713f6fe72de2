//! Fixtures for the copycds tests: a RHEL-DVD-like tree (`.discinfo`, `.treeinfo` with
//! `[checksums]`, `media.repo`, `Packages/` with tiny RPMs built by rpmbuild, `repodata/` from
//! createrepo_c, an `AppStream/` second repo, long names, symlinks, a deep dir, a 0750 file,
//! a GPG key file), ISOs of it made by xorriso and genisoimage, and tree snapshots to compare.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs a command, failing with its stderr when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The tools the media fixtures need, with the first one missing.
pub fn missing_tool() -> Option<&'static str> {
    [
        "rpmbuild",
        "createrepo_c",
        "xorriso",
        "genisoimage",
        "sha256sum",
    ]
    .into_iter()
    .find(|t| !crate::tools::have(t))
}

/// Builds a tiny noarch RPM `name-version-1` into `out` with rpmbuild. `requires` may be empty.
pub fn build_rpm(
    work: &Path,
    out: &Path,
    name: &str,
    version: &str,
    requires: &str,
) -> Result<PathBuf> {
    let top = work.join(format!("rpmbuild-{name}"));
    for d in ["SPECS", "BUILD", "RPMS", "SOURCES", "SRPMS", "BUILDROOT"] {
        std::fs::create_dir_all(top.join(d))?;
    }
    let req = if requires.is_empty() {
        String::new()
    } else {
        format!("Requires: {requires}\n")
    };
    let spec = format!(
        "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: copycds test package {name}\n\
         License: MIT\nBuildArch: noarch\n{req}\n%description\nTest package {name}.\n\n\
         %install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
         echo '{name} {version}' > %{{buildroot}}/usr/share/{name}/README\n\n\
         %files\n/usr/share/{name}\n"
    );
    let spec_path = top.join("SPECS").join(format!("{name}.spec"));
    std::fs::write(&spec_path, spec)?;
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg("debug_package %{nil}")
        .arg("--define")
        .arg("__os_install_post %{nil}")
        .arg("--define")
        .arg("_build_id_links none")
        .arg(&spec_path)
        .env("SOURCE_DATE_EPOCH", "1700000000"))?;
    let rpm = top
        .join("RPMS/noarch")
        .join(format!("{name}-{version}-1.noarch.rpm"));
    std::fs::create_dir_all(out)?;
    let dest = out.join(rpm.file_name().context("rpm name")?);
    std::fs::copy(&rpm, &dest)?;
    Ok(dest)
}

/// A long file name (> 64 characters, Joliet's limit) used in the tree.
pub const LONG_NAME: &str =
    "A_Very_Long_Mixed_Case_File_Name_Beyond_Joliets_Sixty_Four_Character_Limit.txt";

/// The deep file path used in the tree (11 directory levels).
pub const DEEP_FILE: &str = "deep/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/deep-file.txt";

/// Options for [`make_dvd_tree`].
pub struct DvdOptions<'a> {
    /// `.discinfo` line 2 (e.g. `Rocky Linux 9.4`).
    pub description: &'a str,
    /// Architecture.
    pub arch: &'a str,
    /// `.treeinfo` family (e.g. `Rocky Linux`).
    pub family: &'a str,
    /// `.treeinfo` version.
    pub version: &'a str,
    /// Extra payload bytes in `images/install.img` (for benchmarks); 0 for a tiny file.
    pub big_bytes: u64,
    /// Write a wrong `[checksums]` entry for `images/pxeboot/vmlinuz`.
    pub bad_checksum: bool,
}

impl Default for DvdOptions<'_> {
    fn default() -> Self {
        DvdOptions {
            description: "Rocky Linux 9.4",
            arch: "x86_64",
            family: "Rocky Linux",
            version: "9.4",
            big_bytes: 0,
            bad_checksum: false,
        }
    }
}

fn sha256(path: &Path) -> Result<String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    Ok(out
        .split_whitespace()
        .next()
        .context("sha256sum output")?
        .to_string())
}

/// Writes a RHEL-DVD-like tree into `root` (created). `rpms` holds the RPMs for `Packages/`
/// (see [`build_rpm`]); the last one goes to `AppStream/Packages/` instead.
pub fn make_dvd_tree(root: &Path, rpms: &[PathBuf], o: &DvdOptions) -> Result<()> {
    std::fs::create_dir_all(root.join("Packages"))?;
    std::fs::create_dir_all(root.join("AppStream/Packages"))?;
    let (app, base) = rpms.split_last().context("need at least one rpm")?;
    for r in base {
        std::fs::copy(
            r,
            root.join("Packages").join(r.file_name().context("name")?),
        )?;
    }
    std::fs::copy(
        app,
        root.join("AppStream/Packages")
            .join(app.file_name().context("name")?),
    )?;
    run(Command::new("createrepo_c")
        .arg("--quiet")
        .arg(root)
        .arg("--excludes")
        .arg("AppStream/*"))?;
    run(Command::new("createrepo_c")
        .arg("--quiet")
        .arg(root.join("AppStream")))?;

    std::fs::create_dir_all(root.join("images/pxeboot"))?;
    std::fs::write(
        root.join("images/pxeboot/vmlinuz"),
        b"not really a kernel\n",
    )?;
    let big = root.join("images/install.img");
    {
        // Pseudo-random, incompressible-ish content so nothing can cheat on zeros.
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big)?);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut left = o.big_bytes.max(4096);
        let mut buf = vec![0u8; 1 << 16];
        while left > 0 {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    let vmlinuz_sum = if o.bad_checksum {
        "0".repeat(64)
    } else {
        sha256(&root.join("images/pxeboot/vmlinuz"))?
    };
    let img_sum = sha256(&big)?;

    std::fs::write(
        root.join(".discinfo"),
        format!("1700000000.000000\n{}\n{}\nALL\n", o.description, o.arch),
    )?;
    std::fs::write(
        root.join(".treeinfo"),
        format!(
            "[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n\
             [release]\nname = {f}\nshort = T\nversion = {v}\n\n\
             [tree]\narch = {a}\nbuild_timestamp = 1700000000\nplatforms = {a}\nvariants = AppStream,BaseOS\n\n\
             [variant-BaseOS]\nid = BaseOS\nname = BaseOS\npackages = Packages\nrepository = .\ntype = variant\nuid = BaseOS\n\n\
             [variant-AppStream]\nid = AppStream\nname = AppStream\npackages = AppStream/Packages\nrepository = AppStream\ntype = variant\nuid = AppStream\n\n\
             [checksums]\nimages/install.img = sha256:{img_sum}\nimages/pxeboot/vmlinuz = sha256:{vmlinuz_sum}\n",
            f = o.family,
            v = o.version,
            a = o.arch
        ),
    )?;
    std::fs::write(
        root.join("media.repo"),
        format!(
            "[InstallMedia]\nname={} {}\nmediaid=None\nmetadata_expire=-1\ngpgcheck=0\ncost=500\n",
            o.family, o.version
        ),
    )?;
    std::fs::write(
        root.join("RPM-GPG-KEY-test"),
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n(test key)\n-----END PGP PUBLIC KEY BLOCK-----\n",
    )?;
    std::fs::write(root.join(LONG_NAME), b"long name\n")?;
    std::fs::write(root.join("Mixed Case Ünïcödé name.txt"), b"utf-8 name\n")?;
    let deep = root.join(DEEP_FILE);
    std::fs::create_dir_all(deep.parent().context("parent")?)?;
    std::fs::write(&deep, b"deep\n")?;
    std::fs::write(root.join("images/secret.sh"), b"#!/bin/sh\necho 0750\n")?;
    std::fs::set_permissions(
        root.join("images/secret.sh"),
        std::fs::Permissions::from_mode(0o750),
    )?;
    std::os::unix::fs::symlink("images/pxeboot/vmlinuz", root.join("vmlinuz-link"))?;
    std::os::unix::fs::symlink("../Packages", root.join("AppStream/base-packages"))?;
    std::fs::create_dir_all(root.join("EFI/BOOT"))?;
    std::fs::write(root.join("EFI/BOOT/grub.cfg"), b"set timeout=5\n")?;
    Ok(())
}

/// `xorriso -as mkisofs -R -J -joliet-long` (Rock Ridge + Joliet) of `tree` into `iso`.
pub fn xorriso_iso(tree: &Path, iso: &Path) -> Result<()> {
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-R", "-J", "-joliet-long"])
        .args(["-V", "Rocky-9-4-x86_64-dvd", "-o"])
        .arg(iso)
        .arg(tree))?;
    Ok(())
}

/// `genisoimage -J` (Joliet only, no Rock Ridge) of `tree` into `iso`.
pub fn genisoimage_iso(tree: &Path, iso: &Path) -> Result<()> {
    run(Command::new("genisoimage")
        .args(["-quiet", "-J", "-V", "TESTDVD", "-o"])
        .arg(iso)
        .arg(tree))?;
    Ok(())
}

/// `xorriso -osirrox on -indev ISO -extract / DIR`: the reference extraction.
pub fn xorriso_extract(iso: &Path, dir: &Path) -> Result<()> {
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", "/"])
        .arg(dir))?;
    Ok(())
}

/// One node of a [`snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A file: mode and blake3 of the content.
    File(u32, String),
    /// A directory and its mode.
    Dir(u32),
    /// A symlink and its target.
    Link(String),
}

/// What to compare in a [`snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Names, modes, symlink targets, content.
    Everything,
    /// Names, symlink targets and content, not modes (Joliet has none).
    NoModes,
}

/// A tree as a sorted map path → node, skipping `exclude` names at the top.
pub fn snapshot(root: &Path, how: Compare, exclude: &[&str]) -> Result<BTreeMap<String, Node>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let e = e?;
        let rel = e.path().strip_prefix(root)?.to_string_lossy().into_owned();
        let top = rel.split('/').next().unwrap_or("");
        if exclude.contains(&top) {
            continue;
        }
        let md = e.path().symlink_metadata()?;
        let mode = if how == Compare::Everything {
            md.permissions().mode() & 0o7777
        } else {
            0
        };
        let node = if md.file_type().is_symlink() {
            Node::Link(std::fs::read_link(e.path())?.to_string_lossy().into_owned())
        } else if md.is_dir() {
            Node::Dir(mode)
        } else {
            let data = std::fs::read(e.path())?;
            Node::File(mode, blake3::hash(&data).to_hex().to_string())
        };
        out.insert(rel, node);
    }
    Ok(out)
}

/// Asserts two snapshots are equal, listing the differences.
pub fn assert_same(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>, what: &str) {
    if a == b {
        return;
    }
    let mut diffs = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => diffs.push(format!("only in left: {k} {v:?}")),
            Some(w) if w != v => diffs.push(format!("differs: {k}: {v:?} vs {w:?}")),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            diffs.push(format!("only in right: {k} {v:?}"));
        }
    }
    panic!("{what}: trees differ:\n{}", diffs.join("\n"));
}

/// Builds the three test RPMs into `<base>/rpms`: `cc-base`, `cc-lib` (requires cc-base) and
/// `cc-app` (requires cc-lib; it goes to the AppStream repo).
pub fn build_rpms(base: &Path) -> Result<Vec<PathBuf>> {
    let rpms = base.join("rpms");
    Ok(vec![
        build_rpm(base, &rpms, "cc-base", "1.0", "")?,
        build_rpm(base, &rpms, "cc-lib", "2.0", "cc-base")?,
        build_rpm(base, &rpms, "cc-app", "3.0", "cc-lib")?,
    ])
}

/// The copycds record file name.
pub const RECORD: &str = ".osimage-media.toml";

/// The shared fixture of the copycds tests: RPMs, a DVD tree, and its xorriso (RR + Joliet) and
/// genisoimage (Joliet only) ISOs.
pub struct Fixture {
    /// The three test RPMs.
    pub rpms: Vec<PathBuf>,
    /// The DVD tree.
    pub tree: PathBuf,
    /// `xorriso -as mkisofs -R -J -joliet-long` image.
    pub rr_iso: PathBuf,
    /// `genisoimage -J` image.
    pub joliet_iso: PathBuf,
}

/// Builds the fixture in `base` (removed and recreated).
pub fn build_fixture(base: &Path) -> Result<Fixture> {
    let _ = std::fs::remove_dir_all(base);
    std::fs::create_dir_all(base)?;
    let rpms = build_rpms(base)?;
    let tree = base.join("tree");
    make_dvd_tree(&tree, &rpms, &DvdOptions::default())?;
    let rr_iso = base.join("rr.iso");
    xorriso_iso(&tree, &rr_iso)?;
    let joliet_iso = base.join("joliet.iso");
    genisoimage_iso(&tree, &joliet_iso)?;
    Ok(Fixture {
        rpms,
        tree,
        rr_iso,
        joliet_iso,
    })
}

/// `Some(why)` when the copycds tests must be skipped (a tool or the binary is missing).
pub fn tools_missing() -> Option<String> {
    if let Some(t) = missing_tool() {
        return Some(format!("{t} is not installed"));
    }
    if !crate::tools::osimage_bin().exists() {
        return Some(format!(
            "{} not built",
            crate::tools::osimage_bin().display()
        ));
    }
    None
}

/// Runs `osimage ARGS` in `cwd` (without `OSIMAGE_STORE` from the environment).
pub fn osimage(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(crate::tools::osimage_bin())
        .current_dir(cwd)
        .args(args)
        .env_remove("OSIMAGE_STORE")
        .output()
        .expect("running osimage")
}

/// Asserts success; returns stdout.
pub fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "osimage failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts failure; returns stderr.
pub fn fail(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "osimage should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The path as `&str`.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The fingerprint in `<dest>/.osimage-media.toml`.
pub fn record_fingerprint(dest: &Path) -> String {
    let t = std::fs::read_to_string(dest.join(RECORD)).expect("record file");
    let line = t
        .lines()
        .find(|l| l.starts_with("fingerprint = "))
        .expect("fingerprint line");
    line.trim_start_matches("fingerprint = ")
        .trim_matches('"')
        .to_string()
}

/// The sorted names in `dir` (empty when it does not exist).
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

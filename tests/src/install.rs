//! Fixtures for the install tests: tree snapshots and comparison, running the real `rpm -i
//! --root` as the oracle, and building test packages with `rpmbuild`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One entry of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    /// 'd', 'f', 'l', 'c', 'b', 'p', 's'.
    pub kind: char,
    /// Permission bits incl. setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Symlink target.
    pub target: String,
    /// blake3 of the content (regular files).
    pub hash: String,
    /// mtime.
    pub mtime: i64,
    /// `security.capability` xattr, hex.
    pub caps: String,
    /// First path (sorted) sharing this inode, for regular files with nlink > 1.
    pub link_group: String,
    /// rdev for device nodes.
    pub rdev: u64,
}

/// Snapshot `root` (paths relative, sorted), skipping paths that start with any of `ignore`.
pub fn snapshot(root: &Path, ignore: &[&str]) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name().min_depth(1) {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if ignore
            .iter()
            .any(|i| rel == *i || rel.starts_with(&format!("{i}/")))
        {
            continue;
        }
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            'f'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            's'
        };
        let mut link_group = String::new();
        if kind == 'f' && md.nlink() > 1 {
            link_group = inodes
                .entry(md.ino())
                .or_insert_with(|| rel.clone())
                .clone();
        }
        out.insert(
            rel,
            Snap {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                target: if kind == 'l' {
                    std::fs::read_link(e.path())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                } else {
                    String::new()
                },
                hash: if kind == 'f' {
                    blake3::hash(&std::fs::read(e.path()).unwrap())
                        .to_hex()
                        .to_string()
                } else {
                    String::new()
                },
                mtime: md.mtime(),
                caps: if kind == 'f' {
                    xattr::get(e.path(), "security.capability")
                        .ok()
                        .flatten()
                        .map(|v| v.iter().map(|b| format!("{b:02x}")).collect())
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                link_group,
                rdev: if kind == 'c' || kind == 'b' {
                    md.rdev()
                } else {
                    0
                },
            },
        );
    }
    out
}

/// Differences between an oracle tree and ours. mtimes that the oracle set at install time
/// (≥ `started`, i.e. not from a header: unowned directories, files written by scriptlets) only
/// need to be install-time in ours as well.
pub fn diff(
    oracle: &BTreeMap<String, Snap>,
    ours: &BTreeMap<String, Snap>,
    started: i64,
) -> Vec<String> {
    let mut d = Vec::new();
    for (p, o) in oracle {
        match ours.get(p) {
            None => d.push(format!("missing in ours: {p} ({o:?})")),
            Some(u) => {
                let mut o2 = o.clone();
                let mut u2 = u.clone();
                if o.mtime >= started {
                    if u.mtime < started {
                        d.push(format!(
                            "{p}: mtime {} but oracle's is install time",
                            u.mtime
                        ));
                    }
                    o2.mtime = 0;
                    u2.mtime = 0;
                }
                if o2 != u2 {
                    d.push(format!("{p}:\n   oracle {o:?}\n   ours   {u:?}"));
                }
            }
        }
    }
    for p in ours.keys() {
        if !oracle.contains_key(p) {
            d.push(format!("extra in ours: {p}"));
        }
    }
    d
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Run the real `rpm` against `root` with `args` (the db at /var/lib/rpm). Returns
/// (success, stdout, stderr).
pub fn rpm(root: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .expect("run rpm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The oracle install: `rpm -i --root R --dbpath /var/lib/rpm --nodeps --noscripts
/// --nosignature --ignorearch FILES`.
pub fn rpm_install(root: &Path, rpms: &[PathBuf], scripts: bool) -> (bool, String) {
    let mut args: Vec<String> = vec![
        "-i".into(),
        "--nodeps".into(),
        "--nosignature".into(),
        "--ignorearch".into(),
    ];
    if !scripts {
        args.push("--noscripts".into());
        args.push("--notriggers".into());
    }
    args.extend(rpms.iter().map(|p| p.to_string_lossy().into_owned()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _o, e) = rpm(root, &a);
    (ok, e)
}

/// Build binary RPMs from `spec` text with rpmbuild in `topdir`; returns the RPM paths.
pub fn rpmbuild(topdir: &Path, name: &str, spec: &str) -> Vec<PathBuf> {
    let specs = topdir.join("SPECS");
    std::fs::create_dir_all(&specs).unwrap();
    let sp = specs.join(format!("{name}.spec"));
    std::fs::write(&sp, spec).unwrap();
    let out = Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", topdir.display()))
        .args([
            "--define",
            "debug_package %{nil}",
            "--define",
            "__os_install_post %{nil}",
            "--define",
            "_build_id_links none",
            "-bb",
        ])
        .arg(&sp)
        .output()
        .expect("run rpmbuild");
    assert!(
        out.status.success(),
        "rpmbuild {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = Vec::new();
    for e in walkdir::WalkDir::new(topdir.join("RPMS")) {
        let e = e.unwrap();
        let f = e.file_name().to_string_lossy();
        if f.ends_with(".rpm") && f.starts_with(&format!("{name}-")) {
            v.push(e.path().to_path_buf());
        }
    }
    v.sort();
    v
}

/// rpmbuild spec of a test package.
pub const FILESYSTEM: &str = r#"
Name: mini-filesystem
Version: 1
Release: 1
Summary: usrmerge skeleton with a static busybox shell
License: MIT
Provides: /bin/sh
%description
fs
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib %{buildroot}/etc %{buildroot}/var/lib %{buildroot}/tmp
cp /bin/busybox %{buildroot}/usr/bin/busybox
for a in sh cat echo mkdir; do ln -s busybox %{buildroot}/usr/bin/$a; done
ln -s usr/bin %{buildroot}/bin
ln -s usr/lib %{buildroot}/lib
printf 'root:x:0:0::/root:/bin/sh\n' > %{buildroot}/etc/passwd
printf 'root:x:0:\n' > %{buildroot}/etc/group
%files
%dir /usr
%dir /usr/bin
%dir /usr/lib
%dir /etc
%dir /var
%dir /var/lib
%attr(1777,root,root) %dir /tmp
/usr/bin/*
/bin
/lib
%config(noreplace) /etc/passwd
%config(noreplace) /etc/group
"#;

/// rpmbuild spec of a test package.
pub const SVC: &str = r#"
Name: mini-svc
Version: 1
Release: 1
Summary: creates a user in %pre, owns files, %post stamp, file triggers
License: MIT
BuildArch: noarch
Requires(pre): /bin/sh
%description
svc
%install
mkdir -p %{buildroot}/var/lib/svc %{buildroot}/lib/trig
echo conf > %{buildroot}/var/lib/svc/conf
echo t > %{buildroot}/lib/trig/own
%pre
echo 'svc:x:777:778::/var/lib/svc:/bin/sh' >> /etc/passwd
echo 'svc:x:778:' >> /etc/group
%post
echo "post $1" > /var/lib/svc/post.stamp
mkdir -p /var/tmp && test -c /dev/null && echo devnull-ok > /var/tmp/devcheck
%filetriggerin -- /usr/lib/trig
cat >> /var/lib/svc/trigger.log
%transfiletriggerin -- /usr/lib/trig
cat >> /var/lib/svc/transtrigger.log
%triggerin -- mini-plugin
echo "triggerin $1 $2" >> /var/lib/svc/triggerin.log
%files
%attr(0750,svc,svc) %dir /var/lib/svc
%attr(0640,svc,svc) /var/lib/svc/conf
%dir /lib/trig
/lib/trig/own
"#;

/// rpmbuild spec of a test package.
pub const PLUGIN: &str = r#"
Name: mini-plugin
Version: 1
Release: 1
Summary: a file under the trigger prefix
License: MIT
Requires: (mini-svc or mini-filesystem)
BuildArch: noarch
%description
plugin
%install
mkdir -p %{buildroot}/usr/lib/trig
echo p > %{buildroot}/usr/lib/trig/plugin.so
%preun
echo "preun $1" >> /var/lib/svc/erase.log
%postun
echo "postun $1" >> /var/lib/svc/erase.log
%files
/usr/lib/trig/plugin.so
"#;

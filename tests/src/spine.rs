//! A capture project for the spine tests: tree + postinstall + synclist + exlist + spec, and the
//! same pipeline applied by real tools (cp, sh, GNU find) to get the expected tree.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::trees;

/// The SOURCE_DATE_EPOCH the spine specs use.
pub const EPOCH: i64 = 1_700_000_000;

/// The exlist the spine spec uses (xCAT syntax).
pub const EXLIST: &str =
    "# comment\n./usr/share/doc*\n+./usr/share/doc/pkg/COPYING\n./var/log/messages  # inline\n";

/// Write the project; returns the spec path.
pub fn project(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    trees::every_type_tree(&tree);
    let post = dir.join("compute.postinstall");
    std::fs::write(
        &post,
        "#!/bin/sh\nset -e\nroot=$1\necho \"motd for $IMG_NAME $2 $3 $4 extra=$5 site=$SITE\" > \"$root/etc/motd\"\n\
         mkdir -p \"$root/opt/app\"\nprintf 'x' > \"$root/opt/app/data\"\nrm -f \"$root/etc/empty\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&post, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/hosts"), "127.0.0.1 localhost\n").unwrap();
    std::fs::write(dir.join("files/a.conf"), "a=1\n").unwrap();
    std::fs::write(dir.join("files/b.conf"), "b=2\n").unwrap();
    std::fs::write(
        dir.join("compute.synclist"),
        "files/hosts -> /etc/hosts\nfiles/a.conf files/b.conf -> /etc/app\n",
    )
    .unwrap();
    std::fs::write(dir.join("compute.exlist"), EXLIST).unwrap();
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        format!(
            r#"[osimage]
name = "spine"
osvers = "rocky9.4"
arch = "x86_64"
profile = "compute"
environvar = {{ SITE = "lab" }}

[source]
rootimg = "tree"

[image]
rootimgdir = "out"
postinstall = ["compute.postinstall --flag"]
synclists = ["compute.synclist"]
exlist = ["compute.exlist"]

[pack]
compress = "zstd"
level = 3
source_date_epoch = {EPOCH}
"#
        ),
    )
    .unwrap();
    spec
}

fn sh(cmd: &str, cwd: &Path) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .status()
        .unwrap();
    assert!(st.success(), "{cmd}");
}

/// Apply the pipeline with real tools to a copy of the tree: `cp -a`, the postinstall script,
/// `cp` for the synclist, the fstab/resolv.conf xCAT writes, then the exlist the way xCAT's
/// packimage does (`find . ! -path …` for excludes, `find . -path …` for `+` lines, union).
pub fn expected(dir: &Path) -> PathBuf {
    let exp = dir.join("expected");
    sh(&format!("cp -a tree '{}'", exp.display()), dir);
    let st = Command::new(dir.join("compute.postinstall"))
        .arg(&exp)
        .args(["rocky9.4", "x86_64", "compute", "--flag"])
        .env("IMG_NAME", "spine")
        .env("SITE", "lab")
        .status()
        .unwrap();
    assert!(st.success());
    sh(
        &format!(
            "cp files/hosts '{0}/etc/hosts' && mkdir -p '{0}/etc/app' && cp files/a.conf files/b.conf '{0}/etc/app/'",
            exp.display()
        ),
        dir,
    );
    std::fs::write(
        exp.join("etc/fstab"),
        "# written by osimage (xCAT genimage generic_post)\n\
         devpts  /dev/pts devpts   gid=5,mode=620 0 0\n\
         tmpfs   /dev/shm tmpfs    defaults       0 0\n\
         proc    /proc    proc     defaults       0 0\n\
         sysfs   /sys     sysfs    defaults       0 0\n\
         tmpfs   /tmp     tmpfs    defaults,size=10m 0 2\n\
         tmpfs   /var/tmp tmpfs    defaults,size=10m 0 2\n\
         compute_x86_64 / tmpfs rw 0 1\n",
    )
    .unwrap();
    std::fs::write(
        exp.join("etc/resolv.conf"),
        "# placeholder written by osimage; the node's DHCP client fills it at boot\n",
    )
    .unwrap();
    sh("chmod 0644 etc/fstab etc/resolv.conf", &exp);
    // exlist, xCAT style
    let find = |args: &str| -> BTreeSet<String> {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("find . {args}"))
            .current_dir(&exp)
            .output()
            .unwrap();
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let all = find("");
    let kept_ex = find("! -path './usr/share/doc*' ! -path './var/log/messages'");
    let kept_in = find("-path './usr/share/doc/pkg/COPYING'");
    let kept: BTreeSet<String> = kept_ex.union(&kept_in).cloned().collect();
    for p in all.iter().rev() {
        let is_ancestor = kept.iter().any(|k| k.starts_with(&format!("{p}/")));
        if !kept.contains(p) && !is_ancestor {
            let path = exp.join(p);
            if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    exp
}

/// Run the `osimage` binary.
pub fn osimage(args: &[&str], cwd: &Path) -> Output {
    Command::new(crate::tools::osimage_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

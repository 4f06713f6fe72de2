//! Embedding imagecore: build a netboot root image from an existing directory tree (xCAT's
//! "capture" path), print the plan before and after, and show where the archive is.
//!
//! `cargo run --example capture [WORKDIR]` — without WORKDIR a fresh temporary directory is
//! used. The example generates its own small root tree, a postinstall script, a synclist and
//! an exlist, so it needs nothing but this repository.

use std::path::{Path, PathBuf};

use imagecore::graph::{BuildOptions, NodeState};
use imagecore::{Plan, Spec, Store};

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, text)
}

/// Lay out a small but real root tree plus the xCAT-style list files and a spec.
fn make_project(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let root = dir.join("tree");
    for d in [
        "etc",
        "usr/bin",
        "usr/sbin",
        "usr/share/doc/demo",
        "var/log",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    write(
        &root.join("etc/os-release"),
        "NAME=\"Demo Linux\"\nVERSION_ID=9.4\n",
    )?;
    write(&root.join("etc/hostname"), "localhost\n")?;
    write(
        &root.join("usr/bin/hello"),
        "#!/bin/sh\necho hello from the demo image\n",
    )?;
    std::fs::set_permissions(
        root.join("usr/bin/hello"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    write(
        &root.join("usr/share/doc/demo/README"),
        "documentation the exlist removes\n",
    )?;
    write(
        &root.join("usr/share/doc/demo/LICENSE"),
        "kept by a + line\n",
    )?;
    if !root.join("bin").exists() {
        symlink("usr/bin", root.join("bin"))?;
    }
    std::fs::hard_link(
        root.join("usr/bin/hello"),
        root.join("usr/sbin/hello-again"),
    )
    .ok();
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;

    let post = dir.join("compute.postinstall");
    write(
        &post,
        "#!/bin/sh\n# xCAT convention: $1 = rootimg, $2 = osvers, $3 = arch, $4 = profile\n\
         echo \"built by postinstall for $IMG_NAME ($2/$3/$4)\" > \"$1/etc/motd\"\n",
    )?;
    std::fs::set_permissions(&post, std::fs::Permissions::from_mode(0o755))?;
    write(
        &dir.join("files/hosts"),
        "127.0.0.1 localhost\n10.0.0.1 mgmt\n",
    )?;
    write(&dir.join("compute.synclist"), "files/hosts -> /etc/hosts\n")?;
    write(
        &dir.join("compute.exlist"),
        "./usr/share/doc*\n+./usr/share/doc/demo/LICENSE\n./var/log/*\n",
    )?;
    let spec = dir.join("capture.toml");
    write(
        &spec,
        r#"[osimage]
name = "demo-capture"
osvers = "rocky9.4"
arch = "x86_64"
profile = "compute"

[source]
rootimg = "tree"

[image]
postinstall = ["compute.postinstall"]
synclists = ["compute.synclist"]
exlist = ["compute.exlist"]

[pack]
compress = "zstd"
level = 3
"#,
    )?;
    Ok(spec)
}

fn print_plan(plan: &Plan<'_>) {
    for n in plan.nodes() {
        let state = match &n.reason {
            Some(why) => format!("{} ({why})", n.state.name()),
            None => n.state.name().to_string(),
        };
        println!(
            "  {:<12} {:<12} {}  {state}",
            n.name,
            n.kind.name(),
            n.key_short()
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp;
    let dir = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let spec_path = make_project(&dir)?;
    let spec = Spec::load(&spec_path)?;
    let store = Store::open(&dir.join("cache"))?;

    let plan = Plan::new(&spec, &store)?;
    println!("plan before the first build:");
    print_plan(&plan);
    let report = plan.build(&BuildOptions::default())?;
    println!(
        "built {} nodes, {} cached",
        report.built.len(),
        report.cached.len()
    );

    let again = Plan::new(&spec, &store)?;
    println!("plan after the build:");
    print_plan(&again);
    let all_cached = again.nodes().iter().all(|n| n.state == NodeState::Cached);
    let archive = spec.image.rootimgdir.join("rootimg.cpio.zst");
    println!(
        "archive: {} ({} bytes)",
        archive.display(),
        std::fs::metadata(&archive)?.len()
    );
    if !all_cached {
        return Err("a second plan should find every node cached".into());
    }
    Ok(())
}

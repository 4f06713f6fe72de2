//! The demo packages, built with the `rpm` crate's builder.

use std::path::{Path, PathBuf};

use rpm::{Dependency, FileOptions, PackageBuilder, Scriptlet};

use crate::error::Error;

/// Fixed build time, so the demo RPMs are bit-identical on every run.
const BUILD_TIME: u32 = 1_700_000_000;

fn err(pkg: &str, e: impl std::fmt::Display) -> Error {
    Error::Step {
        node: "demo".into(),
        message: format!("building demo package {pkg}: {e}"),
    }
}

fn builder(name: &str, version: &str, arch: &str, summary: &str) -> PackageBuilder {
    let mut b = PackageBuilder::new(name, version, "MIT", arch, summary);
    b.release("1.demo")
        .using_config(rpm::BuildConfig::default().source_date(BUILD_TIME))
        .build_host("osimage-demo")
        .description(summary);
    b
}

/// The host's `/bin/sh` and its shared libraries (ELF `DT_NEEDED` + interpreter closure), as
/// (host path, image path) pairs; image paths are usrmerged (`/usr/lib…`).
fn shell_files() -> Result<Vec<(PathBuf, String)>, Error> {
    let sh = std::fs::canonicalize("/bin/sh").map_err(|e| Error::io("/bin/sh", e))?;
    let closure = crate::boot::elf_closure(Path::new("/"), &[&sh.to_string_lossy()])?;
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for p in closure {
        let host = Path::new("/").join(&p);
        let real = std::fs::canonicalize(&host).map_err(|e| Error::io(&host, e))?;
        if real.is_dir() {
            continue; // a usrmerge link such as lib64 -> usr/lib64: the skeleton has it
        }
        let rel = p.to_string_lossy().trim_start_matches('/').to_string();
        let rel = rel.strip_prefix("usr/").unwrap_or(&rel).to_string();
        let dest = format!("/usr/{rel}");
        if !out.iter().any(|(_, d)| *d == dest) {
            out.push((real, dest));
        }
    }
    Ok(out)
}

/// Every demo package as (file name, package).
pub fn demo_packages() -> Result<Vec<(String, rpm::Package)>, Error> {
    let mut v = Vec::new();
    let mut push = |b: &mut PackageBuilder, name: &str| -> Result<(), Error> {
        let p = b.build().map_err(|e| err(name, e))?;
        let file = format!(
            "{}-{}-{}.{}.rpm",
            p.metadata.get_name().map_err(|e| err(name, e))?,
            p.metadata.get_version().map_err(|e| err(name, e))?,
            p.metadata.get_release().map_err(|e| err(name, e))?,
            p.metadata.get_arch().map_err(|e| err(name, e))?
        );
        v.push((file, p));
        Ok(())
    };

    // filesystem: the usrmerged skeleton (like RHEL 9's filesystem package)
    let mut fs = builder(
        "demo-filesystem",
        "1.0",
        "noarch",
        "Demo directory skeleton",
    );
    for (d, mode) in [
        ("/etc", 0o755),
        ("/usr", 0o755),
        ("/usr/bin", 0o755),
        ("/usr/lib", 0o755),
        ("/usr/lib64", 0o755),
        ("/usr/share", 0o755),
        ("/usr/share/doc", 0o755),
        ("/var", 0o755),
        ("/var/lib", 0o755),
        ("/tmp", 0o1777),
        ("/root", 0o550),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/run", 0o755),
    ] {
        fs.with_dir_entry(FileOptions::dir(d).permissions(mode as u16))
            .map_err(|e| err("demo-filesystem", e))?;
    }
    for (l, t) in [
        ("/bin", "usr/bin"),
        ("/sbin", "usr/bin"),
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
    ] {
        fs.with_symlink(FileOptions::symlink(l, t))
            .map_err(|e| err("demo-filesystem", e))?;
    }
    push(&mut fs, "demo-filesystem")?;

    let mut rel = builder("demo-release", "1.0", "noarch", "Demo Linux release files");
    rel.requires(Dependency::any("demo-filesystem"))
        .provides(Dependency::eq("system-release", "1.0"))
        .with_file_contents(
            "NAME=\"Demo Linux\"\nVERSION_ID=1.0\nPRETTY_NAME=\"Demo Linux 1.0 (osimage demo)\"\n",
            FileOptions::new("/etc/os-release").config(),
        )
        .map_err(|e| err("demo-release", e))?;
    push(&mut rel, "demo-release")?;

    let mut shell = builder(
        "demo-shell",
        "1.0",
        "x86_64",
        "The build host's /bin/sh, repackaged",
    );
    shell
        .requires(Dependency::any("demo-filesystem"))
        .provides(Dependency::any("/bin/sh"));
    for (host, dest) in shell_files()? {
        let data = std::fs::read(&host).map_err(|e| Error::io(&host, e))?;
        shell
            .with_file_contents(data, FileOptions::new(dest).permissions(0o755))
            .map_err(|e| err("demo-shell", e))?;
    }
    shell
        .with_symlink(FileOptions::symlink("/usr/bin/sh", "dash"))
        .map_err(|e| err("demo-shell", e))?;
    push(&mut shell, "demo-shell")?;

    let mut hello = builder(
        "demo-hello",
        "2.1",
        "noarch",
        "Says hello; its %post runs in the image",
    );
    hello
        .requires(Dependency::any("/bin/sh"))
        .requires(Dependency::any("demo-release"))
        .requires(Dependency::script_post("/bin/sh"))
        .with_file_contents(
            "#!/bin/sh\n. /etc/os-release\necho \"hello from $PRETTY_NAME\"\n",
            FileOptions::new("/usr/bin/hello").permissions(0o755),
        )
        .map_err(|e| err("demo-hello", e))?
        .with_file_contents(
            "demo docs (removed by the exlist)\n",
            FileOptions::new("/usr/share/doc/demo-hello/README").doc(),
        )
        .map_err(|e| err("demo-hello", e))?
        .with_file_contents(
            "MIT (kept by a + line of the exlist)\n",
            FileOptions::new("/usr/share/doc/demo-hello/COPYING").doc(),
        )
        .map_err(|e| err("demo-hello", e))?
        .post_install_script(Scriptlet::new(
            "echo \"demo-hello installed (install count $1)\" > /etc/demo-hello.installed",
        ));
    push(&mut hello, "demo-hello")?;

    let mut motd = builder("demo-motd", "1.0", "noarch", "Message of the day");
    motd.requires(Dependency::greater_eq("demo-hello", "2.0"))
        .with_file_contents(
            "Welcome to a stateless node built by osimage.\n",
            FileOptions::new("/etc/motd").config(),
        )
        .map_err(|e| err("demo-motd", e))?;
    push(&mut motd, "demo-motd")?;

    let mut tools = builder("demo-tools", "1.0", "noarch", "Installed by a second pass");
    tools
        .requires(Dependency::any("demo-hello"))
        .with_file_contents(
            "#!/bin/sh\nhello && echo tools ready\n",
            FileOptions::new("/usr/bin/demo-tools").permissions(0o755),
        )
        .map_err(|e| err("demo-tools", e))?;
    push(&mut tools, "demo-tools")?;
    Ok(v)
}

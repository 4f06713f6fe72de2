//! Spec loading: the shipped examples, `extends` deep merge, path resolution against the file
//! that names a path, defaults, and the `to_toml` round trip.

use std::path::{Path, PathBuf};

use imagecore::spec::{Compress, PkgDir, ScriptletPolicy, Spec};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs")
}

#[test]
fn shipped_compute_example_loads_with_extends() {
    let s = Spec::load(&examples().join("compute.toml")).unwrap();
    let dir = std::fs::canonicalize(examples()).unwrap();
    assert_eq!(
        s.files,
        vec![dir.join("compute.toml"), dir.join("base.toml")]
    );
    assert_eq!(s.osimage.name, "compute");
    assert_eq!(s.osimage.osvers, "rocky9.4"); // from base
    // environvar deep-merged: child overrides SITE, keeps NTPSERVER from base
    assert_eq!(s.osimage.environvar["SITE"], "cluster1-compute");
    assert_eq!(s.osimage.environvar["NTPSERVER"], "10.0.0.1");
    let repos = s.repos.as_ref().unwrap();
    assert_eq!(
        repos.pkgdir[0].value,
        PkgDir::Media("rocky9.4/x86_64".into())
    );
    let k = s.kernel.as_ref().unwrap();
    assert_eq!(k.netdrivers, ["virtio_net", "e1000e"]); // base
    assert_eq!(k.addkcmdline, "console=ttyS0,115200"); // child
    assert_eq!(s.image.nodebootif, "eth0");
    assert_eq!(s.image.exlist[0].value, dir.join("compute.exlist"));
    assert_eq!(
        s.image.postinstall[0].value.script,
        dir.join("compute.postinstall")
    );
    assert_eq!(s.image.rootimgdir, dir.join("build/compute"));
    assert_eq!(s.pack.compress, Compress::Zstd);
    let p = s.packages.as_ref().unwrap();
    assert_eq!(p.install, ["chrony"]);
    assert_eq!(p.scriptlets, ScriptletPolicy::Run);
    // The shipped list files parse.
    let pk = imagecore::lists::Pkglist::load(&p.pkglist, &s.osimage.environvar).unwrap();
    assert!(
        pk.passes[0]
            .install
            .iter()
            .any(|e| e.name == "@minimal-environment")
    );
    let ex = imagecore::lists::Exlist::load(&s.image.exlist).unwrap();
    assert!(!ex.keep("usr/share/doc/bash/README"));
    assert!(ex.keep("usr/share/locale/en_US/LC_MESSAGES/x.mo"));
    let sy = imagecore::lists::Synclist::load_with_env(&s.image.synclists, &s.osimage.environvar)
        .unwrap();
    assert_eq!(sy.entries.len(), 2);
    assert_eq!(sy.skipped.len(), 1);
    assert_eq!(sy.sections.len(), 1);
}

#[test]
fn extends_merges_tables_child_wins_and_paths_follow_their_file() {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    write(&root, "common/base.pkglist", "bash\n");
    write(&root, "common/site.exlist", "./tmp*\n");
    write(&root, "child.pkglist", "vim\n");
    std::fs::create_dir_all(root.join("common/kernels")).unwrap();
    write(
        &root,
        "common/base.toml",
        r#"
[osimage]
name = "base"
osvers = "rocky9.4"
arch = "x86_64"
description = "from base"
environvar = { A = "1", B = "2" }

[repos]
pkgdir = ["repo", "https://mirror.example/rocky"]
otherpkgdir = "other"

[packages]
pkglist = ["base.pkglist"]
weak_deps = true

[kernel]
kerneldir = "kernels"
netdrivers = ["virtio_net"]

[image]
exlist = ["site.exlist"]
rootimgdir = "out"

[pack]
compress = "xz"
level = 9
"#,
    );
    let child = write(
        &root,
        "child.toml",
        r#"
[osimage]
extends = "common/base.toml"
name = "child"
environvar = { B = "two", C = "3" }

[packages]
pkglist = ["child.pkglist"]

[pack]
level = 6
"#,
    );
    let s = Spec::load(&child).unwrap();
    assert_eq!(s.osimage.name, "child");
    assert_eq!(s.osimage.description, "from base");
    let env: Vec<_> = s
        .osimage
        .environvar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(env, ["A=1", "B=two", "C=3"]);
    let r = s.repos.as_ref().unwrap();
    assert_eq!(r.pkgdir[0].value, PkgDir::Path(root.join("common/repo")));
    assert_eq!(
        r.pkgdir[1].value,
        PkgDir::Url("https://mirror.example/rocky".into())
    );
    assert_eq!(
        r.otherpkgdir.as_ref().unwrap().value,
        PkgDir::Path(root.join("common/other"))
    );
    let p = s.packages.as_ref().unwrap();
    // arrays are replaced, and resolved against the file that names them
    assert_eq!(p.pkglist.len(), 1);
    assert_eq!(p.pkglist[0].value, root.join("child.pkglist"));
    assert_eq!(p.pkglist[0].origin.file, child);
    assert_eq!(p.pkglist[0].origin.line, 8);
    assert!(p.weak_deps); // kept from base: tables merge key by key
    assert_eq!(
        s.kernel.as_ref().unwrap().kerneldir.as_ref().unwrap().value,
        root.join("common/kernels")
    );
    assert_eq!(s.image.exlist[0].value, root.join("common/site.exlist"));
    assert_eq!(s.image.rootimgdir, root.join("common/out"));
    assert_eq!((s.pack.compress, s.pack.level), (Compress::Xz, 6));
    assert_eq!(s.files, vec![child.clone(), root.join("common/base.toml")]);
}

#[test]
fn defaults() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("t")).unwrap();
    let p = write(
        d.path(),
        "s.toml",
        "[osimage]\nname = \"n\"\nosvers = \"r9\"\narch = \"aarch64\"\n[source]\nrootimg = \"t\"\n[kernel]\n",
    );
    let s = Spec::load(&p).unwrap();
    assert_eq!(s.osimage.profile, "n");
    assert_eq!(s.osimage.provmethod, "netboot");
    assert_eq!(s.image.permission, "755");
    assert_eq!(s.pack.level, 3);
    assert_eq!(s.pack.compress, Compress::Zstd);
    assert_eq!(
        s.pack.source_date_epoch,
        imagecore::spec::DEFAULT_SOURCE_DATE_EPOCH
    );
    // the minimal spec round-trips too (empty tables and arrays)
    let out = write(d.path(), "sub/min.toml", &s.to_toml());
    assert_eq!(Spec::load(&out).unwrap(), s);
    let k = s.kernel.unwrap();
    assert!(k.netdrivers_defaults);
    assert!(k.kerneldir.is_none());
    assert!(s.repos.is_none() && s.packages.is_none());
}

#[test]
fn to_toml_round_trips() {
    let s = Spec::load(&examples().join("compute.toml")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = write(d.path(), "resolved.toml", &s.to_toml());
    let again = Spec::load(&out).unwrap_or_else(|e| panic!("{e}\n{}", s.to_toml()));
    assert_eq!(again, s);
    assert_eq!(
        again.to_toml().lines().skip(1).collect::<Vec<_>>(),
        s.to_toml().lines().skip(1).collect::<Vec<_>>()
    );
    // it is really resolved: no extends, absolute paths, defaults written
    let t = s.to_toml();
    assert!(!t.lines().any(|l| l.starts_with("extends")), "{t}");
    assert!(t.contains("source_date_epoch = 1767225600"), "{t}");
    assert!(t.contains("netdrivers_defaults = true"), "{t}");

    // a spec with args that need quoting and a capture source
    let root = std::fs::canonicalize(d.path()).unwrap();
    std::fs::create_dir_all(root.join("my tree")).unwrap();
    let script = write(&root, "post script.sh", "#!/bin/sh\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let p = write(
        &root,
        "cap.toml",
        "[osimage]\nname = \"c\"\nosvers = \"r9\"\narch = \"x86_64\"\n\
         environvar = { \"X\" = \"a \\\"q\\\" b\" }\n[source]\nrootimg = \"my tree\"\n\
         [image]\npostinstall = [\"'post script.sh' --flag 'two words'\"]\n\
         [pack]\ncompress = \"gzip\"\nlevel = 9\nsource_date_epoch = 1700000000\n",
    );
    let s = Spec::load(&p).unwrap();
    assert_eq!(s.image.postinstall[0].value.args, ["--flag", "two words"]);
    let out = write(&root, "sub/resolved.toml", &s.to_toml());
    assert_eq!(Spec::load(&out).unwrap(), s);
}

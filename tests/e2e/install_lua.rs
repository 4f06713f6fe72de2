//! Lua scriptlets (`-p <lua>`) run through the image's own rpm, compared with the real
//! `rpm -i/-e --root` (which runs them in its embedded interpreter): the files they write, the
//! `arg` table (`#arg`, types, values) and `...`. The image root holds the host's rpm, copied
//! with its library closure. Without an rpm in the image: a clear error naming the package
//! and the scriptlet before anything is unpacked, or a warning with `scriptlets = "skip"`.

use std::path::{Path, PathBuf};

use imagecore::install::{InstallOptions, ScriptletMode, erase_packages, install_packages};
use osimage_e2e::install::{diff, now, rpm, rpm_install, rpmbuild, snapshot};
use osimage_e2e::luaroot::install_host_rpm;
use osimage_e2e::require;
use osimage_e2e::tools::{have, is_root};

const LUAPKG: &str = r##"
Name: luapkg
Version: 1
Release: 1
Summary: Lua scriptlets
License: MIT
BuildArch: noarch
%description
l
%install
mkdir -p %{buildroot}/etc/luapkg
echo data > %{buildroot}/etc/luapkg/data
%pre -p <lua>
posix.mkdir("/var")
posix.mkdir("/var/lib")
local f = assert(io.open("/var/lib/lua.log", "a"))
f:write(string.format("pre n=%d a1=%s a2=%s:%s varargs=%d\n", #arg, arg[1], type(arg[2]), tostring(arg[2]), select("#", ...)))
f:close()
%post -p <lua>
local f = assert(io.open("/var/lib/lua.log", "a"))
local st = posix.stat("/etc/luapkg/data")
f:write(string.format("post %s data=%s\n", tostring(arg[2]), st and st.type or "missing"))
f:close()
%filetriggerin -p <lua> -- /etc/luapkg
local f = assert(io.open("/var/lib/lua.log", "a"))
local p = rpm.next_file()
while p do
  f:write("filetriggerin " .. tostring(arg[2]) .. " " .. p .. "\n")
  p = rpm.next_file()
end
f:close()
%preun -p <lua>
local f = assert(io.open("/var/lib/lua.log", "a"))
f:write("preun " .. tostring(arg[2]) .. "\n")
f:close()
%postun -p <lua>
local f = assert(io.open("/var/lib/lua.log", "a"))
f:write("postun " .. tostring(arg[2]) .. " " .. tostring(posix.access("/etc/luapkg/data")) .. "\n")
f:close()
%files
/etc/luapkg
"##;

const LUAFAIL: &str = r#"
Name: luafail
Version: 1
Release: 1
Summary: failing Lua %pre
License: MIT
BuildArch: noarch
%description
l
%install
mkdir -p %{buildroot}/etc
echo x > %{buildroot}/etc/luafail
%pre -p <lua>
error("refusing on purpose")
%files
/etc/luafail
"#;

fn opts(mode: ScriptletMode) -> InstallOptions {
    InstallOptions {
        scriptlets: mode,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: None,
    }
}

fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let top = dir.join("build");
    let a = rpmbuild(&top, "luapkg", LUAPKG);
    let b = rpmbuild(&top, "luafail", LUAFAIL);
    (a[0].clone(), b[0].clone())
}

#[test]
fn lua_scriptlets_run_through_the_image_rpm_like_rpm() {
    require!(is_root(), "needs root (chroot, mount namespace)");
    require!(
        have("rpm") && have("rpmbuild"),
        "rpm/rpmbuild not installed"
    );
    let t = tempfile::tempdir().unwrap();
    let (pkg, fail) = build(t.path());
    let (o, u) = (t.path().join("oracle"), t.path().join("ours"));
    for r in [&o, &u] {
        std::fs::create_dir_all(r).unwrap();
        install_host_rpm(r).unwrap();
    }
    let started = now();
    let (ok, err) = rpm_install(&o, std::slice::from_ref(&pkg), true);
    assert!(ok, "oracle: {err}");
    let rep = install_packages(&u, std::slice::from_ref(&pkg), &opts(ScriptletMode::Run)).unwrap();
    assert_eq!(rep.scriptlets_run, 3, "{rep:?}");
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
    let log = |r: &Path| std::fs::read_to_string(r.join("var/lib/lua.log")).unwrap_or_default();
    assert_eq!(log(&u), log(&o));
    assert!(
        log(&u).starts_with("pre n=2 a1=<lua> a2=number:1 varargs=2\n")
            && log(&u).contains("\npost 1 data=regular\n"),
        "{}",
        log(&u)
    );
    // a Lua file trigger reads its paths with rpm.next_file(); it runs before %post, with the
    // owner's count before it is added (0), like rpm 4.18
    assert!(
        log(&u).contains("filetriggerin 0 /etc/luapkg/data\n"),
        "{}",
        log(&u)
    );
    // erase: %preun / %postun in Lua
    let (ok, _, e) = rpm(&o, &["-e", "--nodeps", "luapkg"]);
    assert!(ok, "rpm -e: {e}");
    erase_packages(&u, &["luapkg".to_string()], &opts(ScriptletMode::Run)).unwrap();
    assert_eq!(log(&u), log(&o));
    assert!(log(&u).contains("preun 0\npostun 0 "), "{}", log(&u));
    let ignore = ["var/lib/rpm", "var/tmp", "proc", "sys", "dev"];
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));

    // a failing Lua %pre fails the install like rpm's
    let (ok, _) = rpm_install(&o, std::slice::from_ref(&fail), true);
    assert!(!ok, "rpm accepted a failing %pre");
    let e = install_packages(&u, std::slice::from_ref(&fail), &opts(ScriptletMode::Run))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("luafail-1-1.noarch") && e.contains("%pre") && e.contains("refusing on purpose"),
        "{e}"
    );
    assert!(!u.join("etc/luafail").exists());
}

#[test]
fn lua_scriptlets_without_rpm_in_the_image_fail_clearly() {
    require!(
        is_root(),
        "needs root (otherwise the not-root error comes first)"
    );
    require!(have("rpmbuild"), "rpmbuild not installed");
    let t = tempfile::tempdir().unwrap();
    let (pkg, _) = build(t.path());
    let root = t.path().join("bare");
    let e = install_packages(&root, std::slice::from_ref(&pkg), &opts(ScriptletMode::Run))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("luapkg-1-1.noarch") && e.contains("%pre") && e.contains("Lua"),
        "{e}"
    );
    assert!(!root.join("etc").exists(), "unpacked before refusing");
    let r = install_packages(
        &root,
        std::slice::from_ref(&pkg),
        &opts(ScriptletMode::Skip),
    )
    .unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("luapkg") && w.contains("skipped")),
        "{:?}",
        r.warnings
    );
    assert!(root.join("etc/luapkg/data").exists());
    assert!(!root.join("var/lib/lua.log").exists());
}

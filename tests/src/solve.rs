//! The oracle universe for solver tests: one small package per dependency kind, built with
//! rpmbuild + createrepo_c (with comps), and a helper that runs our solver on it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use imagecore::repo::{RepoIndex, load_repo};
use imagecore::solve::{PassRequest, SolveRequest, solve};

use crate::rpmbuild::{FileSpec, PkgSpec, build, createrepo_c};
use crate::tools::have;

/// comps for the oracle universe.
pub const COMPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>core</id>
    <name>Core</name>
    <description>core set</description>
    <default>true</default>
    <uservisible>true</uservisible>
    <packagelist>
      <packagereq type="mandatory">base-files</packagereq>
      <packagereq type="default">editor</packagereq>
      <packagereq type="optional">games</packagereq>
      <packagereq type="conditional" requires="editor">editor-plugins</packagereq>
    </packagelist>
  </group>
  <group>
    <id>extras</id>
    <name>Extras</name>
    <packagelist>
      <packagereq type="mandatory">tool-b</packagereq>
    </packagelist>
  </group>
  <group>
    <id>fun</id>
    <name>Fun</name>
    <packagelist>
      <packagereq type="mandatory">games</packagereq>
    </packagelist>
  </group>
  <environment>
    <id>minimal-environment</id>
    <name>Minimal</name>
    <description>minimal environment</description>
    <display_order>1</display_order>
    <grouplist><groupid>core</groupid><groupid>extras</groupid></grouplist>
    <optionlist><groupid>fun</groupid></optionlist>
  </environment>
</comps>
"#;

/// One package per dependency kind the solver must handle like dnf.
pub fn universe() -> Vec<PkgSpec> {
    let f = FileSpec::file;
    vec![
        // versioned ranges: lib 1.0/2.1/3.0, app needs >= 2.0 and < 3.0
        PkgSpec::new("lib", "1.0")
            .arch("x86_64")
            .prov("lib-api = 1"),
        PkgSpec::new("lib", "2.1")
            .arch("x86_64")
            .prov("lib-api = 2"),
        PkgSpec::new("lib", "3.0")
            .arch("x86_64")
            .prov("lib-api = 3"),
        PkgSpec::new("versioned", "1.0")
            .req("lib >= 2.0")
            .req("lib < 3.0"),
        PkgSpec::new("api-user", "1.0").req("lib-api >= 2"),
        // file deps: /bin/sh via Provides, a primary path, a filelists-only path
        PkgSpec::new("shell", "5.1")
            .arch("x86_64")
            .prov("/bin/sh")
            .file(f("/usr/bin/sh", "#!sh")),
        PkgSpec::new("docs", "1.0").file(f("/usr/share/docs/README", "readme")),
        PkgSpec::new("needs-files", "1.0")
            .req("/bin/sh")
            .req("/usr/bin/sh")
            .req("/usr/share/docs/README"),
        // rich deps
        PkgSpec::new("tool-a", "1.0").conflicts("tool-b"),
        PkgSpec::new("tool-b", "1.0").conflicts("tool-a"),
        PkgSpec::new("extras", "1.0"),
        PkgSpec::new("kernel", "6.1.0")
            .release("1")
            .arch("x86_64")
            .prov("installonlypkg(kernel)"),
        PkgSpec::new("kernel", "6.2.0")
            .release("1")
            .arch("x86_64")
            .prov("installonlypkg(kernel)"),
        PkgSpec::new("rich-or", "1.0").req("(tool-a or tool-b)"),
        PkgSpec::new("rich-if", "1.0")
            .req("(extras if kernel)")
            .req("kernel"),
        PkgSpec::new("rich-if-plain", "1.0")
            .req("(extras if shell)")
            .req("shell"),
        PkgSpec::new("rich-if-no", "1.0").req("(extras if nonexistent-thing)"),
        PkgSpec::new("rich-with", "1.0").req("(lib >= 2.0 with lib < 3.0)"),
        PkgSpec::new("rich-else", "1.0").req("(docs if shell else extras)"),
        PkgSpec::new("rich-and", "1.0").req("(docs and extras)"),
        PkgSpec::new("rich-without", "1.0").req("(lib without lib-api = 3)"),
        // nested rich deps
        PkgSpec::new("nest-or-and", "1.0").req("(nonexistent-x or (docs and extras))"),
        PkgSpec::new("nest-or-and-first", "1.0").req("(editor or (docs and extras))"),
        PkgSpec::new("nest-if-or", "1.0")
            .req("(extras if (shell or nonexistent-x))")
            .req("shell"),
        PkgSpec::new("nest-if-or-no", "1.0").req("(extras if (nonexistent-x or nonexistent-y))"),
        PkgSpec::new("nest-if-and", "1.0")
            .req("(games if (shell and docs))")
            .req("shell"),
        PkgSpec::new("nest-if-and-yes", "1.0")
            .req("(games if (shell and docs))")
            .req("shell")
            .req("docs"),
        PkgSpec::new("nest-or-with", "1.0").req("(nonexistent-x or (lib >= 2.0 with lib < 3.0))"),
        PkgSpec::new("nest-or-without", "1.0").req("(nonexistent-x or (lib without lib-api = 3))"),
        PkgSpec::new("nest-and-if", "1.0")
            .req("((docs if shell) and extras)")
            .req("shell"),
        PkgSpec::new("nest-then-or-and", "1.0")
            .req("((nonexistent-x or (docs and games)) if shell)")
            .req("shell"),
        PkgSpec::new("nest-or-unless", "1.0")
            .req("(nonexistent-x or (docs unless shell else games))"),
        PkgSpec::new("nest-unless-else", "1.0")
            .req("(nonexistent-x or (docs unless shell else extras))")
            .req("shell"),
        PkgSpec::new("nest-if-with", "1.0")
            .req("(extras if (lib >= 2.0 with lib < 3.0))")
            .req("lib < 3.0"),
        // conflicts
        PkgSpec::new("old", "2.0"),
        PkgSpec::new("old", "4.0"),
        PkgSpec::new("conflicter", "1.0").conflicts("old < 3"),
        // obsoletes
        PkgSpec::new("legacy", "0.5"),
        PkgSpec::new("modern", "1.0").obsoletes("legacy < 1.0"),
        // weak deps
        PkgSpec::new("weak-host", "1.0")
            .recommends("weak-rec")
            .req("lib"),
        PkgSpec::new("weak-rec", "1.0"),
        PkgSpec::new("weak-sup", "1.0").supplements("weak-host"),
        // multiple providers of one capability
        PkgSpec::new("zeta-mail", "1.0").prov("mta"),
        PkgSpec::new("alpha-mail", "1.0").prov("mta"),
        PkgSpec::new("mail-user", "1.0").req("mta"),
        // epochs
        PkgSpec::new("epoched", "1.0").epoch(1),
        PkgSpec::new("epoched", "9.0"),
        // tilde and caret
        PkgSpec::new("tilde", "1.0~rc1"),
        PkgSpec::new("tilde", "1.0"),
        PkgSpec::new("caret", "1.0"),
        PkgSpec::new("caret", "1.0^git1"),
        PkgSpec::new("needs-caret", "1.0").req("caret > 1.0"),
        // groups
        PkgSpec::new("base-files", "1.0").req_pre("shell"),
        PkgSpec::new("editor", "1.0"),
        PkgSpec::new("games", "1.0"),
        PkgSpec::new("editor-plugins", "1.0"),
        // multilib: the i686 build is only for multilib images
        PkgSpec::new("multi", "1.0").arch("x86_64"),
        PkgSpec::new("multi", "1.0").arch("i686"),
        PkgSpec::new("multi-user", "1.0").req("multi"),
        // weak: rich supplements
        PkgSpec::new("langpack", "1.0").supplements("(weak-host and lib)"),
        // unsat
        PkgSpec::new("broken", "1.0").req("does-not-exist >= 2"),
    ]
}

/// The built oracle repository.
pub struct Repo {
    /// Its directory.
    pub dir: PathBuf,
    /// Its parsed index.
    pub index: RepoIndex,
}

/// Build (once per test binary) the oracle repository; `None` without rpmbuild/createrepo_c.
pub fn repo() -> Option<&'static Repo> {
    static R: OnceLock<Option<Repo>> = OnceLock::new();
    R.get_or_init(|| {
        if !(have("rpmbuild") && have("createrepo_c")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap().keep().join("repo");
        build(&universe(), &dir).unwrap();
        let comps = dir.parent().unwrap().join("comps.xml");
        std::fs::write(&comps, COMPS).unwrap();
        createrepo_c(&dir, Some(&comps)).unwrap();
        let index = load_repo(&dir, "test").unwrap();
        Some(Repo { dir, index })
    })
    .as_ref()
}

/// Our NVRA set for `passes` (no excludes).
pub fn ours(r: &Repo, passes: Vec<PassRequest>, weak: bool) -> Result<BTreeSet<String>, String> {
    ours_ex(r, passes, weak, &[])
}

/// Our NVRA set for `passes` with `excludes`.
pub fn ours_ex(
    r: &Repo,
    passes: Vec<PassRequest>,
    weak: bool,
    excludes: &[&str],
) -> Result<BTreeSet<String>, String> {
    let repos = std::slice::from_ref(&r.index);
    let req = SolveRequest {
        repos,
        arch: "x86_64".into(),
        passes,
        weak_deps: weak,
        multilib: false,
        excludes: excludes.iter().map(|s| s.to_string()).collect(),
    };
    solve(&req)
        .map(|l| l.all_packages().map(|p| p.nvra()).collect())
        .map_err(|e| e.to_string())
}

//! pkglist grammar: every directive, and every xCAT bug we fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imagecore::lists::{PkgPass, Pkglist};
use imagecore::spec::{Located, Origin};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn loc(p: &Path) -> Located<PathBuf> {
    Located::new(p.to_path_buf(), Origin::new("spec.toml", 7, 12))
}

fn load(files: &[&Path], env: &[(&str, &str)]) -> Result<Pkglist, String> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let files: Vec<_> = files.iter().map(|p| loc(p)).collect();
    Pkglist::load(&files, &env).map_err(|e| e.to_string())
}

fn names(v: &[imagecore::lists::PkgEntry]) -> Vec<String> {
    v.iter()
        .map(|e| match &e.subdir {
            Some(d) => format!("{d}|{}", e.name),
            None => e.name.clone(),
        })
        .collect()
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    (d, root)
}

#[test]
fn entries_groups_comments_blanks_subdirs() {
    let (_d, r) = tmp();
    let f = write(
        &r,
        "a.pkglist",
        "# a comment\n\n@minimal-environment\n  chrony   \n@ruby:2.6\nxcat/xcat-dep/rh9/x86_64/goconserver\n\
         vim # inline comment\n#SOMETHING_ELSE#\n\tnfs-utils rsync\n",
    );
    let l = load(&[&f], &[]).unwrap();
    assert_eq!(l.passes.len(), 1);
    assert_eq!(
        names(&l.passes[0].install),
        [
            "@minimal-environment",
            "chrony",
            "@ruby:2.6",
            "xcat/xcat-dep/rh9/x86_64|goconserver",
            "vim",
            "nfs-utils",
            "rsync"
        ]
    );
    let rsync = &l.passes[0].install[6];
    assert_eq!(rsync.origin, Origin::new(&f, 9, 12));
    assert_eq!(l.files_read, vec![f]);
}

/// xCAT joins lines with ',' and splits again; here a comma is never a separator.
#[test]
fn comma_inside_a_line_is_an_error_not_a_split() {
    let (_d, r) = tmp();
    let f = write(&r, "a.pkglist", "bash\n  vim,emacs\n");
    let e = load(&[&f], &[]).unwrap_err();
    assert!(e.starts_with(&format!("{}:2:3: ", f.display())), "{e}");
    assert!(e.contains("a comma does not separate packages"), "{e}");
    assert!(e.contains("own line"), "{e}");
}

/// xCAT only strips trailing whitespace, so an indented `-pkg` became an install of "-pkg".
#[test]
fn indented_removals_work() {
    let (_d, r) = tmp();
    let f = write(
        &r,
        "a.pkglist",
        "bash\n   -firewalld\n\t--NetworkManager  \n  - spaced\n",
    );
    let l = load(&[&f], &[]).unwrap();
    let p = &l.passes[0];
    assert_eq!(names(&p.install), ["bash"]);
    assert_eq!(names(&p.pre_remove), ["firewalld", "spaced"]);
    assert_eq!(names(&p.post_remove), ["NetworkManager"]);
    assert_eq!(p.pre_remove[0].origin, Origin::new(&f, 2, 5));
}

/// xCAT ignores removals in distro pkglists; the same grammar keeps them in both kinds of list.
#[test]
fn removals_in_both_distro_and_other_lists() {
    let (_d, r) = tmp();
    let distro = write(
        &r,
        "compute.pkglist",
        "kernel\n-firewalld\n--dracut-config-rescue\n",
    );
    let other = write(
        &r,
        "compute.otherpkgs.pkglist",
        "xcat/xcat-core/xCATsn\n-xcat/xcat-core/xCAT-old\n--perl-doc\n",
    );
    for (f, inst, pre, post) in [
        (
            &distro,
            vec!["kernel"],
            vec!["firewalld"],
            vec!["dracut-config-rescue"],
        ),
        (
            &other,
            vec!["xcat/xcat-core|xCATsn"],
            vec!["xcat/xcat-core|xCAT-old"],
            vec!["perl-doc"],
        ),
    ] {
        let l = load(&[f], &[]).unwrap();
        assert_eq!(names(&l.passes[0].install), inst);
        assert_eq!(names(&l.passes[0].pre_remove), pre);
        assert_eq!(names(&l.passes[0].post_remove), post);
    }
}

#[test]
fn removal_grammar_errors() {
    let (_d, r) = tmp();
    let f = write(&r, "a.pkglist", "-a -b\n");
    let e = load(&[&f], &[]).unwrap_err();
    assert!(e.starts_with(&format!("{}:1:4: ", f.display())), "{e}");
    assert!(e.contains("own line"), "{e}");
    let f = write(&r, "b.pkglist", "ok\n--\n");
    let e = load(&[&f], &[]).unwrap_err();
    assert!(e.starts_with(&format!("{}:2:1: ", f.display())), "{e}");
    assert!(e.contains("needs a package name"), "{e}");
}

/// xCAT resolves nested includes against the *top-level* file's directory.
#[test]
fn nested_includes_resolve_against_the_including_file() {
    let (_d, r) = tmp();
    let top = write(
        &r,
        "top.pkglist",
        "first\n#INCLUDE:sub/mid.pkglist#\nlast\n",
    );
    let mid = write(&r, "sub/mid.pkglist", "mid\n  #INCLUDE: leaf.pkglist #\n");
    let leaf = write(&r, "sub/leaf.pkglist", "leaf-from-sub\n");
    write(&r, "leaf.pkglist", "leaf-from-top-dir-WRONG\n");
    let l = load(&[&top], &[]).unwrap();
    assert_eq!(
        names(&l.passes[0].install),
        ["first", "mid", "leaf-from-sub", "last"]
    );
    assert_eq!(l.passes[0].install[2].origin, Origin::new(&leaf, 1, 1));
    assert_eq!(l.files_read, vec![top, mid, leaf]);
}

#[test]
fn include_cycle_is_reported_with_the_chain() {
    let (_d, r) = tmp();
    let a = write(&r, "a.pkglist", "x\n#INCLUDE:d/b.pkglist#\n");
    let b = write(&r, "d/b.pkglist", "y\n\n#INCLUDE:../a.pkglist#\n");
    let e = load(&[&a], &[]).unwrap_err();
    assert!(e.starts_with(&format!("{}:3:1: ", b.display())), "{e}");
    assert!(
        e.contains(&format!(
            "#INCLUDE cycle: {} -> {} -> {}",
            a.display(),
            b.display(),
            a.display()
        )),
        "{e}"
    );
    // self-include
    let s = write(&r, "self.pkglist", "#INCLUDE:self.pkglist#\n");
    let e = load(&[&s], &[]).unwrap_err();
    assert!(e.contains("#INCLUDE cycle"), "{e}");
    // the same file twice (a diamond) is fine
    let c = write(
        &r,
        "c.pkglist",
        "#INCLUDE:leaf.pkglist#\n#INCLUDE:leaf.pkglist#\n",
    );
    write(&r, "leaf.pkglist", "z\n");
    let l = load(&[&c], &[]).unwrap();
    assert_eq!(names(&l.passes[0].install), ["z", "z"]);
}

#[test]
fn var_includes_expand_from_environvar() {
    let (_d, r) = tmp();
    write(&r, "rocky9/extra.pkglist", "from-var\n");
    write(&r, "rocky9-x86_64.pkglist", "from-braced\n");
    let f = write(
        &r,
        "a.pkglist",
        "#INCLUDE:$OS/extra.pkglist#\n#INCLUDE:${OS}-${ARCH}.pkglist#\n",
    );
    let l = load(&[&f], &[("OS", "rocky9"), ("ARCH", "x86_64")]).unwrap();
    assert_eq!(names(&l.passes[0].install), ["from-var", "from-braced"]);
    let e = load(&[&f], &[("OS", "rocky9")]).unwrap_err();
    assert!(e.starts_with(&format!("{}:2:1: ", f.display())), "{e}");
    assert!(e.contains("unknown variable $ARCH"), "{e}");
    assert!(e.contains("environvar"), "{e}");
}

#[test]
fn missing_files_name_where_they_are_named() {
    let (_d, r) = tmp();
    let f = write(&r, "a.pkglist", "x\n#INCLUDE:nope.pkglist#\n");
    let e = load(&[&f], &[]).unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{}:2:1: cannot read {}",
            f.display(),
            r.join("nope.pkglist").display()
        )),
        "{e}"
    );
    let e = load(&[&r.join("gone.pkglist")], &[]).unwrap_err();
    assert!(e.starts_with("spec.toml:7:12: cannot read "), "{e}");
    let bad = write(&r, "bad.pkglist", "#INCLUDE:x\n");
    let e = load(&[&bad], &[]).unwrap_err();
    assert!(e.contains("closing '#'"), "{e}");
}

/// Passes restart at 1 for each file; same-numbered passes of several files merge (as xCAT).
#[test]
fn passes_env_and_merging_across_files() {
    let (_d, r) = tmp();
    let a = write(
        &r,
        "a.pkglist",
        "a1\n#ENV:INUCLIENTS=1 INUBOSTYPE=1#\n#NEW_INSTALL_LIST#\na2\n-old\n#NEW_INSTALL_LIST#\n#ENV:X=y=z#\na3\n",
    );
    let b = write(&r, "b.pkglist", "b1\n#NEW_INSTALL_LIST#\nb2\n");
    let l = load(&[&a, &b], &[]).unwrap();
    assert_eq!(l.passes.len(), 3);
    let p: Vec<(Vec<String>, Vec<String>)> = l
        .passes
        .iter()
        .map(|p: &PkgPass| (names(&p.install), names(&p.pre_remove)))
        .collect();
    assert_eq!(p[0].0, ["a1", "b1"]);
    assert_eq!(p[1], (vec!["a2".into(), "b2".into()], vec!["old".into()]));
    assert_eq!(p[2].0, ["a3"]);
    assert_eq!(
        l.passes[0].env,
        [
            ("INUCLIENTS".into(), "1".into()),
            ("INUBOSTYPE".into(), "1".into())
        ]
    );
    assert_eq!(l.passes[2].env, [("X".into(), "y=z".into())]);
    // an #ENV without '=' is an error
    let c = write(&r, "c.pkglist", "#ENV:NOVALUE#\n");
    let e = load(&[&c], &[]).unwrap_err();
    assert!(e.contains("NAME=value"), "{e}");
    // an empty file still gives pass 1
    let empty = write(&r, "empty.pkglist", "# nothing\n");
    assert_eq!(
        load(&[&empty], &[]).unwrap().passes,
        vec![PkgPass::default()]
    );
}

/// A #NEW_INSTALL_LIST# inside an included file advances the including file's pass (textual
/// inclusion, as xCAT).
#[test]
fn new_install_list_inside_an_include() {
    let (_d, r) = tmp();
    write(&r, "inc.pkglist", "i1\n#NEW_INSTALL_LIST#\ni2\n");
    let f = write(&r, "a.pkglist", "a\n#INCLUDE:inc.pkglist#\nb\n");
    let l = load(&[&f], &[]).unwrap();
    assert_eq!(names(&l.passes[0].install), ["a", "i1"]);
    assert_eq!(names(&l.passes[1].install), ["i2", "b"]);
}

//! exlist: grammar, and `keep` checked against real GNU find(1) run the way xCAT's packimage
//! runs it (excludes AND-ed as `! -path`, re-includes OR-ed in a second find, union, dedup).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use imagecore::lists::{ExRule, Exlist};
use imagecore::spec::{Located, Origin};
use imagecore::tree::manifest::{Entry, Kind, Manifest};
use proptest::prelude::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn have_find() -> bool {
    let ok = Command::new("find")
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GNU findutils")
        });
    if !ok {
        println!("SKIPPED: GNU find is not installed");
    }
    ok
}

/// A small tree with names that exercise the matcher.
fn make_tree(root: &Path) {
    for f in [
        "boot/vmlinuz-5.14",
        "boot/grub2/grub.cfg",
        "bootstrap/keep",
        "usr/share/doc/bash/README",
        "usr/share/doc/x y/notes.txt",
        "usr/share/docs-not/file",
        "usr/share/locale/en_US/LC_MESSAGES/a.mo",
        "usr/share/locale/de/LC_MESSAGES/a.mo",
        "usr/share/locale/C.utf8/x",
        "usr/share/locale/locale.alias",
        "usr/share/zoneinfo/Europe/Prague",
        "usr/share/zoneinfo/UTC",
        "usr/lib/locale/locale-archive",
        "usr/lib/locale/en_GB/LC_TIME",
        "usr/lib/locale/fr_FR/LC_TIME",
        "usr/lib64/perl5/Encode/CN/x.pm",
        "usr/include/stdio.h",
        "var/lib/dnf/history.sqlite",
        "var/lib/yum/x",
        "tmp/.X11-unix/X0",
        "tmp/file",
        "etc/a[1].conf",
        "etc/star*name",
        "etc/q?mark",
        "etc/back\\slash",
        "etc/.hidden",
        "etc/sub/deep/er/file.conf",
        "opt/app/bin/tool",
        "opt/app/share/doc/x",
    ] {
        write(root, f, "x");
    }
    std::fs::create_dir_all(root.join("empty/dir")).unwrap();
    std::os::unix::fs::symlink("../usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
}

fn run_find(root: &Path, args: &[String]) -> Vec<String> {
    let out = Command::new("find")
        .arg(".")
        .arg("-xdev")
        .args(args)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "find failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What xCAT's packimage puts in the archive for these rules (as a set, without ".").
fn xcat_selection(root: &Path, rules: &[ExRule]) -> BTreeSet<String> {
    let mut ex = Vec::new();
    for r in rules.iter().filter(|r| !r.include) {
        if !ex.is_empty() {
            ex.push("-a".to_string());
        }
        ex.extend(["!".to_string(), "-path".to_string(), r.pattern.clone()]);
    }
    let mut set: BTreeSet<String> = run_find(root, &ex).into_iter().collect();
    let mut inc = Vec::new();
    for r in rules.iter().filter(|r| r.include) {
        if !inc.is_empty() {
            inc.push("-o".to_string());
        }
        inc.extend(["-path".to_string(), r.pattern.clone()]);
    }
    if !inc.is_empty() {
        set.extend(run_find(root, &inc));
    }
    set.remove(".");
    set.into_iter()
        .map(|p| p.trim_start_matches("./").to_string())
        .collect()
}

fn all_paths(root: &Path) -> Vec<String> {
    run_find(root, &[])
        .into_iter()
        .filter(|p| p != ".")
        .map(|p| p.trim_start_matches("./").to_string())
        .collect()
}

fn rules(spec: &[&str]) -> Vec<ExRule> {
    spec.iter()
        .map(|s| match s.strip_prefix('+') {
            Some(p) => ExRule {
                include: true,
                pattern: p.into(),
                origin: Origin::new("t", 1, 1),
            },
            None => ExRule {
                include: false,
                pattern: s.to_string(),
                origin: Origin::new("t", 1, 1),
            },
        })
        .collect()
}

fn ours(root: &Path, rules: Vec<ExRule>) -> BTreeSet<String> {
    let ex = Exlist::from_rules(rules, vec![]);
    all_paths(root).into_iter().filter(|p| ex.keep(p)).collect()
}

const RULE_SETS: &[&[&str]] = &[
    // modelled on xCAT's compute.rhels9 exlist
    &[
        "./boot*",
        "./usr/include*",
        "./usr/lib/locale*",
        "./usr/lib64/perl5/Encode/CN*",
        "./usr/share/doc*",
        "./usr/share/locale/*",
        "+./usr/share/locale/en_US*",
        "+./usr/share/locale/C*",
        "+./usr/share/locale/locale.alias",
        "+./usr/lib/locale/locale-archive",
        "+./usr/lib/locale/en*",
        "./usr/share/zoneinfo*",
        "./var/lib/yum*",
        "./tmp*",
    ],
    // a directory without '*' drops only the directory entry (find does not prune)
    &["./usr/share/doc", "./opt/app"],
    // '*' and '?' match '/', brackets, negation, escapes, hidden files
    &[
        "./etc/*.conf",
        "./opt/*/doc*",
        "./usr/share/zoneinfo/?????/*",
        "./etc/[ab][[]1]*",
    ],
    &[
        "./etc/[!a-d]*",
        "+./etc/sub/*/file.conf",
        "./etc/star\\*name",
        "./etc/q\\?mark",
    ],
    &[
        "./etc/back\\\\slash",
        "./etc/.h*",
        "./*/locale/[[:lower:]][[:lower:]]*",
        "./empty*",
    ],
    // only re-includes (xCAT would duplicate everything they match)
    &["+./tmp*", "+./boot/grub2*"],
    // an include whose parents are excluded
    &["./opt*", "+./opt/app/bin/tool"],
    &["./[bu]*/[!s]*", "./*[0-9]*", "+./*/*/*/*"],
    // '?' and brackets also match '/'
    &[
        "./etc?sub*",
        "./usr/share/doc?bash?README",
        "./var[/]lib[!a]d*",
        "./tmp/[.]X11*",
    ],
];

#[test]
fn keep_matches_gnu_find_like_packimage() {
    if !have_find() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    make_tree(d.path());
    assert!(all_paths(d.path()).len() > 50);
    for set in RULE_SETS {
        let r = rules(set);
        let want = xcat_selection(d.path(), &r);
        let got = ours(d.path(), r);
        assert_eq!(got, want, "rules {set:?}");
    }
}

fn pattern_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "*",
        "*",
        "?",
        "/",
        "/",
        "e",
        "t",
        "c",
        "s",
        "u",
        "r",
        "o",
        "[a-e]",
        "[!l]",
        "[^/]",
        ".",
        "sh",
        "doc",
        "locale",
        "-",
        "_",
        "\\*",
        "[[:digit:]]",
        "[",
        "]",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random patterns over the same tree: our matcher agrees with find -path.
    #[test]
    fn random_patterns_agree_with_find(
        pats in prop::collection::vec((any::<bool>(), prop::collection::vec(pattern_piece(), 1..7)), 1..4)
    ) {
        if !have_find() {
            return Ok(());
        }
        let d = tempfile::tempdir().unwrap();
        make_tree(d.path());
        let spec: Vec<String> = pats
            .iter()
            .map(|(inc, pieces)| format!("{}./{}", if *inc { "+" } else { "" }, pieces.concat()))
            .collect();
        let refs: Vec<&str> = spec.iter().map(String::as_str).collect();
        let r = rules(&refs);
        prop_assert_eq!(ours(d.path(), r.clone()), xcat_selection(d.path(), &r), "rules {:?}", spec);
    }
}

fn entry(path: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: Kind::Dir,
        mode: 0o700,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: BTreeMap::new(),
    }
}

#[test]
fn filter_keeps_ancestors_of_reincluded_entries_without_duplicates() {
    let mut m = Manifest {
        entries: [
            "opt",
            "opt/app",
            "opt/app/bin",
            "opt/app/bin/tool",
            "opt/app/lib",
            "usr",
            "usr/x",
        ]
        .into_iter()
        .map(entry)
        .collect(),
    };
    m.sort();
    let ex = Exlist::from_rules(rules(&["./opt*", "+./opt/app/bin/tool", "+./usr*"]), vec![]);
    let got: Vec<String> = ex.filter(&m).entries.into_iter().map(|e| e.path).collect();
    assert_eq!(
        got,
        [
            "opt",
            "opt/app",
            "opt/app/bin",
            "opt/app/bin/tool",
            "usr",
            "usr/x"
        ]
    );
    // ancestors keep their own metadata
    assert_eq!(ex.filter(&m).entries[0], m.entries[0]);
}

#[test]
fn grammar_includes_comments_and_errors() {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    write(
        &root,
        "inc/site.exlist",
        "./var/cache* # caches\n#INCLUDE:more.exlist#\n",
    );
    write(&root, "inc/more.exlist", "+./var/cache/keep*\n");
    let top = write(
        &root,
        "compute.exlist",
        "# comment\n\n./tmp*\n  -./boot*   # kernel ships separately\n#INCLUDE:inc/site.exlist#\n",
    );
    let at = Origin::new("spec.toml", 3, 4);
    let ex = Exlist::load(&[Located::new(top.clone(), at.clone())]).unwrap();
    let r: Vec<(bool, &str, u32)> = ex
        .rules
        .iter()
        .map(|r| (r.include, r.pattern.as_str(), r.origin.line))
        .collect();
    assert_eq!(
        r,
        [
            (false, "./tmp*", 3),
            (false, "./boot*", 4),
            (false, "./var/cache*", 1),
            (true, "./var/cache/keep*", 1)
        ]
    );
    assert_eq!(ex.rules[1].origin.col, 3);
    assert_eq!(ex.rules[3].origin.file, root.join("inc/more.exlist"));
    assert_eq!(ex.files_read.len(), 3);
    assert!(ex.keep("var/cache/keep/x") && !ex.keep("var/cache/y") && ex.keep("etc"));

    let bad = write(&root, "bad.exlist", "./ok*\nusr/share/doc*\n");
    let e = Exlist::load(&[Located::new(bad.clone(), at.clone())])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}:2:1: ", bad.display())), "{e}");
    assert!(e.contains("write \"./usr/share/doc*\""), "{e}");
    let bad = write(&root, "bad2.exlist", "\n   +./usr/share/doc/\n");
    let e = Exlist::load(&[Located::new(bad.clone(), at.clone())])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}:2:4: ", bad.display())), "{e}");
    assert!(
        e.contains("ends with '/'") && e.contains("\"./usr/share/doc*\""),
        "{e}"
    );
    let cyc = write(&root, "cyc.exlist", "#INCLUDE:cyc.exlist#\n");
    let e = Exlist::load(&[Located::new(cyc, at)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("#INCLUDE cycle"), "{e}");
}

/// Filtering a large manifest with a realistic exlist is fast (prints the time; no threshold).
#[test]
fn filter_large_manifest() {
    let ex = Exlist::load(&[Located::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/compute.exlist"),
        Origin::new("spec.toml", 1, 1),
    )])
    .unwrap();
    let mut m = Manifest::default();
    for top in [
        "usr/share/doc",
        "usr/share/locale",
        "usr/lib64",
        "etc",
        "var/lib/dnf",
    ] {
        for i in 0..20_000 {
            m.entries.push(entry(&format!("{top}/d{}/f{i}", i % 100)));
        }
    }
    m.sort();
    let t = std::time::Instant::now();
    let out = ex.filter(&m);
    println!(
        "filtered {} -> {} entries in {:?}",
        m.entries.len(),
        out.entries.len(),
        t.elapsed()
    );
    assert!(
        out.entries
            .iter()
            .all(|e| !e.path.starts_with("usr/share/doc/"))
    );
    assert!(out.entries.iter().any(|e| e.path.starts_with("usr/lib64/")));
}

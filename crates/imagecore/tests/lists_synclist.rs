//! synclist grammar: entries, directory rules, globs, noderange lines, sections, variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imagecore::lists::{SectionKind, Synclist};
use imagecore::spec::{Located, Origin};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    (d, root)
}

fn loc(p: &Path) -> Vec<Located<PathBuf>> {
    vec![Located::new(
        p.to_path_buf(),
        Origin::new("spec.toml", 9, 14),
    )]
}

#[test]
fn entries_directory_rules_and_dest_paths() {
    let (_d, r) = tmp();
    for f in [
        "files/hosts",
        "files/motd",
        "files/issue",
        "conf/a.conf",
        "conf/b.conf",
        "conf/.hidden.conf",
        "tree/x/y",
    ] {
        write(&r, f, "x");
    }
    let sl = write(
        &r,
        "compute.synclist",
        &format!(
            "# comment\n\nfiles/hosts -> /etc/hosts\nfiles/motd files/issue -> /etc\n\
             {abs}/files/hosts -> /etc/copies/ ;\nconf/*.conf -> /etc/app\ntree -> /opt/tree\n\
             files/hosts -> /etc//x/./hosts2\n",
            abs = r.display()
        ),
    );
    let s = Synclist::load(&loc(&sl)).unwrap();
    let got: Vec<(Vec<String>, &str, bool, u32)> = s
        .entries
        .iter()
        .map(|e| {
            let srcs = e
                .srcs
                .iter()
                .map(|p| p.strip_prefix(&r).unwrap().display().to_string())
                .collect();
            (srcs, e.dst.as_str(), e.dst_is_dir, e.origin.line)
        })
        .collect();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        [
            (v(&["files/hosts"]), "/etc/hosts", false, 3),
            (v(&["files/motd", "files/issue"]), "/etc", true, 4),
            (v(&["files/hosts"]), "/etc/copies/", true, 5),
            // glob: sorted, dot files not matched by '*' (shell rules)
            (v(&["conf/a.conf", "conf/b.conf"]), "/etc/app", true, 6),
            // a directory source goes into the destination (rsync -r)
            (v(&["tree"]), "/opt/tree", true, 7),
            (v(&["files/hosts"]), "/etc//x/./hosts2", false, 8),
        ]
    );
    let e = &s.entries;
    assert_eq!(s.dest_path(&e[0], &e[0].srcs[0]), "etc/hosts");
    assert_eq!(s.dest_path(&e[1], &e[1].srcs[1]), "etc/issue");
    assert_eq!(s.dest_path(&e[2], &e[2].srcs[0]), "etc/copies/hosts");
    assert_eq!(s.dest_path(&e[3], &e[3].srcs[1]), "etc/app/b.conf");
    assert_eq!(s.dest_path(&e[4], &e[4].srcs[0]), "opt/tree/tree");
    assert_eq!(s.dest_path(&e[5], &e[5].srcs[0]), "etc/x/hosts2");
    assert!(s.skipped.is_empty() && s.sections.is_empty());
    assert_eq!(s.files_read, vec![sl]);
}

#[test]
fn noderange_lines_are_skipped_and_reported() {
    let (_d, r) = tmp();
    write(&r, "hosts", "x");
    let sl = write(
        &r,
        "s.synclist",
        "hosts -> (node1,node[2-3]) /etc/hosts\nhosts -> /etc/hosts\n",
    );
    let s = Synclist::load(&loc(&sl)).unwrap();
    assert_eq!(s.entries.len(), 1);
    assert_eq!(
        s.skipped,
        vec![(
            Origin::new(&sl, 1, 1),
            "hosts -> (node1,node[2-3]) /etc/hosts".to_string()
        )]
    );
}

#[test]
fn sections_are_parsed_and_kept_not_applied() {
    let (_d, r) = tmp();
    write(&r, "hosts", "x");
    let sl = write(
        &r,
        "s.synclist",
        "hosts -> /etc/hosts\n\nEXECUTE:\n/tmp/prog.post\nEXECUTEALWAYS:\n  /tmp/always.sh  \n# c\n\
         APPEND:\n/etc/app/hosts -> /etc/hosts\nMERGE:\n/custom/passwd -> /etc/passwd\n\
         hosts -> /etc/not-an-entry\n",
    );
    let s = Synclist::load(&loc(&sl)).unwrap();
    assert_eq!(s.entries.len(), 1);
    let kinds: Vec<(SectionKind, Vec<&str>)> = s
        .sections
        .iter()
        .map(|x| (x.kind, x.lines.iter().map(|(_, l)| l.as_str()).collect()))
        .collect();
    assert_eq!(
        kinds,
        [
            (SectionKind::Execute, vec!["/tmp/prog.post"]),
            (SectionKind::ExecuteAlways, vec!["/tmp/always.sh"]),
            (SectionKind::Append, vec!["/etc/app/hosts -> /etc/hosts"]),
            (
                SectionKind::Merge,
                vec![
                    "/custom/passwd -> /etc/passwd",
                    "hosts -> /etc/not-an-entry"
                ]
            ),
        ]
    );
    assert_eq!(s.sections[1].lines[0].0, Origin::new(&sl, 6, 1));
}

#[test]
fn variables_expand_from_environvar() {
    let (_d, r) = tmp();
    write(&r, "site1/chrony.conf", "x");
    let sl = write(&r, "s.synclist", "$SITE/chrony.conf -> /etc/${NAME}.conf\n");
    let env = BTreeMap::from([
        ("SITE".to_string(), "site1".to_string()),
        ("NAME".to_string(), "chrony".to_string()),
    ]);
    let s = Synclist::load_with_env(&loc(&sl), &env).unwrap();
    assert_eq!(s.entries[0].srcs, vec![r.join("site1/chrony.conf")]);
    assert_eq!(s.entries[0].dst, "/etc/chrony.conf");
    let e = Synclist::load(&loc(&sl)).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:1:1: unknown variable $SITE", sl.display())),
        "{e}"
    );
}

#[test]
fn errors_name_the_line() {
    let (_d, r) = tmp();
    write(&r, "ok", "x");
    let cases = [
        ("ok -> /etc/ok\nmissing -> /etc/x\n", "2:1", "cannot read"),
        (
            "ok -> /etc/ok\n\n*.nomatch -> /etc/\n",
            "3:1",
            "matches no file",
        ),
        ("ok -> etc/relative\n", "1:1", "absolute path"),
        ("ok -> /etc/../x\n", "1:1", "absolute path"),
        ("ok /etc/x\n", "1:1", "source... -> /destination"),
        ("EXECUTE: /x\n", "1:1", "alone on its line"),
    ];
    for (text, at, msg) in cases {
        let sl = write(&r, "s.synclist", text);
        let e = Synclist::load(&loc(&sl)).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:{at}: ", sl.display())),
            "{text:?}: {e}"
        );
        assert!(e.contains(msg), "{text:?}: {e}");
    }
    let e = Synclist::load(&loc(&r.join("nope.synclist")))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("spec.toml:9:14: cannot read"), "{e}");
}

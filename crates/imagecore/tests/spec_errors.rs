//! Spec errors: each names the exact file:line:col of the offending key/value and says what to do.

use std::path::{Path, PathBuf};

use imagecore::Spec;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// A spec that loads: capture of an existing tree.
fn valid_base(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("tree")).unwrap();
    "[osimage]\nname = \"c\"\nosvers = \"rocky9.4\"\narch = \"x86_64\"\n\n[source]\nrootimg = \"tree\"\n"
        .to_string()
}

fn err(path: &Path) -> String {
    let e = Spec::load(path).expect_err("spec must not load");
    e.to_string()
}

fn canon(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

#[test]
fn valid_base_loads() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "s.toml", &valid_base(d.path()));
    let s = Spec::load(&p).unwrap();
    assert_eq!(s.osimage.name, "c");
    assert_eq!(s.osimage.profile, "c");
    assert_eq!(s.image.rootimgdir, canon(d.path()) + "/build/c");
}

#[test]
fn unknown_key_names_the_key() {
    let d = tempfile::tempdir().unwrap();
    let text = valid_base(d.path()) + "\n[image]\npermission = \"755\"\n  exlists = [\"x\"]\n";
    let p = write(d.path(), "s.toml", &text);
    let e = err(&p);
    // line 11, col 3: the key `exlists`
    assert!(e.starts_with(&format!("{}:11:3: ", canon(&p))), "{e}");
    assert!(e.contains("unknown field `exlists`"), "{e}");
    assert!(e.contains("remove the key or fix its spelling"), "{e}");
}

#[test]
fn unknown_section_names_the_header() {
    let d = tempfile::tempdir().unwrap();
    let text = valid_base(d.path()) + "[imgae]\nx = 1\n";
    let p = write(d.path(), "s.toml", &text);
    let e = err(&p);
    assert!(e.starts_with(&format!("{}:8:2: ", canon(&p))), "{e}");
    assert!(e.contains("unknown field `imgae`"), "{e}");
}

#[test]
fn wrong_type_names_the_value() {
    let d = tempfile::tempdir().unwrap();
    let text = valid_base(d.path()) + "[pack]\nlevel = \"high\"\n";
    let p = write(d.path(), "s.toml", &text);
    let e = err(&p);
    assert!(e.starts_with(&format!("{}:9:9: ", canon(&p))), "{e}");
    assert!(e.contains("invalid type"), "{e}");
    assert!(e.contains("change the value to the expected type"), "{e}");
}

#[test]
fn missing_file_names_the_string() {
    let d = tempfile::tempdir().unwrap();
    let text = valid_base(d.path()) + "[image]\nexlist = [\"ok.exlist\",  \"missing.exlist\"]\n";
    write(d.path(), "ok.exlist", "./tmp*\n");
    let p = write(d.path(), "s.toml", &text);
    let e = err(&p);
    assert!(e.starts_with(&format!("{}:9:25: ", canon(&p))), "{e}");
    assert!(e.contains("exlist"), "{e}");
    assert!(e.contains("missing.exlist does not exist"), "{e}");
    assert!(e.contains("create it or fix the path"), "{e}");
}

#[test]
fn missing_rootimg_and_postinstall() {
    let d = tempfile::tempdir().unwrap();
    let text = "[osimage]\nname = \"c\"\nosvers = \"r9\"\narch = \"x86_64\"\n[source]\nrootimg = \"nope\"\n";
    let p = write(d.path(), "s.toml", text);
    let e = err(&p);
    assert!(e.starts_with(&format!("{}:6:11: ", canon(&p))), "{e}");
    assert!(e.contains("source.rootimg"), "{e}");

    let text = valid_base(d.path()) + "[image]\npostinstall = [\"post.sh --x\"]\n";
    let p = write(d.path(), "s.toml", &text);
    let e = err(&p);
    assert!(e.starts_with(&format!("{}:9:16: ", canon(&p))), "{e}");
    assert!(e.contains("postinstall script"), "{e}");
    // present but not executable
    write(d.path(), "post.sh", "#!/bin/sh\n");
    let e = err(&p);
    assert!(e.contains("chmod +x"), "{e}");
}

#[test]
fn extends_cycle_lists_the_chain() {
    let d = tempfile::tempdir().unwrap();
    let a = write(
        d.path(),
        "a.toml",
        "[osimage]\nname = \"a\"\nextends = \"sub/b.toml\"\n",
    );
    let b = write(
        d.path(),
        "sub/b.toml",
        "# b\n[osimage]\n  extends = \"../a.toml\"\n",
    );
    let e = err(&a);
    assert!(e.starts_with(&format!("{}:3:13: ", canon(&b))), "{e}");
    assert!(
        e.contains(&format!(
            "extends cycle: {} -> {} -> {}",
            canon(&a),
            canon(&b),
            canon(&a)
        )),
        "{e}"
    );
    assert!(e.contains("remove one of these extends"), "{e}");
}

#[test]
fn extends_missing_file() {
    let d = tempfile::tempdir().unwrap();
    let a = write(d.path(), "a.toml", "[osimage]\nextends = \"base.toml\"\n");
    let e = err(&a);
    assert!(e.starts_with(&format!("{}:2:11: ", canon(&a))), "{e}");
    assert!(e.contains("extends file"), "{e}");
}

#[test]
fn error_in_parent_names_the_parent() {
    let d = tempfile::tempdir().unwrap();
    let base = write(d.path(), "base.toml", "[pack]\ncompress = \"lz4\"\n");
    let text = valid_base(d.path()).replace("[osimage]\n", "[osimage]\nextends = \"base.toml\"\n");
    let p = write(d.path(), "s.toml", &text);
    let e = err(&p);
    assert!(e.starts_with(&format!("{}:2:12: ", canon(&base))), "{e}");
    assert!(e.contains("use \"zstd\", \"gzip\" or \"xz\""), "{e}");
}

#[test]
fn invalid_values() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 6] = [
        (
            "[osimage]\nprovmethod = \"statelite\"\n",
            "10:14",
            "only \"netboot\"",
        ),
        (
            "[pack]\ncompress = \"gzip\"\nlevel = 12\n",
            "11:9",
            "use 1..=9",
        ),
        ("[pack]\nmethod = \"squashfs\"\n", "10:10", "use \"cpio\""),
        (
            "[repos]\npkgdir = [\"/x\"]\n",
            "7:11",
            "cannot be combined with [repos]",
        ),
        ("[image]\npermission = \"9\"\n", "10:14", "octal"),
        ("[kernel]\nrootlimit = \"lots\"\n", "10:13", "80%"),
    ];
    for (extra, at, msg) in cases {
        // provmethod goes into the existing [osimage] table by re-opening it is not allowed in
        // TOML, so splice it into the first table instead.
        let base = valid_base(d.path());
        let text = if let Some(rest) = extra.strip_prefix("[osimage]\n") {
            base.replace("arch = \"x86_64\"\n", &format!("arch = \"x86_64\"\n{rest}"))
                .replace("\n\n[source]", "\n[source]")
                + "\n\n"
        } else {
            base + "\n" + extra
        };
        let p = write(d.path(), "s.toml", &text);
        let e = err(&p);
        let line_col: Vec<&str> = at.split(':').collect();
        let want = if extra.starts_with("[osimage]") {
            format!("{}:5:14: ", canon(&p))
        } else {
            format!("{}:{}:{}: ", canon(&p), line_col[0], line_col[1])
        };
        assert!(e.starts_with(&want), "want {want} got {e}\n---\n{text}");
        assert!(e.contains(msg), "{e}");
    }
}

#[test]
fn missing_required_key_and_nothing_to_build() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "s.toml",
        "[osimage]\nname = \"c\"\narch = \"x86_64\"\n",
    );
    let e = err(&p);
    assert!(
        e.contains("[osimage] osvers is missing; add osvers = \"rocky9.4\""),
        "{e}"
    );
    assert!(e.starts_with(&format!("{}:1:1: ", canon(&p))), "{e}");
    let p = write(
        d.path(),
        "s.toml",
        "[osimage]\nname = \"c\"\nosvers = \"r\"\narch = \"x86_64\"\n",
    );
    let e = err(&p);
    assert!(e.contains("nothing to build"), "{e}");
    assert!(e.starts_with(&format!("{}:1:1: ", canon(&p))), "{e}");
}

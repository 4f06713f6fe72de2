//! `read_header` against `rpm -qp` on the real-RPM corpus (`OSIMAGE_CORPUS`): NEVRA,
//! every dependency kind (with flags and versions) and the file list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use imagecore::rpm::{Dep, read_header};

fn corpus() -> Option<PathBuf> {
    std::env::var_os("OSIMAGE_CORPUS").map(PathBuf::from)
}

fn rpm_q(path: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("rpm")
        .arg("-qp")
        .arg("--nosignature")
        .arg("--nodigest")
        .args(args)
        .arg(path)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn norm(d: &Dep) -> String {
    Dep::parse(&d.to_string()).to_string()
}

fn rpm_deps(path: &Path, flag: &str) -> Option<BTreeSet<String>> {
    Some(
        rpm_q(path, &[flag])?
            .lines()
            .filter(|l| !l.starts_with("rpmlib(") && !l.is_empty())
            .map(|l| norm(&Dep::parse(l)))
            .collect(),
    )
}

#[test]
fn headers_match_rpm_query() {
    let Some(dir) = corpus() else {
        eprintln!("SKIPPED: OSIMAGE_CORPUS not set");
        return;
    };
    let mut checked = 0;
    for e in walkdir::WalkDir::new(&dir).sort_by_file_name() {
        let e = e.unwrap();
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rpm") || name.contains("corrupted") {
            continue;
        }
        // rpm 4.18 cannot read v6 packages: only compare what rpm itself reads.
        let Some(nevra) = rpm_q(
            p,
            &["--qf", "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}"],
        ) else {
            continue;
        };
        let m = read_header(p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            format!(
                "{}-{}:{}-{}.{}",
                m.name, m.epoch, m.version, m.release, m.arch
            ),
            nevra,
            "{name}"
        );
        for (flag, ours) in [
            ("--provides", &m.provides),
            ("--requires", &m.requires),
            ("--conflicts", &m.conflicts),
            ("--obsoletes", &m.obsoletes),
            ("--recommends", &m.recommends),
            ("--suggests", &m.suggests),
            ("--supplements", &m.supplements),
            ("--enhances", &m.enhances),
        ] {
            let want = rpm_deps(p, flag).unwrap();
            let got: BTreeSet<String> = ours.iter().map(norm).collect();
            assert_eq!(got, want, "{name} {flag}");
        }
        let files: BTreeSet<String> = rpm_q(p, &["-l"])
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('/'))
            .map(String::from)
            .collect();
        let ours: BTreeSet<String> = m.files.iter().cloned().collect();
        assert_eq!(ours, files, "{name} files");
        checked += 1;
    }
    eprintln!("compared {checked} corpus packages with rpm -qp");
    assert!(checked >= 10, "only {checked} packages compared");
}

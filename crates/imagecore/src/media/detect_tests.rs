//! Detection table: one row per supported `.discinfo` / `.treeinfo` / SUSE form.

use super::*;
use crate::media::{MediaEntry, MediaTree};
use std::path::{Path, PathBuf};

/// An in-memory medium.
struct Mem {
    src: PathBuf,
    entries: Vec<MediaEntry>,
    data: BTreeMap<String, Vec<u8>>,
}

impl Mem {
    fn new(files: &[(&str, &str)]) -> Mem {
        let mut data = BTreeMap::new();
        let mut entries = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (p, c) in files {
            data.insert(p.to_string(), c.as_bytes().to_vec());
            let mut d = Path::new(p).parent();
            while let Some(x) = d {
                if !x.as_os_str().is_empty() {
                    dirs.insert(x.to_str().unwrap().to_string());
                }
                d = x.parent();
            }
            entries.push(MediaEntry {
                path: p.to_string(),
                kind: EntryKind::File,
                mode: 0o644,
                size: c.len() as u64,
                target: None,
                mtime: None,
            });
        }
        for d in dirs {
            entries.push(MediaEntry {
                path: d,
                kind: EntryKind::Dir,
                mode: 0o755,
                size: 0,
                target: None,
                mtime: None,
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Mem {
            src: PathBuf::from("/media/test.iso"),
            entries,
            data,
        }
    }
}

impl MediaReader for Mem {
    fn source(&self) -> &Path {
        &self.src
    }
    fn tree(&self) -> MediaTree {
        MediaTree::Directory
    }
    fn entries(&self) -> &[MediaEntry] {
        &self.entries
    }
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send + '_>, MediaError> {
        let d = self.data.get(path).ok_or_else(|| MediaError::NotFound {
            media: self.src.clone(),
            path: path.into(),
        })?;
        Ok(Box::new(&d[..]))
    }
}

fn ti(family: &str, version: &str, arch: &str, extra: &str) -> String {
    format!(
        "[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n[release]\nname = {family}\nversion = {version}\n\n[tree]\narch = {arch}\n\n[general]\nfamily = {family}\nversion = {version}\narch = {arch}\n{extra}"
    )
}

#[test]
fn detection_table() {
    let rhel9_ti = ti("Red Hat Enterprise Linux", "9.4", "x86_64", "");
    let alma_ti = ti("AlmaLinux", "9.4", "x86_64", "");
    let stream_ti = ti("CentOS Stream", "9", "x86_64", "");
    let ol_ti = ti("Oracle Linux", "9.4", "x86_64", "");
    let fedora_ti = ti("Fedora", "40", "x86_64", "");
    let hpc_ti = ti(
        "Red Hat Enterprise Linux",
        "7.9",
        "x86_64",
        "\n[variant-ComputeNode]\nid = ComputeNode\n",
    );
    let sles_ti = ti("SUSE Linux Enterprise Server", "15 SP5", "x86_64", "");
    // (files, distname, arch, discno)
    type Row<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str, &'a str);
    let table: Vec<Row> = vec![
        // RHEL 8/9: bare version in .discinfo, family in .treeinfo.
        (
            vec![
                (".discinfo", "1712345678.123456\n9.4\nx86_64\n"),
                (".treeinfo", &rhel9_ti),
            ],
            "rhels9.4",
            "x86_64",
            "1",
        ),
        // RHEL 7: full description and disc numbers.
        (
            vec![(
                ".discinfo",
                "1598567426.123\nRed Hat Enterprise Linux 7.9\nx86_64\n1\n",
            )],
            "rhels7.9",
            "x86_64",
            "1",
        ),
        // RHEL with the ComputeNode variant → rhelhpc.
        (
            vec![
                (
                    ".discinfo",
                    "1598567426.123\nRed Hat Enterprise Linux 7.9\nx86_64\n1\n",
                ),
                (".treeinfo", &hpc_ti),
            ],
            "rhelhpc7.9",
            "x86_64",
            "1",
        ),
        // -alternate suffix stripped.
        (
            vec![(
                ".discinfo",
                "1.0\nRed Hat Enterprise Linux 5.4-alternate\nppc\n1,2\n",
            )],
            "rhels5.4",
            "ppc64",
            "1,2",
        ),
        // Rocky (as productmd writes it: ALL).
        (
            vec![(
                ".discinfo",
                "1700000000.000000\nRocky Linux 9.4\nx86_64\nALL\n",
            )],
            "rocky9.4",
            "x86_64",
            "all",
        ),
        (
            vec![(".discinfo", "1.0\nAlmaLinux 9.4\naarch64\n")],
            "alma9.4",
            "aarch64",
            "1",
        ),
        (
            vec![(".discinfo", "1.0\n9.4\nx86_64\n"), (".treeinfo", &alma_ti)],
            "alma9.4",
            "x86_64",
            "1",
        ),
        (
            vec![(".discinfo", "1.0\nCentOS Stream 9\nx86_64\n")],
            "centos-stream9",
            "x86_64",
            "1",
        ),
        (
            vec![(".discinfo", "1.0\n9\nx86_64\n"), (".treeinfo", &stream_ti)],
            "centos-stream9",
            "x86_64",
            "1",
        ),
        (
            vec![(".discinfo", "1.0\nCentOS Linux 8\nx86_64\n")],
            "centos8",
            "x86_64",
            "1",
        ),
        (
            vec![(".discinfo", "1.0\nOracle Linux 8.9\nx86_64\n")],
            "ol8.9",
            "x86_64",
            "1",
        ),
        (
            vec![(".discinfo", "1.0\n9.4\nx86_64\n"), (".treeinfo", &ol_ti)],
            "ol9.4",
            "x86_64",
            "1",
        ),
        (
            vec![(".discinfo", "1.0\nFedora 40\nx86_64\n")],
            "fedora40",
            "x86_64",
            "1",
        ),
        // .treeinfo only (no .discinfo), as Fedora netinst trees.
        (vec![(".treeinfo", &fedora_ti)], "fedora40", "x86_64", "1"),
        // 32-bit x86 is normalised.
        (
            vec![(".discinfo", "1.0\nCentOS Linux 6.10\ni386\n")],
            "centos6.10",
            "x86",
            "1",
        ),
        // SUSE: media.1/products + content.
        (
            vec![
                ("media.1/products", "/ SLES15-SP5 15.5-0\n"),
                (
                    "media.1/media",
                    "SUSE - SLE-15-SP5-Full-x86_64\n20230101\n1\n",
                ),
                ("content", "CONTENTSTYLE 11\nBASEARCHS x86_64\n"),
            ],
            "sles15.5",
            "x86_64",
            "1",
        ),
        // SUSE-like .treeinfo.
        (vec![(".treeinfo", &sles_ti)], "sles15.5", "x86_64", "1"),
    ];
    for (files, distname, arch, discno) in table {
        let m = Mem::new(&files);
        let info = detect(&m).unwrap_or_else(|e| panic!("{files:?}: {e}"));
        assert_eq!(info.distname, distname, "{files:?}");
        assert_eq!(info.arch, arch, "{files:?}");
        assert_eq!(info.discno, discno, "{files:?}");
    }
}

#[test]
fn unknown_media_is_a_clear_error() {
    let m = Mem::new(&[("README", "hello")]);
    let e = detect(&m).unwrap_err().to_string();
    assert!(e.contains("could not identify"), "{e}");
    assert!(e.contains("-n DISTNAME"), "{e}");
    let m = Mem::new(&[(".discinfo", "1.0\nSomething Else 3\nx86_64\n")]);
    let e = detect(&m).unwrap_err().to_string();
    assert!(e.contains("Something Else 3"), "{e}");
}

#[test]
fn checksums_are_parsed_and_verified() {
    let good = hex::encode(sha2::Sha256::digest(b"kernel"));
    let t = format!(
        "{}\n[checksums]\nimages/vmlinuz = sha256:{good}\n",
        ti("Rocky Linux", "9.4", "x86_64", "")
    );
    let m = Mem::new(&[(".treeinfo", &t), ("images/vmlinuz", "kernel")]);
    let info = detect(&m).unwrap();
    assert_eq!(info.checksums.len(), 1);
    verify_checksums(&m, &info).unwrap();
    let m = Mem::new(&[(".treeinfo", &t), ("images/vmlinuz", "kernel!")]);
    let e = verify_checksums(&m, &info).unwrap_err().to_string();
    assert!(
        e.contains("images/vmlinuz") && e.contains("checksum"),
        "{e}"
    );
    let bad = format!(
        "{}\n[checksums]\nx = md5:abc\n",
        ti("Rocky Linux", "9.4", "x86_64", "")
    );
    let m = Mem::new(&[(".treeinfo", &bad)]);
    assert!(detect(&m).unwrap_err().to_string().contains("md5"));
}

//! NewcReader over the payload of real rpmbuild-made RPMs (`rpm2cpio` output), compared with
//! GNU `cpio -t` / `cpio -idm` on the same stream.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use imagecore::archive::{NewcReader, decompressor};
use osimage_e2e::require;
use osimage_e2e::tools::have;

const SPEC: &str = r#"
Name:           cpiotest
Version:        1.0
Release:        1
Summary:        payload fixture for the newc reader
License:        MIT
BuildArch:      noarch

%description
Files of every kind for the cpio reader test.

%prep
%build
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/cpiotest/sub %{buildroot}/etc
printf 'config\n' > %{buildroot}/etc/cpiotest.conf
head -c 200003 /dev/urandom > %{buildroot}/usr/share/cpiotest/blob
ln %{buildroot}/usr/share/cpiotest/blob %{buildroot}/usr/share/cpiotest/blob-link
printf '#!/bin/sh\necho hi\n' > %{buildroot}/usr/bin/cpiotest
ln -s cpiotest %{buildroot}/usr/bin/ct
: > %{buildroot}/usr/share/cpiotest/sub/empty
printf 'x' > %{buildroot}/usr/bin/suidtool

%files
%config(noreplace) /etc/cpiotest.conf
%attr(0755,root,root) /usr/bin/cpiotest
/usr/bin/ct
%attr(4755,root,root) /usr/bin/suidtool
%dir /usr/share/cpiotest
/usr/share/cpiotest/blob
/usr/share/cpiotest/blob-link
%dir /usr/share/cpiotest/sub
/usr/share/cpiotest/sub/empty
"#;

fn sh(dir: &Path, script: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn build_rpm(dir: &Path, payload: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("cpiotest.spec"), SPEC).unwrap();
    let top = dir.join(format!("top-{payload}"));
    sh(
        dir,
        &format!(
            "rpmbuild -bb --quiet --define '_topdir {top}' --define '_rpmdir {top}/out' \
             --define '_build_name_fmt %%{{NAME}}.rpm' --define 'debug_package %{{nil}}' \
             --define '_binary_payload {payload}' cpiotest.spec",
            top = top.display()
        ),
    );
    top.join("out/cpiotest.rpm")
}

#[test]
fn newc_reader_reads_rpmbuild_payloads_like_gnu_cpio() {
    require!(
        have("rpmbuild") && have("rpm2cpio") && have("cpio"),
        "rpmbuild/rpm2cpio/cpio not installed"
    );
    let t = tempfile::tempdir().unwrap();
    for payload in ["w6.gzdio", "w3.zstdio", "w2.xzdio"] {
        let rpm = build_rpm(t.path(), payload);
        let cpio_path = t.path().join(format!("{payload}.cpio"));
        sh(
            t.path(),
            &format!("rpm2cpio {} > {}", rpm.display(), cpio_path.display()),
        );
        let data = std::fs::read(&cpio_path).unwrap();
        // Through our sniffing decompressor (plain passthrough here) into our reader.
        let stream = decompressor(std::io::Cursor::new(data.clone())).unwrap();
        let mut r = NewcReader::new(stream);
        let mut ours = Vec::new();
        while let Some(mut e) = r.next_entry().unwrap() {
            let h = e.header().clone();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            ours.push((h.name_lossy().into_owned(), h.mode, h.nlink, body));
        }
        let listing = String::from_utf8(sh(
            t.path(),
            &format!("cpio -t --quiet < {}", cpio_path.display()),
        ))
        .unwrap();
        let names: Vec<&str> = listing.lines().collect();
        let our_names: Vec<&str> = ours.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(our_names, names, "{payload}: entries and order as cpio -t");
        assert!(
            names.iter().any(|n| n.ends_with("usr/bin/ct")),
            "{payload}: {names:?}"
        );
        let x = t.path().join(format!("x-{payload}"));
        std::fs::create_dir(&x).unwrap();
        sh(&x, &format!("cpio -idm --quiet < {}", cpio_path.display()));
        let mut seen_blob = 0;
        for (name, mode, nlink, body) in &ours {
            let p = x.join(name);
            let md = std::fs::symlink_metadata(&p).unwrap();
            assert_eq!(*mode, md.mode(), "{payload} {name}: mode");
            if md.file_type().is_symlink() {
                assert_eq!(body.as_slice(), b"cpiotest");
            } else if md.is_file() && (!body.is_empty() || *nlink == 1) {
                assert_eq!(
                    body,
                    &std::fs::read(&p).unwrap(),
                    "{payload} {name}: content"
                );
            }
            if name.contains("usr/share/cpiotest/blob") {
                assert_eq!(*nlink, 2);
                seen_blob += body.len();
            }
            if name.ends_with("usr/bin/suidtool") {
                assert_eq!(mode & 0o7777, 0o4755);
            }
        }
        assert_eq!(seen_blob, 200_003, "{payload}: hardlink data present once");
    }
}

const BIG_SPEC: &str = r#"
Name:           bigfile
Version:        1
Release:        1
Summary:        a payload with a file over 4 GiB (RPM's stripped 07070X cpio)
License:        MIT
BuildArch:      noarch

%description
One sparse 4 GiB + 3 bytes file and one small file.

%install
mkdir -p %{buildroot}/opt
truncate -s 4294967299 %{buildroot}/opt/huge
printf small > %{buildroot}/opt/small

%files
/opt/huge
/opt/small
"#;

/// rpmbuild writes packages holding files ≥ 4 GiB with stripped `07070X` headers (and
/// `rpm2cpio` refuses them): read the payload with sizes from the header (`rpm -qp`).
/// Slow (hashes and compresses 4 GiB): runs only with OSIMAGE_LARGE_TESTS=1.
#[test]
fn newc_reader_reads_rpm_stripped_large_file_payloads() {
    require!(
        std::env::var_os("OSIMAGE_LARGE_TESTS").is_some(),
        "set OSIMAGE_LARGE_TESTS=1 to build a 4 GiB-file RPM"
    );
    require!(
        have("rpmbuild") && have("rpm"),
        "rpmbuild/rpm not installed"
    );
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("big.spec"), BIG_SPEC).unwrap();
    sh(
        t.path(),
        "rpmbuild -bb --quiet --define \"_topdir $PWD/top\" --define \"_rpmdir $PWD/out\" \
         --define '_build_name_fmt %%{NAME}.rpm' --define 'debug_package %{nil}' \
         --define '_binary_payload w1.zstdio' --define '__brp_strip /bin/true' big.spec",
    );
    let rpm = t.path().join("out/bigfile.rpm");
    let q = |tag: &str| -> Vec<String> {
        String::from_utf8(sh(
            t.path(),
            &format!("rpm -qp --qf '[%{{{tag}}}\\n]' {}", rpm.display()),
        ))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
    };
    let names = q("FILENAMES");
    let sizes: Vec<u64> = q("LONGFILESIZES")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(names, ["/opt/huge", "/opt/small"]);
    let mut input = std::io::BufReader::new(std::fs::File::open(&rpm).unwrap());
    rpm::PackageMetadata::parse(&mut input).unwrap(); // leaves `input` at the payload
    let payload = decompressor(input).unwrap();
    let s2 = sizes.clone();
    let mut r = NewcReader::with_stripped_sizes(payload, move |fx| s2.get(fx as usize).copied());
    let mut seen = Vec::new();
    while let Some(mut e) = r.next_entry().unwrap() {
        let fx = e.header().stripped_index.expect("stripped entry") as usize;
        assert_eq!(e.header().file_size, sizes[fx]);
        if sizes[fx] < 100 {
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            assert_eq!(body, b"small");
        } else {
            assert_eq!(
                std::io::copy(&mut e, &mut std::io::sink()).unwrap(),
                4_294_967_299
            );
        }
        seen.push(names[fx].clone());
    }
    seen.sort();
    assert_eq!(seen, names);
}

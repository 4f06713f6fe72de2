//! `gpgcheck`: packages signed with the real `rpmsign` (RSA and Ed25519 keys made by `gpg` in a
//! throwaway GNUPGHOME) and the signed packages of $OSIMAGE_CORPUS, our verdict against real
//! rpm's (`rpm --import KEY; rpm -K`, and an install with `_pkgverify_level signature`):
//! unsigned, signed by another key and tampered packages are refused, naming the file and the
//! key, before anything is unpacked.

use std::path::{Path, PathBuf};

use imagecore::install::{InstallOptions, ScriptletMode, install_packages};
use osimage_e2e::require;
use osimage_e2e::rpmbuild::{FileSpec, PkgSpec, build};
use osimage_e2e::signing::{GpgHome, rpm_install_enforced, rpm_k, tamper};
use osimage_e2e::tools::{have, osimage_install};

fn opts(keys: &[PathBuf]) -> InstallOptions {
    InstallOptions {
        scriptlets: ScriptletMode::Skip,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: Some(keys.to_vec()),
    }
}

/// Our verdict: Ok(()) when the package installs into a fresh root with `keys`.
fn ours(scratch: &Path, keys: &[PathBuf], rpm: &Path) -> Result<(), String> {
    let root = tempfile::tempdir_in(scratch).unwrap();
    let r = install_packages(root.path(), &[rpm.to_path_buf()], &opts(keys))
        .map(|_| ())
        .map_err(|e| e.to_string());
    if r.is_err() {
        // refused before anything was unpacked
        let left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{}: left behind {left:?}", rpm.display());
    }
    r
}

struct Fixture {
    _t: tempfile::TempDir,
    dir: PathBuf,
    rsa_key: PathBuf,
    ed_key: PathBuf,
    other_key: PathBuf,
    rsa_pkg: PathBuf,
    ed_pkg: PathBuf,
    other_pkg: PathBuf,
    unsigned: PathBuf,
    tampered_header: PathBuf,
    tampered_payload: PathBuf,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let gpg = GpgHome::new(&dir).unwrap();
    let (rsa_key, ed_key, other_key) = (
        dir.join("RPM-GPG-KEY-rsa"),
        dir.join("RPM-GPG-KEY-ed"),
        dir.join("RPM-GPG-KEY-other"),
    );
    gpg.gen_key("RSA Signer <rsa@osimage.test>", "rsa2048", &rsa_key)
        .unwrap();
    gpg.gen_key("Ed Signer <ed@osimage.test>", "ed25519", &ed_key)
        .unwrap();
    gpg.gen_key("Other Signer <other@osimage.test>", "rsa2048", &other_key)
        .unwrap();
    let names = [
        "sig-rsa",
        "sig-ed",
        "sig-other",
        "sig-none",
        "sig-hdr",
        "sig-payload",
    ];
    let specs: Vec<PkgSpec> = names
        .iter()
        .map(|n| {
            PkgSpec::new(n, "1.0").file(FileSpec::file(
                &format!("/usr/share/{n}/data"),
                &format!("payload of {n}\n").repeat(200),
            ))
        })
        .collect();
    let rpms = build(&specs, &dir.join("rpms")).unwrap();
    gpg.sign(&rpms[0], "rsa@osimage.test").unwrap();
    gpg.sign(&rpms[1], "ed@osimage.test").unwrap();
    gpg.sign(&rpms[2], "other@osimage.test").unwrap();
    gpg.sign(&rpms[4], "rsa@osimage.test").unwrap();
    gpg.sign(&rpms[5], "rsa@osimage.test").unwrap();
    // header: the summary text ("test package sig-hdr") is in the signed header
    tamper(&rpms[4], b"test package sig-hdr").unwrap();
    // payload: one byte in the middle of the compressed payload
    let mut data = std::fs::read(&rpms[5]).unwrap();
    let at = data.len() - 64;
    data[at] ^= 0x55;
    std::fs::write(&rpms[5], data).unwrap();
    Fixture {
        rsa_key,
        ed_key,
        other_key,
        rsa_pkg: rpms[0].clone(),
        ed_pkg: rpms[1].clone(),
        other_pkg: rpms[2].clone(),
        unsigned: rpms[3].clone(),
        tampered_header: rpms[4].clone(),
        tampered_payload: rpms[5].clone(),
        dir,
        _t: t,
    }
}

fn tools() -> bool {
    have("rpm") && have("rpmbuild") && have("rpmsign") && have("gpg")
}

#[test]
fn gpgcheck_agrees_with_rpm_on_signed_fixtures() {
    require!(tools(), "rpm/rpmbuild/rpmsign/gpg not installed");
    let f = fixture();
    let keys = [f.rsa_key.clone(), f.ed_key.clone()];
    let cases: Vec<(&Path, bool)> = vec![
        (&f.rsa_pkg, true),
        (&f.ed_pkg, true),
        (&f.other_pkg, false),
        (&f.unsigned, false),
        (&f.tampered_header, false),
        (&f.tampered_payload, false),
    ];
    for (pkg, expect) in &cases {
        let (rpm_ok, rpm_text) = rpm_install_enforced(&f.dir, &keys, pkg).unwrap();
        let mine = ours(&f.dir, &keys, pkg);
        assert_eq!(
            rpm_ok,
            mine.is_ok(),
            "{}: rpm says {rpm_ok} ({rpm_text}), we say {mine:?}",
            pkg.display()
        );
        assert_eq!(mine.is_ok(), *expect, "{}: {mine:?}", pkg.display());
        if let Err(e) = &mine {
            assert!(e.contains(&pkg.display().to_string()), "{e}");
        }
    }
    // rpm -K agrees on the signed ones (it accepts unsigned packages: no signature to check)
    for (pkg, expect) in [
        (&f.rsa_pkg, true),
        (&f.ed_pkg, true),
        (&f.other_pkg, false),
        (&f.tampered_header, false),
        (&f.tampered_payload, false),
    ] {
        let (ok, text) = rpm_k(&f.dir, &keys, pkg).unwrap();
        assert_eq!(ok, expect, "rpm -K {}: {text}", pkg.display());
    }
    // messages name the key
    let e = ours(&f.dir, &keys, &f.other_pkg).unwrap_err();
    assert!(
        e.contains("is signed by key") && e.contains("RPM-GPG-KEY-rsa"),
        "{e}"
    );
    let e = ours(&f.dir, &keys, &f.unsigned).unwrap_err();
    assert!(e.contains("not signed"), "{e}");
    let e = ours(&f.dir, &keys, &f.tampered_header).unwrap_err();
    assert!(
        e.contains("does not verify with the key in") && e.contains("RPM-GPG-KEY-rsa"),
        "{e}"
    );
    let e = ours(&f.dir, &keys, &f.tampered_payload).unwrap_err();
    assert!(e.contains("payload"), "{e}");
    // with the right key only, the Ed25519 package is refused; with the other key, accepted
    assert!(ours(&f.dir, std::slice::from_ref(&f.rsa_key), &f.ed_pkg).is_err());
    assert!(ours(&f.dir, std::slice::from_ref(&f.other_key), &f.other_pkg).is_ok());
    // a whole transaction is refused before anything is unpacked when one package fails
    let root = f.dir.join("txn");
    let e = install_packages(
        &root,
        &[f.rsa_pkg.clone(), f.unsigned.clone()],
        &opts(&keys),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sig-none"), "{e}");
    assert!(!root.join("usr").exists());
    // without gpgcheck, the unsigned package installs
    let mut no = opts(&keys);
    no.gpgkeys = None;
    install_packages(
        &f.dir.join("nocheck"),
        std::slice::from_ref(&f.unsigned),
        &no,
    )
    .unwrap();
}

#[test]
fn gpgcheck_cli_flag() {
    require!(tools(), "rpm/rpmbuild/rpmsign/gpg not installed");
    let f = fixture();
    let cli = |pkg: &Path, root: &str| {
        let args: [&std::ffi::OsStr; 6] = [
            "--noscripts".as_ref(),
            "--gpgkey".as_ref(),
            f.rsa_key.as_os_str(),
            "--gpgkey".as_ref(),
            f.ed_key.as_os_str(),
            pkg.as_os_str(),
        ];
        osimage_install(&f.dir.join(root), args)
    };
    let o = cli(&f.rsa_pkg, "a");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(f.dir.join("a/usr/share/sig-rsa/data").exists());
    let o = cli(&f.other_pkg, "b");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sig-other") && err.contains("is signed by key"),
        "{err}"
    );
    assert!(!f.dir.join("b/usr").exists());
}

/// Every signed package of the corpus against every corpus key: our verdict == rpm -K's.
#[test]
fn gpgcheck_agrees_with_rpm_on_corpus() {
    let Ok(corpus) = std::env::var("OSIMAGE_CORPUS") else {
        eprintln!("SKIPPED: OSIMAGE_CORPUS is not set");
        return;
    };
    require!(have("rpm"), "rpm not installed");
    let c = Path::new(&corpus);
    let t = tempfile::tempdir().unwrap();
    let pairs: Vec<(&str, &str, bool)> = vec![
        (
            "rpm-upstream/hello-2.0-1.x86_64-signed.rpm",
            "keys/rpm-upstream/rpm.org-rsa-2048-test.pub",
            true,
        ),
        (
            "rpm-upstream/hello-2.0-1.x86_64-signed.rpm",
            "keys/rpm-rs/rpm-testkey-v4-rsa4096.asc",
            false,
        ),
        // an Ed25519 signing subkey of the RSA primary key
        (
            "rpm-upstream/hello-2.0-1.x86_64-signed-with-new-subkey.rpm",
            "keys/rpm-upstream/rpm.org-rsa-2048-add-subkey.asc",
            true,
        ),
        // signed by a subkey that is not in that file
        (
            "rpm-upstream/hello-2.0-1.x86_64-signed-with-subkey.rpm",
            "keys/rpm-upstream/rpm.org-rsa-2048-add-subkey.asc",
            false,
        ),
        (
            "rpm-upstream/hello-2.0-1.x86_64-signed-with-subkey.rpm",
            "keys/rpm-upstream/rpm.org-rsa-2048-test.pub",
            false,
        ),
        (
            "rpm-upstream/hello-2.0-1.x86_64.rpm",
            "keys/rpm-upstream/rpm.org-rsa-2048-test.pub",
            false,
        ),
        (
            "rpm-rs/v4/signed/rpm-basic-with-rsa4096-2.3.4-5.el9.noarch.rpm",
            "keys/rpm-rs/rpm-testkey-v4-rsa4096.asc",
            true,
        ),
        (
            "rpm-rs/v4/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm",
            "keys/rpm-rs/rpm-testkey-v4-ed25519.asc",
            true,
        ),
        (
            "rpm-rs/v4/signed/rpm-basic-with-ed25519-2.3.4-5.el9.noarch.rpm",
            "keys/rpm-rs/rpm-testkey-v4-rsa4096.asc",
            false,
        ),
        (
            "rpm-rs/v4/rpm-basic-2.3.4-5.el9.noarch.rpm",
            "keys/rpm-rs/rpm-testkey-v4-rsa4096.asc",
            false,
        ),
    ];
    let mut checked = 0;
    for (pkg, key, expect) in pairs {
        let (pkg, key) = (c.join(pkg), c.join(key));
        if !pkg.exists() || !key.exists() {
            eprintln!(
                "SKIPPED pair: {} / {} missing",
                pkg.display(),
                key.display()
            );
            continue;
        }
        let keys = [key.clone()];
        let mine = ours(t.path(), &keys, &pkg);
        assert_eq!(mine.is_ok(), expect, "{}: {mine:?}", pkg.display());
        let (rpm_ok, text) = match rpm_install_enforced(t.path(), &keys, &pkg) {
            Ok(v) => v,
            Err(e) => {
                // this rpm (4.18) cannot import some newer keys (e.g. added subkeys)
                eprintln!("rpm oracle unusable for {}: {e}", key.display());
                continue;
            }
        };
        assert_eq!(
            rpm_ok,
            mine.is_ok(),
            "{} with {}: rpm {rpm_ok} ({text}) vs ours {mine:?}",
            pkg.display(),
            key.display()
        );
        assert_eq!(mine.is_ok(), expect, "{}: {mine:?}", pkg.display());
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} corpus pairs present");
}

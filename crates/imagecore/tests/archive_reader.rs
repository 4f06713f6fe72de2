//! NewcReader over archives made by GNU cpio; decompressor sniffing over streams made by the
//! real zstd, gzip, xz and bzip2 tools.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use imagecore::archive::{NewcFormat, NewcReader, decompressor};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            eprintln!("SKIPPED: {}", $why);
            return;
        }
    };
}

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

/// A source tree in `dir/src` with files, a hardlink pair, a symlink, a fifo, an empty file,
/// a setuid file and a file of 1 MB.
fn make_tree(dir: &Path) {
    sh(
        dir,
        "set -e; mkdir -p src/etc src/usr/bin src/var/empty; cd src; \
         printf 'hello\\n' > etc/hostname; printf 'abc' > etc/odd; : > etc/empty; \
         head -c 1000003 /dev/urandom > usr/bin/big; ln usr/bin/big usr/bin/big2; \
         ln -s ../../etc/hostname usr/bin/hn; mkfifo var/fifo; printf x > usr/bin/suid; \
         chmod 4755 usr/bin/suid; chmod 1777 var/empty",
    );
}

/// Read every entry: (name, mode, nlink, size, body).
fn read_all(data: &[u8]) -> Vec<(String, u32, u32, u64, Vec<u8>, NewcFormat)> {
    let mut r = NewcReader::new(data);
    let mut out = Vec::new();
    while let Some(mut e) = r.next_entry().unwrap() {
        let h = e.header().clone();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        assert_eq!(body.len() as u64, h.file_size);
        out.push((
            h.name_lossy().into_owned(),
            h.mode,
            h.nlink,
            h.file_size,
            body,
            h.format,
        ));
    }
    out
}

fn check_against_gnu(dir: &Path, archive: &str, fmt: NewcFormat) {
    let data = std::fs::read(dir.join(archive)).unwrap();
    let ours = read_all(&data);
    let listing = String::from_utf8(sh(dir, &format!("cpio -t --quiet < {archive}"))).unwrap();
    let names: Vec<&str> = listing.lines().collect();
    let our_names: Vec<&str> = ours.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        our_names, names,
        "{archive}: same entries, same order as cpio -t"
    );
    let x = dir.join(format!("x-{archive}"));
    std::fs::create_dir(&x).unwrap();
    sh(&x, &format!("cpio -idm --quiet < ../{archive}"));
    for (name, mode, nlink, size, body, f) in &ours {
        assert_eq!(*f, fmt);
        let p = x.join(name);
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(*mode, md.mode(), "{name} mode");
        if md.file_type().is_symlink() {
            assert_eq!(
                body.as_slice(),
                std::fs::read_link(&p)
                    .unwrap()
                    .as_os_str()
                    .as_encoded_bytes()
            );
        } else if md.is_file() && (*size > 0 || *nlink == 1) {
            assert_eq!(body, &std::fs::read(&p).unwrap(), "{name} content");
        }
    }
    // The hardlink pair: GNU cpio keeps the data with the last member.
    let big: Vec<_> = ours
        .iter()
        .filter(|e| e.0.trim_start_matches("./").starts_with("usr/bin/big"))
        .collect();
    assert_eq!(big.len(), 2);
    assert_eq!(big.iter().map(|e| e.3).sum::<u64>(), 1_000_003);
    assert!(big.iter().all(|e| e.2 == 2));
}

#[test]
fn reads_gnu_cpio_newc_and_crc_archives() {
    require!(have("cpio"), "GNU cpio not installed");
    let t = tempfile::tempdir().unwrap();
    make_tree(t.path());
    sh(
        t.path(),
        "cd src && find . | sort | cpio -o -H newc --quiet > ../a.newc",
    );
    sh(
        t.path(),
        "cd src && find . | sort | cpio -o -H crc --quiet > ../a.crc",
    );
    check_against_gnu(t.path(), "a.newc", NewcFormat::Newc);
    check_against_gnu(t.path(), "a.crc", NewcFormat::Crc);
}

#[test]
fn crc_mismatch_is_detected() {
    require!(have("cpio"), "GNU cpio not installed");
    let t = tempfile::tempdir().unwrap();
    make_tree(t.path());
    sh(
        t.path(),
        "cd src && printf './etc/hostname\\n' | cpio -o -H crc --quiet > ../a.crc",
    );
    let mut data = std::fs::read(t.path().join("a.crc")).unwrap();
    let at = data.windows(6).position(|w| w == b"hello\n").unwrap();
    data[at] = b'j';
    let mut r = NewcReader::new(&data[..]);
    let mut e = r.next_entry().unwrap().unwrap();
    let err = e.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn decompressor_sniffs_streams_made_by_the_real_tools() {
    require!(
        have("cpio") && have("zstd") && have("gzip") && have("xz") && have("bzip2"),
        "cpio/zstd/gzip/xz/bzip2 not installed"
    );
    let t = tempfile::tempdir().unwrap();
    make_tree(t.path());
    sh(
        t.path(),
        "cd src && find . | sort | cpio -o -H newc --quiet > ../a.cpio",
    );
    let plain = std::fs::read(t.path().join("a.cpio")).unwrap();
    let twice = [plain.clone(), plain.clone()].concat();
    for (script, want) in [
        ("zstd -q -3 -c a.cpio", &plain),
        ("zstd -q -19 -T2 -c a.cpio", &plain),
        ("gzip -c a.cpio", &plain),
        ("xz -c a.cpio", &plain),
        ("xz -T2 -c a.cpio", &plain),
        ("bzip2 -c a.cpio", &plain),
        ("cat a.cpio", &plain),
        ("zstd -q -c a.cpio; zstd -q -c a.cpio", &twice),
        ("gzip -c a.cpio; gzip -c a.cpio", &twice),
        ("xz -c a.cpio; xz -c a.cpio", &twice),
        ("bzip2 -c a.cpio; bzip2 -c a.cpio", &twice),
    ] {
        let compressed = sh(t.path(), script);
        let mut back = Vec::new();
        decompressor(std::io::Cursor::new(compressed))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == *want, "{script}: decompressed bytes differ");
        assert_eq!(read_all(&back).len(), read_all(&plain).len(), "{script}");
    }
}

//! `osimage cache ls|gc|verify` against a store filled through the library.

use std::process::Command;

use imagecore::Hash;
use imagecore::graph::Output;
use imagecore::store::Store;
use osimage_e2e::tools::osimage_bin;

fn osimage(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(osimage_bin())
        .arg("cache")
        .arg("--cache-dir")
        .arg(dir)
        .args(args)
        .env_remove("OSIMAGE_CACHE")
        .output()
        .expect("run osimage (build it with `cargo build -p imagecli`)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn cache_ls_gc_verify() {
    if !osimage_bin().exists() {
        eprintln!("SKIPPED: {} not built", osimage_bin().display());
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let keep = Hash::of(b"keep");
    let drop_key = Hash::of(b"drop");
    for (k, payload) in [(keep, data.clone()), (drop_key, b"other".to_vec())] {
        let mut out = Output::default();
        out.artifacts
            .insert("blob".into(), store.put_bytes(&payload).unwrap());
        store.publish(&k, &out).unwrap();
    }
    drop(store);

    let (code, ls) = osimage(d.path(), &["ls"]);
    assert_eq!(code, 0, "{ls}");
    assert!(
        ls.contains(&keep.to_hex()) && ls.contains(&drop_key.to_hex()),
        "{ls}"
    );
    let (code, js) = osimage(d.path(), &["ls", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&js).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);

    let (code, v1) = osimage(d.path(), &["verify"]);
    assert_eq!(code, 0, "{v1}");
    let (code, gc) = osimage(d.path(), &["gc", "--keep", &keep.to_hex()]);
    assert_eq!(code, 0, "{gc}");
    assert!(gc.contains("1 kept, 1 removed"), "{gc}");
    let (_, ls2) = osimage(d.path(), &["ls"]);
    assert!(!ls2.contains(&drop_key.to_hex()), "{ls2}");
    let (code, bad) = osimage(d.path(), &["gc", "--keep", "xyz"]);
    assert_ne!(code, 0);
    assert!(bad.contains("--keep xyz"), "{bad}");

    // damage the kept blob: verify must fail
    let pack = std::fs::read_dir(d.path().join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    let mut b = std::fs::read(&pack).unwrap();
    let n = b.len();
    b[n - 100] ^= 0xff;
    std::fs::write(&pack, b).unwrap();
    let (code, v2) = osimage(d.path(), &["verify"]);
    assert_eq!(code, 1, "{v2}");
    assert!(
        v2.contains("BAD blob") && v2.contains("INCOMPLETE output"),
        "{v2}"
    );
}

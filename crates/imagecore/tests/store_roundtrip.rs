//! Store round trips: bytes, files, large streamed blobs, manifests, outputs, records; dedup;
//! gc; verify detecting damage.

use crate::common;

use std::collections::BTreeMap;
use std::io::Read;

use common::*;
use imagecore::Hash;
use imagecore::graph::Output;
use imagecore::store::Store;
use imagecore::tree::{Entry, Kind, Manifest};

fn file_entry(path: &str, blob: Hash, size: u64) -> Entry {
    Entry {
        path: path.into(),
        kind: Kind::File {
            blob,
            size,
            link: None,
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_000,
        xattrs: BTreeMap::new(),
    }
}

#[test]
fn bytes_and_files_round_trip_and_dedup() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(&d.path().join("s")).unwrap();
    store.set_compression(true);
    let small = b"hello store".to_vec();
    let text = text_bytes("t", 300_000);
    let rnd = random_bytes("r", 1 << 20);
    let empty: Vec<u8> = Vec::new();
    let mut ids = Vec::new();
    for data in [&small, &text, &rnd, &empty] {
        let h = store.put_bytes(data).unwrap();
        assert_eq!(h, Hash::of(data));
        assert!(store.has(&h));
        assert_eq!(&store.read(&h).unwrap(), data);
        let mut back = Vec::new();
        store.open_blob(&h).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(&back, data);
        let out = d.path().join(format!("out-{}", h.short()));
        store.blob_to_file(&h, &out).unwrap();
        assert_eq!(&std::fs::read(&out).unwrap(), data);
        assert!(
            store.blob_to_file(&h, &out).is_err(),
            "existing target refused"
        );
        ids.push(h);
    }
    assert!(!store.has(&Hash::of(b"never stored")));
    assert!(store.read(&Hash::of(b"never stored")).is_err());

    // compression pays on text: the pack holds much less than the text
    store.publish(&Hash::of(b"k0"), &Output::default()).unwrap();
    let packs = d.path().join("s/packs");
    let size1 = dir_size(&packs);
    assert!(
        size1 < (1 << 20) + 300_000 / 2,
        "text compressed: packs are {size1} bytes"
    );

    // dedup: putting everything again (bytes and as files) stores nothing new
    let f = d.path().join("rnd.bin");
    std::fs::write(&f, &rnd).unwrap();
    for _ in 0..3 {
        for data in [&small, &text, &rnd, &empty] {
            store.put_bytes(data).unwrap();
        }
        assert_eq!(store.put_file(&f).unwrap(), (ids[2], rnd.len() as u64));
    }
    store.publish(&Hash::of(b"k1"), &Output::default()).unwrap();
    assert_eq!(dir_size(&packs), size1, "same content stored once");

    // a second handle (another process's view) sees everything
    let again = Store::open(&d.path().join("s")).unwrap();
    for (h, data) in ids.iter().zip([&small, &text, &rnd, &empty]) {
        assert_eq!(&again.read(h).unwrap(), data);
    }
    assert!(again.verify().unwrap().ok());
}

#[test]
fn concurrent_puts_from_many_threads() {
    use rayon::prelude::*;
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    // 400 blobs, each put 3 times concurrently
    let hashes: Vec<Hash> = (0..1200)
        .into_par_iter()
        .map(|i| {
            store
                .put_bytes(&text_bytes(&format!("c{}", i % 400), 5000))
                .unwrap()
        })
        .collect();
    for (i, h) in hashes.iter().enumerate() {
        assert_eq!(
            store.read(h).unwrap(),
            text_bytes(&format!("c{}", i % 400), 5000)
        );
    }
    store.publish(&Hash::of(b"k"), &Output::default()).unwrap();
    let rep = store.verify().unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!(
        rep.blobs_checked, 400,
        "each distinct blob stored exactly once"
    );
}

#[test]
fn large_streamed_blobs() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let len: u64 = (64 << 20) + 12345;
    // incompressible, streamed
    let (h, n) = store.put_reader(&mut random_reader("big", len)).unwrap();
    assert_eq!(n, len);
    let mut expect = blake3::Hasher::new();
    std::io::copy(&mut random_reader("big", len), &mut expect).unwrap();
    assert_eq!(h, Hash::from(expect.finalize()));
    let mut back = blake3::Hasher::new();
    let copied = std::io::copy(&mut store.open_blob(&h).unwrap(), &mut back).unwrap();
    assert_eq!(copied, len);
    assert_eq!(Hash::from(back.finalize()), h);
    let out = d.path().join("big.out");
    store.blob_to_file(&h, &out).unwrap();
    assert_eq!(std::fs::metadata(&out).unwrap().len(), len);
    let mut fh = blake3::Hasher::new();
    fh.update_mmap(&out).unwrap();
    assert_eq!(Hash::from(fh.finalize()), h);
    // the same again: deduplicated, no new pack
    let before = dir_size(&d.path().join("packs"));
    assert_eq!(store.put_file(&out).unwrap(), (h, len));
    assert_eq!(
        store.put_reader(&mut random_reader("big", len)).unwrap(),
        (h, len)
    );
    assert_eq!(dir_size(&d.path().join("packs")), before);

    // compressible large blob, streamed through zstd
    store.set_compression(true);
    let text = text_bytes("bigtext", (20 << 20) + 7);
    let (ht, nt) = store.put_reader(&mut &text[..]).unwrap();
    assert_eq!((ht, nt), (Hash::of(&text), text.len() as u64));
    let grew = dir_size(&d.path().join("packs")) - before;
    assert!(grew < text.len() as u64 / 2, "compressed: {grew} bytes");
    assert_eq!(store.read(&ht).unwrap(), text);
    let out2 = d.path().join("text.out");
    store.blob_to_file(&ht, &out2).unwrap();
    assert_eq!(std::fs::read(&out2).unwrap(), text);
    let rep = store.verify().unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert!(rep.bytes_checked >= len + text.len() as u64);
}

#[test]
fn manifests_outputs_records_list() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let a = store.put_bytes(b"aaa").unwrap();
    let b = store.put_bytes(b"bbbb").unwrap();
    let mut m = Manifest {
        entries: vec![file_entry("etc/a", a, 3), file_entry("etc/b", b, 4)],
    };
    m.sort();
    let id = store.put_manifest(&m).unwrap();
    assert_eq!(id, m.id());
    assert_eq!(store.get_manifest(&id).unwrap(), m);

    let key = Hash::of(b"node-key");
    assert_eq!(store.get_output(&key).unwrap(), None);
    let art = store.put_bytes(b"archive bytes").unwrap();
    let mut out = Output {
        tree: Some(id),
        ..Default::default()
    };
    out.artifacts.insert("rootimg.cpio.zst".into(), art);
    out.meta.insert("kernel".into(), "6.1".into());
    store.publish(&key, &out).unwrap();
    assert_eq!(store.get_output(&key).unwrap(), Some(out.clone()));

    // publishing an output whose blobs are missing is refused
    let mut bad = out.clone();
    bad.artifacts.insert("x".into(), Hash::of(b"missing"));
    assert!(store.publish(&Hash::of(b"k2"), &bad).is_err());
    assert_eq!(store.get_output(&Hash::of(b"k2")).unwrap(), None);

    let ls = store.list().unwrap();
    assert_eq!(ls.len(), 1);
    assert_eq!(ls[0].key, key);
    assert_eq!(ls[0].tree, Some(id));
    assert_eq!(ls[0].artifacts, vec!["rootimg.cpio.zst".to_string()]);
    let msize = m.to_bytes().len() as u64;
    assert_eq!(ls[0].size, 3 + 4 + 13 + msize);
    assert!(ls[0].time > 1_700_000_000);

    store.put_record("compute.last", b"one").unwrap();
    store.put_record("compute.last", b"two").unwrap();
    assert_eq!(
        store.get_record("compute.last").unwrap(),
        Some(b"two".to_vec())
    );
    assert_eq!(store.get_record("nothing").unwrap(), None);
    for bad in ["", "../x", "a/b", ".hidden"] {
        assert!(store.put_record(bad, b"x").is_err(), "{bad:?}");
    }
    // default dir honours OSIMAGE_CACHE
    let dd = Store::default_dir();
    assert!(dd.ends_with("osimage") || std::env::var_os("OSIMAGE_CACHE").is_some());
}

#[test]
fn gc_keeps_what_is_asked_and_frees_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let shared = random_bytes("shared", 200_000);
    let mut keys = Vec::new();
    for i in 0..4 {
        let own = random_bytes(&format!("own{i}"), 500_000);
        let hs = store.put_bytes(&shared).unwrap();
        let ho = store.put_bytes(&own).unwrap();
        let m = Manifest {
            entries: vec![
                file_entry("own", ho, own.len() as u64),
                file_entry("shared", hs, shared.len() as u64),
            ],
        };
        let mut out = Output {
            tree: Some(store.put_manifest(&m).unwrap()),
            ..Default::default()
        };
        out.artifacts.insert(
            "a".into(),
            store.put_bytes(format!("art{i}").as_bytes()).unwrap(),
        );
        let key = Hash::of(format!("key{i}").as_bytes());
        store.publish(&key, &out).unwrap();
        keys.push((key, out, ho));
    }
    let orphan = store.put_bytes(&random_bytes("orphan", 300_000)).unwrap();
    store
        .publish(&Hash::of(b"empty"), &Output::default())
        .unwrap();
    // key2 is only named by a record (as the lead's build record would)
    store
        .put_record(
            "spec-x",
            format!("{{\"nodes\":[\"{}\"]}}", keys[2].0).as_bytes(),
        )
        .unwrap();
    let before = dir_size(&d.path().join("packs"));

    let rep = store.gc(&[keys[0].0]).unwrap();
    assert_eq!(rep.outputs_kept, 2, "{rep:?}");
    assert_eq!(rep.outputs_removed, 3, "{rep:?}");
    assert!(rep.packs_after < rep.packs_before, "{rep:?}");
    let after = dir_size(&d.path().join("packs"));
    assert!(
        after < before - 2 * 500_000 - 300_000 + 10_000,
        "freed: {before} -> {after}"
    );
    assert_eq!(after, rep.bytes_after);
    for (i, (key, out, own)) in keys.iter().enumerate() {
        let kept = i == 0 || i == 2;
        assert_eq!(store.get_output(key).unwrap().is_some(), kept, "output {i}");
        assert_eq!(store.has(own), kept, "blob of output {i}");
        if kept {
            let m = store.get_manifest(&out.tree.unwrap()).unwrap();
            assert_eq!(m.entries.len(), 2);
            assert_eq!(store.read(&m.entries[1].kind_blob()).unwrap(), shared);
        }
    }
    assert!(!store.has(&orphan));
    let fresh = Store::open(d.path()).unwrap();
    assert!(!fresh.has(&orphan));
    assert!(fresh.has(&keys[0].2));
    let v = fresh.verify().unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.outputs_checked, 2);
    // gc again: nothing more to free
    let rep2 = fresh.gc(&[keys[0].0]).unwrap();
    assert_eq!(
        (rep2.outputs_removed, rep2.blobs_removed),
        (0, 0),
        "{rep2:?}"
    );
}

trait KindBlob {
    fn kind_blob(&self) -> Hash;
}
impl KindBlob for Entry {
    fn kind_blob(&self) -> Hash {
        match &self.kind {
            Kind::File { blob, .. } => *blob,
            _ => panic!("not a file"),
        }
    }
}

#[test]
fn verify_detects_a_flipped_byte() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let data = random_bytes("victim", 100_000);
    let h = store.put_bytes(&data).unwrap();
    let m = Manifest {
        entries: vec![file_entry("f", h, data.len() as u64)],
    };
    let out = Output {
        tree: Some(store.put_manifest(&m).unwrap()),
        ..Default::default()
    };
    store.publish(&Hash::of(b"k"), &out).unwrap();
    assert!(store.verify().unwrap().ok());
    drop(store);
    // flip one byte in the middle of the pack that holds the 100 kB blob
    let pack = std::fs::read_dir(d.path().join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let pos = bytes
        .windows(16)
        .position(|w| w == &data[50_000..50_016])
        .expect("blob stored raw in the pack");
    bytes[pos + 3] ^= 0x40;
    std::fs::write(&pack, &bytes).unwrap();
    let store = Store::open(d.path()).unwrap();
    let rep = store.verify().unwrap();
    assert!(!rep.ok());
    assert_eq!(rep.bad_blobs.len(), 1, "{rep:?}");
    assert_eq!(rep.bad_blobs[0].hash, h);
    assert_eq!(rep.incomplete_outputs.len(), 1, "{rep:?}");
    assert!(store.read(&h).is_err(), "read checks the hash");
}

#[test]
fn open_and_get_output_do_not_load_blob_indexes() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let h = store.put_bytes(b"content").unwrap();
    let mut out = Output::default();
    out.artifacts.insert("a".into(), h);
    store.publish(&Hash::of(b"k"), &out).unwrap();
    store.put_record("r", b"x").unwrap();
    drop(store);
    // damage every index: only blob access may notice
    for e in std::fs::read_dir(d.path().join("packs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "idx") {
            let mut b = std::fs::read(&p).unwrap();
            b[10] ^= 1;
            std::fs::write(&p, b).unwrap();
        }
    }
    let t = std::time::Instant::now();
    let store = Store::open(d.path()).unwrap();
    assert_eq!(store.get_output(&Hash::of(b"k")).unwrap(), Some(out));
    assert_eq!(store.get_record("r").unwrap(), Some(b"x".to_vec()));
    let cheap = t.elapsed();
    let err = store.read(&h).unwrap_err().to_string();
    assert!(err.contains(".idx") && err.contains("checksum"), "{err}");
    eprintln!("open + get_output + get_record: {cheap:?}");
}

#[test]
fn a_handle_sees_blobs_another_handle_published_before_it_locked() {
    let d = tempfile::tempdir().unwrap();
    let a = Store::open(d.path()).unwrap();
    let b = Store::open(d.path()).unwrap();
    let first = a.put_bytes(b"first").unwrap();
    a.publish(&Hash::of(b"1"), &Output::default()).unwrap();
    assert!(b.has(&first)); // b's index is now loaded
    let second = {
        let _l = a.lock().unwrap();
        let h = a.put_bytes(b"second").unwrap();
        let mut out = Output::default();
        out.artifacts.insert("x".into(), h);
        a.publish(&Hash::of(b"2"), &out).unwrap();
        h
    };
    // without the lock, a miss re-reads the pack directory
    assert_eq!(b.read(&second).unwrap(), b"second");
    // with the lock, the index is refreshed when the lock is taken
    let third = {
        let _l = a.lock().unwrap();
        let h = a.put_bytes(b"third").unwrap();
        let mut out = Output::default();
        out.artifacts.insert("x".into(), h);
        a.publish(&Hash::of(b"3"), &out).unwrap();
        h
    };
    let _l = b.lock().unwrap();
    assert_eq!(b.read(&third).unwrap(), b"third");
}

#[test]
fn compression_is_per_handle_and_off_by_default_unless_env() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let env_on = std::env::var("OSIMAGE_STORE_COMPRESS").is_ok_and(|v| v == "1");
    assert_eq!(store.compression(), env_on);
    store.set_compression(false);
    let text = text_bytes("plain", 400_000);
    let h = store.put_bytes(&text).unwrap();
    store.publish(&Hash::of(b"a"), &Output::default()).unwrap();
    let raw_size = dir_size(&d.path().join("packs"));
    assert!(raw_size >= 400_000, "stored raw: {raw_size}");
    store.set_compression(true);
    let text2 = text_bytes("zipped", 400_000);
    let h2 = store.put_bytes(&text2).unwrap();
    store.publish(&Hash::of(b"b"), &Output::default()).unwrap();
    let grew = dir_size(&d.path().join("packs")) - raw_size;
    assert!(grew < 200_000, "stored compressed: {grew}");
    // a handle without compression reads both
    let other = Store::open(d.path()).unwrap();
    other.set_compression(false);
    assert_eq!(other.read(&h).unwrap(), text);
    assert_eq!(other.read(&h2).unwrap(), text2);
}

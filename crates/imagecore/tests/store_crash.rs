//! Crash safety and locking across processes. The child processes are this test executable
//! itself, run with an environment switch that makes `zz_child_entry` do the child's work (the
//! entry returns at once in a normal test run).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use imagecore::Hash;
use imagecore::graph::Output;
use imagecore::store::Store;
use imagecore::tree::{Entry, Kind, Manifest};

const CRASH_ENV: &str = "OSIMAGE_TEST_CRASH_CHILD";
const LOCK_ENV: &str = "OSIMAGE_TEST_LOCK_CHILD";

/// Content of file `j` of output `i` (some shared between outputs, some large).
fn content(i: u64, j: u64) -> Vec<u8> {
    if j.is_multiple_of(4) {
        text_bytes(&format!("shared{j}"), 20_000)
    } else if j == 7 && i.is_multiple_of(5) {
        // > 16 MiB: goes through the streamed, own-pack path
        random_bytes(&format!("big{i}"), (17 << 20) + 3)
    } else {
        random_bytes(&format!("f{i}-{j}"), 3_000 + (j as usize) * 1_500)
    }
}

fn key(i: u64) -> Hash {
    Hash::of(format!("crash-key-{i}").as_bytes())
}

/// The child: publish outputs in a loop until killed.
fn crash_child(dir: &Path, start: u64) {
    let store = Store::open(dir).unwrap();
    // every other run stores compressed blobs, so both pack paths are killed mid-write
    store.set_compression((start / 1000) % 2 == 1);
    let _lock = store.lock().unwrap();
    for i in start.. {
        let mut entries = Vec::new();
        for j in 0..10u64 {
            let data = content(i, j);
            let (blob, size) = if j.is_multiple_of(2) {
                let p = dir.join(format!("../src-{i}-{j}"));
                std::fs::write(&p, &data).unwrap();
                let r = store.put_file(&p).unwrap();
                std::fs::remove_file(&p).unwrap();
                r
            } else {
                (store.put_bytes(&data).unwrap(), data.len() as u64)
            };
            entries.push(Entry {
                path: format!("{i}/{j}"),
                kind: Kind::File {
                    blob,
                    size,
                    link: None,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: BTreeMap::new(),
            });
        }
        let m = Manifest { entries };
        let mut out = Output {
            tree: Some(store.put_manifest(&m).unwrap()),
            ..Default::default()
        };
        out.artifacts
            .insert("n".into(), store.put_bytes(&i.to_le_bytes()).unwrap());
        out.meta.insert("i".into(), i.to_string());
        store.publish(&key(i), &out).unwrap();
        store
            .put_record("last", key(i).to_hex().as_bytes())
            .unwrap();
    }
}

fn lock_child(dir: &Path) {
    let store = Store::open(dir).unwrap();
    std::fs::write(dir.join("../trying"), b"1").unwrap();
    let l = store.lock().unwrap();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(dir.join("../acquired"), t.to_string()).unwrap();
    drop(l);
}

/// Not a test of its own: the entry point of the child processes the tests below spawn.
#[test]
fn zz_child_entry() {
    if let Ok(dir) = std::env::var(CRASH_ENV) {
        let start: u64 = std::env::var("START").unwrap().parse().unwrap();
        crash_child(Path::new(&dir), start);
    }
    if let Ok(dir) = std::env::var(LOCK_ENV) {
        lock_child(Path::new(&dir));
    }
}

fn spawn_child(env: &str, dir: &Path, start: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "store_crash::zz_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, dir)
        .env("START", start.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Check that every visible output is complete and its content is what the child wrote.
fn check_store(dir: &Path) -> usize {
    let store = Store::open(dir).unwrap();
    let rep = store.verify().unwrap();
    assert!(rep.ok(), "verify after crash: {rep:?}");
    let ls = store.list().unwrap();
    for info in &ls {
        let out = store.get_output(&info.key).unwrap().unwrap();
        let i: u64 = out.meta["i"].parse().unwrap();
        assert_eq!(info.key, key(i));
        assert_eq!(store.read(&out.artifacts["n"]).unwrap(), i.to_le_bytes());
        let m = store.get_manifest(&out.tree.unwrap()).unwrap();
        assert_eq!(m.entries.len(), 10);
        for (j, e) in m.entries.iter().enumerate() {
            let Kind::File { blob, .. } = &e.kind else {
                panic!()
            };
            assert_eq!(store.read(blob).unwrap(), content(i, j as u64), "{i}/{j}");
        }
    }
    // stale temporary files of the dead child are gone after open
    let tmp: Vec<_> = std::fs::read_dir(dir.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "tmp not cleaned: {tmp:?}");
    // every pack file left has an index
    for e in std::fs::read_dir(dir.join("packs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            assert!(
                p.with_extension("idx").exists(),
                "unindexed pack left: {}",
                p.display()
            );
        }
    }
    ls.len()
}

#[test]
fn sigkill_at_random_points_never_leaves_a_trusted_bad_state() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("store");
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed = blake3::hash(format!("{:?}", Instant::now()).as_bytes());
    let mut visible = 0;
    let runs = 12;
    for run in 0..runs {
        seed = blake3::hash(seed.as_bytes());
        let delay_ms = 30 + (u16::from_le_bytes([seed.as_bytes()[0], seed.as_bytes()[1]]) % 1500);
        let mut child = spawn_child(CRASH_ENV, &dir, run * 1000);
        std::thread::sleep(Duration::from_millis(delay_ms as u64));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "child must have been killed");
        let n = check_store(&dir);
        eprintln!("run {run}: killed after {delay_ms} ms, {n} outputs visible");
        assert!(n >= visible, "published outputs never disappear");
        visible = n;
    }
    assert!(visible > 0, "some outputs were published in {runs} runs");
    // the store still works for a normal build afterwards
    let store = Store::open(&dir).unwrap();
    let _l = store.lock().unwrap();
    let h = store.put_bytes(b"after the crashes").unwrap();
    let mut out = Output::default();
    out.artifacts.insert("x".into(), h);
    store.publish(&Hash::of(b"after"), &out).unwrap();
    assert!(store.verify().unwrap().ok());
}

#[test]
fn second_process_waits_for_the_lock() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("store");
    let store = Store::open(&dir).unwrap();
    let lock = store.lock().unwrap();
    let mut child = spawn_child(LOCK_ENV, &dir, 0);
    let start = Instant::now();
    while !d.path().join("trying").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !d.path().join("acquired").exists(),
        "child got the lock while we held it"
    );
    let released = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    drop(lock);
    assert!(child.wait().unwrap().success());
    let acquired: u128 = std::fs::read_to_string(d.path().join("acquired"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(acquired >= released, "child acquired before release");
    // and once free, the lock is taken at once
    let t = Instant::now();
    let _again = store.lock().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
}

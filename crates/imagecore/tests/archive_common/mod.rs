//! Helpers shared by the archive integration tests.
#![allow(dead_code, unused_macros, unused_imports)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use imagecore::archive::BlobSource;
use imagecore::hash::Hash;
use imagecore::tree::manifest::{Entry, Kind};

pub struct MapSource(pub HashMap<Hash, Vec<u8>>);

impl BlobSource for MapSource {
    fn open_blob(&self, h: &Hash) -> std::io::Result<Box<dyn Read + Send + '_>> {
        match self.0.get(h) {
            Some(v) => Ok(Box::new(&v[..])),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such blob",
            )),
        }
    }
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[macro_export]
macro_rules! require {
    ($cond:expr, $why:expr) => {
        if !$cond {
            eprintln!("SKIPPED: {}", $why);
            return;
        }
    };
}

pub const SDE: i64 = 1_700_000_000;

pub fn entry(path: &str, kind: Kind, mode: u32, mtime: i64) -> Entry {
    Entry {
        path: path.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime,
        xattrs: BTreeMap::new(),
    }
}

/// Run `sh -c script` in `dir` with `input` on stdin; returns stdout; panics on failure.
pub fn sh(dir: &Path, script: &str, input: &[u8]) -> Vec<u8> {
    let mut c = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = input.to_vec();
    let t = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = c.wait_with_output().unwrap();
    t.join().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

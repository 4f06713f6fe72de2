//! Helpers shared by the store_* and tree_* integration tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::Command;

/// Deterministic pseudo-random bytes from a seed (blake3 XOF).
pub fn random_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(seed.as_bytes());
    h.finalize_xof().fill(&mut out);
    out
}

/// Deterministic, compressible text-like bytes.
pub fn text_bytes(seed: &str, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "kernel", "module", "usr", "lib64", "systemd", "network", "config", "firmware", "the",
        "of", "and", "service", "daemon", "include", "share", "locale", "python3", "x86_64\n",
    ];
    let noise = random_bytes(seed, len / 4 + 16);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        let w = WORDS[noise[i % noise.len()] as usize % WORDS.len()];
        out.extend_from_slice(w.as_bytes());
        out.push(b' ');
        i += 1;
    }
    out.truncate(len);
    out
}

/// An endless pseudo-random reader limited to `len` bytes.
pub fn random_reader(seed: &str, len: u64) -> impl Read {
    let mut h = blake3::Hasher::new();
    h.update(seed.as_bytes());
    h.finalize_xof().take(len)
}

/// Total size of the files in a directory (recursively).
pub fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// True when running as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Run a shell command in `dir`, returning stdout; panics with stderr on failure.
pub fn sh(dir: &Path, cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .expect("spawn sh");
    assert!(
        out.status.success(),
        "`{cmd}` in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

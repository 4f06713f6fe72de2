//! A read-ahead thread for a package file: it reads (and hashes) the compressed payload in
//! chunks while the calling thread decompresses what it already sent, so reading and the
//! payload digests are off the decompressor's thread.

use std::io::{self, Read};
use std::sync::mpsc;

use super::payload::{Digests, HashingReader};

/// Bytes per chunk.
const CHUNK: usize = 256 * 1024;
/// Chunks in circulation (read ahead, or being decompressed).
const CHUNKS: usize = 8;

/// The decompressor's side: the chunks the thread read, in order.
pub(super) struct ChunkReader {
    full: mpsc::Receiver<io::Result<Vec<u8>>>,
    empty: mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            let used = std::mem::take(&mut self.cur);
            if used.capacity() > 0 {
                let _ = self.empty.try_send(used);
            }
            self.pos = 0;
            match self.full.recv() {
                Ok(chunk) => self.cur = chunk?,
                Err(_) => return Ok(0), // the thread reached the end of the file
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Start reading `src` on a thread of its own. The thread reads to the end of the file even
/// when the reader is dropped early (the digests cover the whole file) and returns them.
pub(super) fn spawn(
    mut src: HashingReader,
) -> io::Result<(ChunkReader, std::thread::JoinHandle<io::Result<Digests>>)> {
    let (full_tx, full) = mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS);
    let (empty, empty_rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS);
    let handle = std::thread::Builder::new()
        .name("osimage-rpm-read".into())
        .spawn(move || -> io::Result<Digests> {
            let mut made = 0;
            loop {
                let mut buf = match empty_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if made < CHUNKS => {
                        made += 1;
                        Vec::with_capacity(CHUNK)
                    }
                    Err(_) => match empty_rx.recv() {
                        Ok(b) => b,
                        Err(_) => break, // the reader is gone: hash the rest below
                    },
                };
                buf.resize(CHUNK, 0);
                let n = match crate::ioutil::read_full(&mut src, &mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let kind = e.kind();
                        let msg = e.to_string();
                        let _ = full_tx.send(Err(e));
                        return Err(io::Error::new(kind, msg));
                    }
                };
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                if full_tx.send(Ok(buf)).is_err() {
                    break;
                }
            }
            drop(full_tx);
            src.finish()
        })?;
    Ok((
        ChunkReader {
            full,
            empty,
            cur: Vec::new(),
            pos: 0,
        },
        handle,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::payload::{PayloadError, RpmFile};
    use sha2::{Digest, Sha256};
    use std::io::Read;

    /// A package whose payload is over the read-ahead threshold (incompressible content).
    fn big_rpm(dir: &std::path::Path) -> std::path::PathBuf {
        let mut data = vec![0u8; 6 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let mut b = rpm::PackageBuilder::new("big", "1", "MIT", "noarch", "big payload");
        b.with_file_contents(data, rpm::FileOptions::new("/big.bin"))
            .unwrap();
        let p = dir.join("big.rpm");
        b.build().unwrap().write_file(&p).unwrap();
        p
    }

    fn read_all(path: &std::path::Path) -> Result<(usize, Option<String>), PayloadError> {
        let f = RpmFile::open(path)?;
        let mut r = f.payload_reader_with_file_digest()?;
        let mut n = 0;
        let mut buf = vec![0u8; 100_000];
        loop {
            let k = r.read(&mut buf).map_err(|source| PayloadError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            if k == 0 {
                break;
            }
            n += k;
        }
        Ok((n, r.finish_file_digest()?))
    }

    #[test]
    fn a_big_payload_is_read_ahead_and_both_digests_cover_the_whole_file() {
        let t = tempfile::tempdir().unwrap();
        let p = big_rpm(t.path());
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            bytes.len() > (4 << 20),
            "payload below the read-ahead threshold"
        );
        let (n, digest) = read_all(&p).unwrap();
        assert!(n > 6 << 20);
        assert_eq!(digest, Some(hex::encode(Sha256::digest(&bytes))));
    }

    #[test]
    fn a_corrupted_big_payload_fails_its_digest() {
        let t = tempfile::tempdir().unwrap();
        let p = big_rpm(t.path());
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.len() - 1000; // inside the compressed payload, near its end
        bytes[at] ^= 0x55;
        std::fs::write(&p, &bytes).unwrap();
        let err = read_all(&p).expect_err("corruption must be detected");
        let msg = err.to_string();
        assert!(
            msg.contains("digest mismatch") || msg.contains("big.rpm"),
            "unexpected error: {msg}"
        );
    }

    #[test]
    fn dropping_the_reader_early_still_hashes_the_rest_of_the_file() {
        let t = tempfile::tempdir().unwrap();
        let p = big_rpm(t.path());
        let bytes = std::fs::read(&p).unwrap();
        let f = RpmFile::open(&p).unwrap();
        let mut r = f.payload_reader_with_file_digest().unwrap();
        let mut head = vec![0u8; 4096];
        r.read_exact(&mut head).unwrap();
        // the read-ahead thread goes on to the end: both digests are still checked whole
        let d = r.finish_file_digest().unwrap();
        assert_eq!(d, Some(hex::encode(Sha256::digest(&bytes))));
    }
}

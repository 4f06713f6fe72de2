//! The deterministic newc (`070701`) writer.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};

use super::ArchiveError;

/// The metadata of one archive entry, as given to [`NewcWriter::append`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Full `st_mode` (type bits and permission bits).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Link count to record (hardlink group size for grouped files).
    pub nlink: u32,
    /// Modification time (already clamped by the caller).
    pub mtime: u32,
    /// Body size in bytes (0 for hardlink members after the first).
    pub size: u64,
    /// Device major (character/block devices).
    pub rdev_major: u32,
    /// Device minor.
    pub rdev_minor: u32,
    /// Hardlink group: entries with the same `Some(g)` share one inode number.
    pub link_group: Option<u64>,
}

/// A deterministic newc writer: inode numbers from 1 in write order (members of a hardlink
/// group share the number of their first member), device 0:0, no flush between entries, names
/// as raw bytes, duplicate names refused, `TRAILER!!!` on [`NewcWriter::finish`].
///
/// The writer does not reorder: give it parents before children and put a hardlink group's data
/// in its first member (size 0 for the others), as the kernel's initramfs unpacker expects.
pub struct NewcWriter<W: Write> {
    w: W,
    next_ino: u32,
    groups: HashMap<u64, u32>,
    names: HashSet<Vec<u8>>,
    written: u64,
    buf: Vec<u8>,
}

const MAX_SIZE: u64 = u32::MAX as u64;
const COPY_BUF: usize = 1 << 20;

fn hex8(out: &mut Vec<u8>, v: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..8).rev() {
        out.push(HEX[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// Append the newc header of `name` to `out`: the 110-byte header, the name, its NUL and the
/// padding that makes the body start 4-aligned, for a header starting at stream offset `at`.
/// `m.size` must already be checked to fit 32 bits.
pub(crate) fn push_header(out: &mut Vec<u8>, name: &[u8], m: &EntryMeta, ino: u32, at: u64) {
    let start = out.len();
    out.extend_from_slice(b"070701");
    for v in [
        ino,
        m.mode,
        m.uid,
        m.gid,
        m.nlink,
        m.mtime,
        m.size as u32,
        0,
        0,
        m.rdev_major,
        m.rdev_minor,
        name.len() as u32 + 1,
        0,
    ] {
        hex8(out, v);
    }
    out.extend_from_slice(name);
    out.push(0);
    let p = pad4(at + (out.len() - start) as u64);
    out.resize(out.len() + p, 0);
}

/// The length of an entry's header (with name and padding) plus its padded body, for an entry
/// starting 4-aligned.
pub(crate) fn entry_len(name: &[u8], size: u64) -> u64 {
    let h = 110 + name.len() as u64 + 1;
    h + pad4(h) as u64 + size + pad4(size) as u64
}

/// Check what the writer refuses: a body of 4 GiB or more, an empty name, a NUL in a name, or
/// the trailer's name.
pub(crate) fn check_entry(name: &[u8], m: &EntryMeta, offset: u64) -> Result<(), ArchiveError> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    if m.size > MAX_SIZE {
        return Err(ArchiveError::TooLarge {
            path: shown(),
            size: m.size,
        });
    }
    if name.is_empty() || name.contains(&0) || name == b"TRAILER!!!" {
        return Err(ArchiveError::Format {
            offset,
            msg: format!("invalid entry name {:?}", shown()),
        });
    }
    Ok(())
}

/// Body padding after `n` bytes.
pub(crate) fn pad4(n: u64) -> usize {
    ((4 - (n % 4)) % 4) as usize
}

impl<W: Write> NewcWriter<W> {
    /// A writer into `w` (wrap `w` in a `BufWriter` if it is unbuffered).
    pub fn new(w: W) -> Self {
        NewcWriter {
            w,
            next_ino: 1,
            groups: HashMap::new(),
            names: HashSet::new(),
            written: 0,
            buf: Vec::new(),
        }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, data: &[u8], name: &[u8]) -> Result<(), ArchiveError> {
        self.w.write_all(data).map_err(|e| {
            ArchiveError::io(
                format!("writing archive entry {}", String::from_utf8_lossy(name)),
                e,
            )
        })?;
        self.written += data.len() as u64;
        Ok(())
    }

    fn header(&mut self, name: &[u8], m: &EntryMeta, ino: u32) -> Result<(), ArchiveError> {
        let mut h = Vec::with_capacity(110 + name.len() + 4);
        push_header(&mut h, name, m, ino, self.written);
        self.put(&h, name)
    }

    /// Start an entry: validate it, assign its inode number and write its header.
    fn begin(&mut self, name: &[u8], m: &EntryMeta) -> Result<(), ArchiveError> {
        check_entry(name, m, self.written)?;
        let shown = || String::from_utf8_lossy(name).into_owned();
        if !self.names.insert(name.to_vec()) {
            return Err(ArchiveError::Duplicate(shown()));
        }
        let ino = match m.link_group {
            Some(g) => match self.groups.get(&g) {
                Some(&i) => i,
                None => {
                    let i = self.next_ino;
                    self.next_ino += 1;
                    self.groups.insert(g, i);
                    i
                }
            },
            None => {
                let i = self.next_ino;
                self.next_ino += 1;
                i
            }
        };
        self.header(name, m, ino)
    }

    fn end_body(&mut self, name: &[u8]) -> Result<(), ArchiveError> {
        let p = pad4(self.written);
        self.put(&[0u8; 4][..p], name)
    }

    /// Append an entry whose body is `data` (must be exactly `m.size` bytes).
    pub fn append_bytes(
        &mut self,
        name: &[u8],
        m: &EntryMeta,
        data: &[u8],
    ) -> Result<(), ArchiveError> {
        if data.len() as u64 != m.size {
            return Err(ArchiveError::SizeMismatch {
                path: String::from_utf8_lossy(name).into_owned(),
                expected: m.size,
                got: data.len() as u64,
            });
        }
        self.begin(name, m)?;
        self.put(data, name)?;
        self.end_body(name)
    }

    /// Append an entry whose body is read from `data` (exactly `m.size` bytes, else
    /// [`ArchiveError::SizeMismatch`]).
    pub fn append(
        &mut self,
        name: &[u8],
        m: &EntryMeta,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        self.begin(name, m)?;
        let mut left = m.size;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(COPY_BUF, 0);
        let shown = || String::from_utf8_lossy(name).into_owned();
        let res = (|| {
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = match data.read(&mut buf[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ArchiveError::io(format!("reading {}", shown()), e)),
                };
                if n == 0 {
                    return Err(ArchiveError::SizeMismatch {
                        path: shown(),
                        expected: m.size,
                        got: m.size - left,
                    });
                }
                self.put(&buf[..n], name)?;
                left -= n as u64;
            }
            let mut one = [0u8; 1];
            let more = loop {
                match data.read(&mut one) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ArchiveError::io(format!("reading {}", shown()), e)),
                }
            };
            if more > 0 {
                return Err(ArchiveError::SizeMismatch {
                    path: shown(),
                    expected: m.size,
                    got: m.size + 1,
                });
            }
            Ok(())
        })();
        self.buf = buf;
        res?;
        self.end_body(name)
    }

    /// Write `TRAILER!!!` and return the inner writer (not flushed, not finished).
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        self.write_trailer()?;
        Ok(self.w)
    }

    pub(crate) fn write_trailer(&mut self) -> Result<(), ArchiveError> {
        let m = EntryMeta {
            nlink: 1,
            ..EntryMeta::default()
        };
        self.header(b"TRAILER!!!", &m, 0)
    }

    pub(crate) fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> EntryMeta {
        EntryMeta {
            mode: 0o100644,
            nlink: 1,
            size,
            ..EntryMeta::default()
        }
    }

    #[test]
    fn layout_is_aligned_and_inodes_sequential() {
        let mut w = NewcWriter::new(Vec::new());
        w.append_bytes(b"a", &file(3), b"abc").unwrap();
        let mut g = file(2);
        g.link_group = Some(7);
        g.nlink = 2;
        w.append_bytes(b"bb", &g, b"xy").unwrap();
        g.size = 0;
        w.append_bytes(b"ccc", &g, b"").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[6..14], b"00000001");
        // second header starts after 110 + "a\0" (→112) + 3 body + 1 pad = 116
        assert_eq!(&out[116..122], b"070701");
        assert_eq!(&out[122..130], b"00000002");
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("TRAILER!!!"));
    }

    #[test]
    fn refuses_duplicates_wrong_sizes_and_huge_files() {
        let mut w = NewcWriter::new(Vec::new());
        w.append_bytes(b"a", &file(0), b"").unwrap();
        assert!(matches!(
            w.append_bytes(b"a", &file(0), b""),
            Err(ArchiveError::Duplicate(_))
        ));
        assert!(matches!(
            w.append(b"b", &file(5), &mut &b"abc"[..]),
            Err(ArchiveError::SizeMismatch { got: 3, .. })
        ));
        assert!(matches!(
            w.append(b"c", &file(2), &mut &b"abc"[..]),
            Err(ArchiveError::SizeMismatch { got: 3, .. })
        ));
        assert!(matches!(
            w.append(b"d", &file(1 << 32), &mut &b""[..]),
            Err(ArchiveError::TooLarge { .. })
        ));
    }
}

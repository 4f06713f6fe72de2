//! A streaming reader for newc (`070701`), crc (`070702`) and RPM's stripped (`07070X`) cpio.
//!
//! RPM ≥ 4.12 writes packages with files of 4 GiB or more with "stripped" headers: the magic
//! `07070X`, 8 hex digits giving the file's index in the package header, padding to 4 bytes, then
//! the body, whose size (and all other metadata) comes from the package header. The trailer is
//! an ordinary newc `TRAILER!!!`. Such streams need [`NewcReader::with_stripped_sizes`].

use std::borrow::Cow;
use std::io::{self, Read};

use super::ArchiveError;

/// The header flavour of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewcFormat {
    /// `070701`.
    Newc,
    /// `070702`: newc with a byte-sum checksum of regular files' bodies (verified while reading).
    Crc,
    /// `07070X`: RPM's stripped header (index into the package header only).
    Stripped,
}

/// One entry's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewcHeader {
    /// Header flavour.
    pub format: NewcFormat,
    /// Inode number (0 for stripped entries).
    pub ino: u32,
    /// Full `st_mode` (0 for stripped entries).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Modification time.
    pub mtime: u32,
    /// Body size in bytes.
    pub file_size: u64,
    /// Device major of the file system the entry came from.
    pub dev_major: u32,
    /// Device minor of the file system.
    pub dev_minor: u32,
    /// Device major (character/block devices).
    pub rdev_major: u32,
    /// Device minor.
    pub rdev_minor: u32,
    /// The checksum field (the body's byte sum for `070702`).
    pub check: u32,
    /// The name, raw bytes without the NUL (empty for stripped entries).
    pub name: Vec<u8>,
    /// For stripped entries: the file index in the RPM header.
    pub stripped_index: Option<u32>,
}

impl NewcHeader {
    /// The name as text (lossy).
    pub fn name_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

type SizeFn = Box<dyn FnMut(u32) -> Option<u64> + Send>;

/// A streaming cpio reader; see [`NewcReader::next_entry`].
pub struct NewcReader<R: Read> {
    r: R,
    pos: u64,
    remaining: u64,
    crc: Option<(u32, u32)>,
    entry_name: Vec<u8>,
    done: bool,
    stripped_size: Option<SizeFn>,
}

/// An entry being read: its header, and `Read` for its body. Unread body bytes are skipped by
/// the next [`NewcReader::next_entry`].
pub struct NewcEntry<'a, R: Read> {
    header: NewcHeader,
    rd: &'a mut NewcReader<R>,
}

impl<R: Read> NewcEntry<'_, R> {
    /// The entry's header.
    pub fn header(&self) -> &NewcHeader {
        &self.header
    }
}

impl<R: Read> Read for NewcEntry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rd.read_body(buf)
    }
}

fn parse_hex(field: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(field).ok()?;
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

impl<R: Read> NewcReader<R> {
    /// A reader over an uncompressed cpio stream (see [`super::decompressor`]).
    pub fn new(r: R) -> Self {
        NewcReader {
            r,
            pos: 0,
            remaining: 0,
            crc: None,
            entry_name: Vec::new(),
            done: false,
            stripped_size: None,
        }
    }

    /// A reader that can also read RPM's stripped `07070X` entries: `size(fx)` gives the body
    /// size of file index `fx` from the package header (0 for hardlink members that carry no
    /// data), or `None` when the index is unknown.
    pub fn with_stripped_sizes(
        r: R,
        size: impl FnMut(u32) -> Option<u64> + Send + 'static,
    ) -> Self {
        let mut me = Self::new(r);
        me.stripped_size = Some(Box::new(size));
        me
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.r
    }

    fn fail(&self, offset: u64, msg: impl Into<String>) -> ArchiveError {
        ArchiveError::Format {
            offset,
            msg: msg.into(),
        }
    }

    /// Read exactly `buf.len()` bytes; `Ok(false)` on a clean EOF before the first byte.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, ArchiveError> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) if n == 0 => return Ok(false),
                Ok(0) => return Err(self.fail(self.pos + n as u64, "truncated cpio stream")),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ArchiveError::io("reading the cpio stream", e)),
            }
        }
        self.pos += n as u64;
        Ok(true)
    }

    fn skip_pad(&mut self) -> Result<(), ArchiveError> {
        let p = ((4 - self.pos % 4) % 4) as usize;
        let mut b = [0u8; 4];
        if p > 0 && !self.fill(&mut b[..p])? {
            return Err(self.fail(self.pos, "truncated cpio stream (padding)"));
        }
        Ok(())
    }

    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = self.remaining.min(buf.len() as u64) as usize;
        let n = self.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "cpio stream ends inside the body of {} ({} bytes missing)",
                    String::from_utf8_lossy(&self.entry_name),
                    self.remaining
                ),
            ));
        }
        self.pos += n as u64;
        self.remaining -= n as u64;
        if let Some((expected, sum)) = &mut self.crc {
            for &b in &buf[..n] {
                *sum = sum.wrapping_add(b as u32);
            }
            if self.remaining == 0 && *sum != *expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: 070702 checksum mismatch (header {:08x}, body {:08x})",
                        String::from_utf8_lossy(&self.entry_name),
                        expected,
                        sum
                    ),
                ));
            }
        }
        Ok(n)
    }

    /// The next entry, or `None` after `TRAILER!!!`. Skips what is left of the previous body.
    pub fn next_entry(&mut self) -> Result<Option<NewcEntry<'_, R>>, ArchiveError> {
        if self.done {
            return Ok(None);
        }
        let mut scratch = [0u8; 64 * 1024];
        while self.remaining > 0 {
            self.read_body(&mut scratch)
                .map_err(|e| ArchiveError::io("skipping an entry body", e))?;
        }
        self.crc = None;
        self.skip_pad()?;
        let start = self.pos;
        let mut magic = [0u8; 6];
        if !self.fill(&mut magic)? {
            return Err(self.fail(start, "stream ends without TRAILER!!! (truncated archive?)"));
        }
        let format = match &magic {
            b"070701" => NewcFormat::Newc,
            b"070702" => NewcFormat::Crc,
            b"07070X" => NewcFormat::Stripped,
            b"070707" => {
                return Err(self.fail(
                    start,
                    "old portable (odc) cpio is not supported; only newc/crc",
                ));
            }
            _ => {
                return Err(self.fail(
                    start,
                    format!(
                        "bad cpio magic {:?}; expected 070701, 070702 or 07070X",
                        String::from_utf8_lossy(&magic)
                    ),
                ));
            }
        };
        if format == NewcFormat::Stripped {
            let mut fx = [0u8; 8];
            if !self.fill(&mut fx)? {
                return Err(self.fail(start, "truncated 07070X header"));
            }
            let fx = parse_hex(&fx).ok_or_else(|| self.fail(start, "bad 07070X file index"))?;
            self.skip_pad()?;
            let got = self.stripped_size.as_mut().map(|f| f(fx));
            let size = match got {
                Some(Some(size)) => size,
                Some(None) => {
                    return Err(self.fail(
                        start,
                        format!("07070X entry for file index {fx}, which the package header does not list"),
                    ));
                }
                None => {
                    return Err(self.fail(
                        start,
                        "RPM stripped 07070X entry (large-file payload): its sizes come from the package header; read it with NewcReader::with_stripped_sizes",
                    ));
                }
            };
            self.remaining = size;
            self.entry_name = format!("file index {fx}").into_bytes();
            let header = NewcHeader {
                format,
                ino: 0,
                mode: 0,
                uid: 0,
                gid: 0,
                nlink: 0,
                mtime: 0,
                file_size: size,
                dev_major: 0,
                dev_minor: 0,
                rdev_major: 0,
                rdev_minor: 0,
                check: 0,
                name: Vec::new(),
                stripped_index: Some(fx),
            };
            return Ok(Some(NewcEntry { header, rd: self }));
        }
        let mut raw = [0u8; 104];
        if !self.fill(&mut raw)? {
            return Err(self.fail(start, "truncated cpio header"));
        }
        let mut f = [0u32; 13];
        for (i, v) in f.iter_mut().enumerate() {
            *v = parse_hex(&raw[i * 8..i * 8 + 8])
                .ok_or_else(|| self.fail(start, format!("header field {i} is not 8 hex digits")))?;
        }
        let namesize = f[11] as usize;
        if namesize == 0 || namesize > 64 * 1024 {
            return Err(self.fail(start, format!("bad name size {namesize}")));
        }
        let mut name = vec![0u8; namesize];
        if !self.fill(&mut name)? {
            return Err(self.fail(start, "truncated entry name"));
        }
        if name.pop() != Some(0) {
            return Err(self.fail(start, "entry name is not NUL-terminated"));
        }
        self.skip_pad()?;
        if name == b"TRAILER!!!" {
            self.done = true;
            return Ok(None);
        }
        let header = NewcHeader {
            format,
            ino: f[0],
            mode: f[1],
            uid: f[2],
            gid: f[3],
            nlink: f[4],
            mtime: f[5],
            file_size: f[6] as u64,
            dev_major: f[7],
            dev_minor: f[8],
            rdev_major: f[9],
            rdev_minor: f[10],
            check: f[12],
            name,
            stripped_index: None,
        };
        self.remaining = header.file_size;
        self.entry_name.clone_from(&header.name);
        // GNU cpio sums regular file bodies only (symlink targets carry checksum 0).
        if format == NewcFormat::Crc && header.mode & 0o170000 == 0o100000 {
            self.crc = Some((header.check, 0));
            if header.file_size == 0 && header.check != 0 {
                return Err(self.fail(start, "070702 checksum mismatch on an empty body"));
            }
        }
        Ok(Some(NewcEntry { header, rd: self }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripped_stream() -> Vec<u8> {
        // file index 1 with a 5-byte body, file index 0 with 0 bytes, then a newc trailer.
        let mut v = Vec::new();
        v.extend_from_slice(b"07070X00000001\0\0");
        v.extend_from_slice(b"hello\0\0\0");
        v.extend_from_slice(b"07070X00000000\0\0");
        let mut t = b"070701".to_vec();
        for x in [0u32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0] {
            t.extend_from_slice(format!("{x:08x}").as_bytes());
        }
        t.extend_from_slice(b"TRAILER!!!\0");
        while !t.len().is_multiple_of(4) {
            t.push(0);
        }
        v.extend_from_slice(&t);
        v
    }

    #[test]
    fn reads_stripped_entries_with_sizes_from_the_header() {
        let sizes = [0u64, 5];
        let mut r =
            NewcReader::with_stripped_sizes(io::Cursor::new(stripped_stream()), move |fx| {
                sizes.get(fx as usize).copied()
            });
        let mut e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.header().stripped_index, Some(1));
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        assert_eq!(body, b"hello");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.header().stripped_index, Some(0));
        assert_eq!(e.header().file_size, 0);
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn stripped_without_sizes_is_a_clear_error() {
        let data = stripped_stream();
        let mut r = NewcReader::new(&data[..]);
        let err = r.next_entry().err().unwrap().to_string();
        assert!(err.contains("07070X"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_streams_are_errors() {
        let mut r = NewcReader::new(&b""[..]);
        assert!(r.next_entry().is_err());
        let mut r = NewcReader::new(&b"0707010000zz"[..]);
        assert!(r.next_entry().is_err());
        let mut r = NewcReader::new(&b"hello world, not cpio"[..]);
        assert!(r.next_entry().is_err());
    }
}

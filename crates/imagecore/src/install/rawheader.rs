//! Minimal reader for raw RPM header blobs (as stored in files and in the rpmdb), giving typed
//! access by numeric tag, and the entry layout needed to append install-time tags.

/// One index entry.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry {
    /// Tag number.
    pub tag: u32,
    /// Data type (0..=9).
    pub ty: u32,
    /// Offset in the data store.
    pub off: usize,
    /// Item count.
    pub count: usize,
}

/// A parsed header blob: `il`, `dl`, index entries, data store.
pub struct RawHeader<'a> {
    /// Index entries in stored order.
    pub entries: Vec<RawEntry>,
    /// The data store.
    pub data: &'a [u8],
    /// The raw index bytes (il * 16).
    pub index_bytes: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> RawHeader<'a> {
    /// Parse a blob that starts with `il`/`dl` (rpmdb form). Use [`RawHeader::parse_file`] for
    /// the file form with the 8-byte magic.
    pub fn parse(blob: &'a [u8]) -> Option<RawHeader<'a>> {
        let il = be32(blob, 0)? as usize;
        let dl = be32(blob, 4)? as usize;
        let index_bytes = blob.get(8..8 + il * 16)?;
        let data = blob.get(8 + il * 16..8 + il * 16 + dl)?;
        let mut entries = Vec::with_capacity(il);
        for i in 0..il {
            let e = &index_bytes[i * 16..i * 16 + 16];
            entries.push(RawEntry {
                tag: be32(e, 0)?,
                ty: be32(e, 4)?,
                off: be32(e, 8)? as usize,
                count: be32(e, 12)? as usize,
            });
        }
        Some(RawHeader {
            entries,
            data,
            index_bytes,
        })
    }

    /// Parse the file form (8-byte magic + reserved, then `il`/`dl`).
    pub fn parse_file(blob: &'a [u8]) -> Option<RawHeader<'a>> {
        RawHeader::parse(blob.get(8..)?)
    }

    /// The entry of `tag`.
    pub fn entry(&self, tag: u32) -> Option<RawEntry> {
        self.entries.iter().find(|e| e.tag == tag).copied()
    }

    /// Byte length of an entry's data.
    pub fn data_len(&self, e: &RawEntry) -> Option<usize> {
        let d = self.data.get(e.off..)?;
        Some(match e.ty {
            0 => 0,
            1 | 2 | 7 => e.count,
            3 => 2 * e.count,
            4 => 4 * e.count,
            5 => 8 * e.count,
            6 => d.iter().position(|b| *b == 0)? + 1,
            8 | 9 => {
                let mut at = 0;
                for _ in 0..e.count {
                    at += d.get(at..)?.iter().position(|b| *b == 0)? + 1;
                }
                at
            }
            _ => return None,
        })
    }

    /// Raw data bytes of an entry.
    pub fn bytes(&self, e: &RawEntry) -> Option<&'a [u8]> {
        let n = self.data_len(e)?;
        self.data.get(e.off..e.off + n)
    }

    /// Strings of a string / string-array / i18n tag.
    pub fn strings(&self, tag: u32) -> Vec<String> {
        let Some(e) = self.entry(tag) else {
            return Vec::new();
        };
        if !matches!(e.ty, 6 | 8 | 9) {
            return Vec::new();
        }
        let Some(b) = self.bytes(&e) else {
            return Vec::new();
        };
        let mut v: Vec<String> = b
            .split(|c| *c == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        v.pop(); // after the final NUL
        if e.ty == 9 {
            v.truncate(1);
        }
        v
    }

    /// Values of an INT32 tag.
    pub fn u32s(&self, tag: u32) -> Vec<u32> {
        match self.entry(tag) {
            Some(e) if e.ty == 4 => self
                .bytes(&e)
                .map(|b| b.chunks(4).filter_map(|c| be32(c, 0)).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Values of an INT16 tag.
    pub fn u16s(&self, tag: u32) -> Vec<u16> {
        match self.entry(tag) {
            Some(e) if e.ty == 3 => self
                .bytes(&e)
                .map(|b| {
                    b.chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Full file paths (DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]).
    pub fn file_paths(&self) -> Vec<String> {
        let old = self.strings(1027);
        if !old.is_empty() {
            return old;
        }
        let base = self.strings(1117);
        let dirs = self.strings(1118);
        let idx = self.u32s(1116);
        base.iter()
            .zip(idx.iter())
            .map(|(b, i)| {
                format!(
                    "{}{}",
                    dirs.get(*i as usize).map(String::as_str).unwrap_or(""),
                    b
                )
            })
            .collect()
    }
}

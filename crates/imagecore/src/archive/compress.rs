//! Compressors (whose `flush()` is a no-op), end-of-stream padding, and the sniffing decompressor.

use std::io::{self, Read, Write};

use super::{ArchiveError, Compress};

/// A compressing writer that must be ended explicitly.
///
/// `flush()` does nothing (a per-entry flush into zstdmt made archives 36 % larger); only
/// [`FinishWrite::finish`] ends the stream and flushes the underlying writer.
pub trait FinishWrite: Write {
    /// Write the codec's end of stream and flush the underlying writer.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

struct Plain<W: Write>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> FinishWrite for Plain<W> {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}

struct Zstd<'a, W: Write>(zstd::stream::write::Encoder<'a, W>);

impl<W: Write> Write for Zstd<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> FinishWrite for Zstd<'_, W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.flush()
    }
}

struct Gzip<W: Write>(flate2::write::GzEncoder<W>);

impl<W: Write> Write for Gzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> FinishWrite for Gzip<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.flush()
    }
}

struct Xz<W: Write>(liblzma::write::XzEncoder<W>);

impl<W: Write> Write for Xz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> FinishWrite for Xz<W> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()?.flush()
    }
}

/// The number of worker threads for `threads` (0 = available parallelism), at least 1.
pub(crate) fn worker_count(threads: u32) -> u32 {
    if threads > 0 {
        return threads;
    }
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
        .max(1)
}

/// xz block size used by the multi-threaded encoder: fixed, so the thread count does not change
/// the output.
const XZ_BLOCK_SIZE: u64 = 24 << 20;

/// Refuses a zstd level outside what the linked libzstd accepts.
pub(crate) fn check_zstd_level(level: i32) -> Result<(), ArchiveError> {
    let (lo, hi) = (
        zstd::zstd_safe::min_c_level(),
        zstd::zstd_safe::max_c_level(),
    );
    if level < lo || level > hi {
        return Err(ArchiveError::Options(format!(
            "zstd level {level} is out of range {lo}..={hi}"
        )));
    }
    Ok(())
}

/// Wrap `w` in the compressor `c`. zstd runs multi-threaded (zstdmt, ≥ 1 worker, checksum on);
/// gzip via flate2; xz via liblzma's multi-threaded encoder. `flush()` is a no-op; call
/// [`FinishWrite::finish`] to end the stream.
pub fn compressor<'a, W: Write + 'a>(
    w: W,
    c: &Compress,
) -> Result<Box<dyn FinishWrite + 'a>, ArchiveError> {
    let setup = |e: io::Error| ArchiveError::io(format!("setting up the {c:?} compressor"), e);
    Ok(match *c {
        Compress::None => Box::new(Plain(w)),
        Compress::Zstd { level, threads } => {
            check_zstd_level(level)?;
            let mut enc = zstd::stream::write::Encoder::new(w, level).map_err(setup)?;
            enc.include_checksum(true).map_err(setup)?;
            enc.multithread(worker_count(threads)).map_err(setup)?;
            Box::new(Zstd(enc))
        }
        Compress::Gzip { level } => {
            if level > 9 {
                return Err(ArchiveError::Options(format!(
                    "gzip level {level} is out of range 0..=9"
                )));
            }
            let enc = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(3)
                .write(w, flate2::Compression::new(level));
            Box::new(Gzip(enc))
        }
        Compress::Xz { level } => {
            if level > 9 {
                return Err(ArchiveError::Options(format!(
                    "xz level {level} is out of range 0..=9"
                )));
            }
            Box::new(xz_encoder(w, level, worker_count(0)).map_err(setup)?)
        }
    })
}

/// The xz encoder: always liblzma's multi-threaded one with a fixed block size, so `threads`
/// does not change the output.
fn xz_encoder<W: Write>(w: W, level: u32, threads: u32) -> io::Result<Xz<W>> {
    let stream = liblzma::stream::MtStreamBuilder::new()
        .preset(level)
        .threads(threads.max(1))
        .block_size(XZ_BLOCK_SIZE)
        .check(liblzma::stream::Check::Crc64)
        .encoder()
        .map_err(io::Error::other)?;
    Ok(Xz(liblzma::write::XzEncoder::new_stream(w, stream)))
}

/// The padding bytes that make a stream of `len` bytes, compressed with `c`, a multiple of
/// `pad_to` bytes, in a form the codec's decoder accepts: a zstd skippable frame, an empty gzip
/// member carrying an extra field, xz stream padding (zero bytes, `pad_to` must be a multiple of
/// 4), or zero bytes after plain cpio.
pub fn pad_stream(len: u64, pad_to: u64, c: &Compress) -> Result<Vec<u8>, ArchiveError> {
    if pad_to == 0 {
        return Err(ArchiveError::Options("pad_to must be at least 1".into()));
    }
    let mut pad = (pad_to - len % pad_to) % pad_to;
    if pad == 0 {
        return Ok(Vec::new());
    }
    Ok(match c {
        Compress::None => vec![0; pad as usize],
        Compress::Xz { .. } => {
            if !pad_to.is_multiple_of(4) {
                return Err(ArchiveError::Options(format!(
                    "xz output can only be padded to a multiple of 4 bytes, not {pad_to}"
                )));
            }
            vec![0; pad as usize]
        }
        Compress::Zstd { .. } => {
            // Skippable frame: magic 0x184D2A5? (LE), u32 LE content size, content.
            while pad < 8 {
                pad += pad_to;
            }
            let content = u32::try_from(pad - 8)
                .map_err(|_| ArchiveError::Options(format!("pad_to {pad_to} is too large")))?;
            let mut v = Vec::with_capacity(pad as usize);
            v.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
            v.extend_from_slice(&content.to_le_bytes());
            v.resize(pad as usize, 0);
            v
        }
        Compress::Gzip { .. } => {
            // Empty member: 10-byte header with FEXTRA, XLEN, one subfield, an empty fixed-Huffman
            // final block (03 00), CRC32 0, ISIZE 0 → 22 + XLEN bytes, XLEN ≥ 4.
            while pad < 26 {
                pad += pad_to;
            }
            let xlen = pad - 22;
            if xlen > 0xffff {
                return Err(ArchiveError::Options(format!(
                    "gzip output can only be padded to multiples up to 65 KiB, not {pad_to}"
                )));
            }
            let mut v = Vec::with_capacity(pad as usize);
            v.extend_from_slice(&[0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3]);
            v.extend_from_slice(&(xlen as u16).to_le_bytes());
            v.extend_from_slice(b"PD");
            v.extend_from_slice(&((xlen - 4) as u16).to_le_bytes());
            v.resize(12 + xlen as usize, 0);
            v.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            v
        }
    })
}

/// Open a possibly compressed stream: sniffs the magic of zstd (all frames, skippable frames
/// skipped), gzip (all members), xz (all streams and padding), bzip2, or passes the bytes through.
pub fn decompressor(
    mut r: impl Read + Send + 'static,
) -> Result<Box<dyn Read + Send>, ArchiveError> {
    let mut magic = [0u8; 6];
    let n = crate::ioutil::read_full(&mut r, &mut magic)
        .map_err(|e| ArchiveError::io("reading the stream's magic", e))?;
    let m = &magic[..n];
    let chained = io::Cursor::new(magic[..n].to_vec()).chain(r);
    let err = |what: &str, e: io::Error| ArchiveError::io(format!("opening the {what} stream"), e);
    Ok(
        if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
            || (m.len() >= 4 && m[0] & 0xf0 == 0x50 && m[1..4] == [0x2a, 0x4d, 0x18])
        {
            let mut d = zstd::stream::read::Decoder::new(chained).map_err(|e| err("zstd", e))?;
            d.window_log_max(31).map_err(|e| err("zstd", e))?;
            Box::new(d)
        } else if m.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(chained))
        } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Box::new(liblzma::read::XzDecoder::new_multi_decoder(chained))
        } else if m.starts_with(b"BZh") {
            Box::new(bzip2::read::MultiBzDecoder::new(chained))
        } else {
            Box::new(chained)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress_all(data: &[u8], c: &Compress) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = compressor(&mut out, c).unwrap();
        w.write_all(data).unwrap();
        w.flush().unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn round_trip_and_padding_every_codec() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compress::None,
            Compress::Zstd {
                level: 3,
                threads: 2,
            },
            Compress::Gzip { level: 6 },
            Compress::Xz { level: 1 },
        ] {
            let mut z = compress_all(&data, &c);
            let pad = pad_stream(z.len() as u64, 512, &c).unwrap();
            z.extend_from_slice(&pad);
            assert_eq!(z.len() % 512, 0, "{c:?}");
            let mut back = Vec::new();
            decompressor(io::Cursor::new(z))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            if c == Compress::None {
                back.truncate(data.len()); // plain padding is zeros after the data
            }
            assert_eq!(back, data, "{c:?}");
        }
    }

    #[test]
    fn zstd_output_does_not_depend_on_threads() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 & 0x3f)
            .collect();
        let a = compress_all(
            &data,
            &Compress::Zstd {
                level: 3,
                threads: 1,
            },
        );
        let b = compress_all(
            &data,
            &Compress::Zstd {
                level: 3,
                threads: 3,
            },
        );
        assert_eq!(a, b);
    }

    #[test]
    fn xz_output_does_not_depend_on_threads() {
        // > 2 blocks of XZ_BLOCK_SIZE so several threads really run
        let data: Vec<u8> = (0..(XZ_BLOCK_SIZE as u32 * 2 + 100_000))
            .map(|i| (i.wrapping_mul(2654435761) >> 27) as u8)
            .collect();
        let run = |threads| {
            let mut out = Vec::new();
            let mut w = Box::new(xz_encoder(&mut out, 0, threads).unwrap());
            w.write_all(&data).unwrap();
            w.finish().unwrap();
            out
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn bad_options_are_errors() {
        assert!(compressor(Vec::new(), &Compress::Gzip { level: 10 }).is_err());
        assert!(pad_stream(3, 0, &Compress::None).is_err());
        assert!(pad_stream(4, 510, &Compress::Xz { level: 1 }).is_err());
    }
}

//! Reading an RPM file for installation: exact segment offsets, the raw header blob (for the
//! rpmdb), digest checks (header and payload) and a streaming, decompressing payload reader.
//!
//! The header is parsed by the `rpm` crate ([`rpm::PackageMetadata`]); the payload is never held
//! in memory: [`RpmFile::payload_reader`] returns a reader that decompresses on the fly and hashes
//! the compressed bytes so that [`PayloadReader::finish`] can check the payload digest.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use md5::Md5;
use rpm::{IndexSignatureTag, IndexTag, PackageMetadata};
use sha2::{Digest, Sha256};

/// Errors reading or verifying an RPM file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The RPM file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The lead or a header is malformed.
    #[error("{path}: not a valid RPM package: {message}")]
    Malformed {
        /// The RPM file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A digest does not match: the file is corrupted or was tampered with.
    #[error(
        "{path}: {what} digest mismatch (expected {expected}, got {actual}): the package is corrupted; download it again"
    )]
    DigestMismatch {
        /// The RPM file.
        path: PathBuf,
        /// Which digest (e.g. "header SHA256", "payload SHA256", "MD5").
        what: &'static str,
        /// Digest from the package.
        expected: String,
        /// Digest computed.
        actual: String,
    },
    /// The package carries no digest that covers its payload.
    #[error(
        "{path}: the package has no header or payload digest; refusing to install it unverified"
    )]
    NoDigest {
        /// The RPM file.
        path: PathBuf,
    },
    /// Payload compressor or format not supported.
    #[error("{path}: unsupported payload {what} '{value}'")]
    Unsupported {
        /// The RPM file.
        path: PathBuf,
        /// "compressor" or "format".
        what: &'static str,
        /// The value from the header.
        value: String,
    },
}

/// One RPM file opened for installation.
pub struct RpmFile {
    /// The file on disk.
    pub path: PathBuf,
    /// The parsed signature and main headers.
    pub meta: PackageMetadata,
    /// The main header exactly as stored in the file (starting with the 8-byte header magic).
    pub header_blob: Vec<u8>,
    /// The signature header exactly as stored (without its padding).
    pub sig_blob: Vec<u8>,
    /// Byte offset of the (compressed) payload in the file.
    pub payload_offset: u64,
}

const LEAD_SIZE: usize = 96;
const HEADER_MAGIC: [u8; 3] = [0x8e, 0xad, 0xe8];

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Read one header (intro + index + data) from `r`, returning its raw bytes.
fn read_raw_header(r: &mut impl Read, what: &str) -> Result<Vec<u8>, String> {
    let mut intro = [0u8; 16];
    r.read_exact(&mut intro)
        .map_err(|e| format!("{what}: {e}"))?;
    if intro[..3] != HEADER_MAGIC {
        return Err(format!("{what}: bad magic"));
    }
    let il = be32(&intro[8..12]);
    let dl = be32(&intro[12..16]);
    if il > 0x10000 || dl > 256 << 20 {
        return Err(format!("{what}: implausible size (il={il}, dl={dl})"));
    }
    let mut buf = Vec::with_capacity(16 + il * 16 + dl);
    buf.extend_from_slice(&intro);
    buf.resize(16 + il * 16 + dl, 0);
    r.read_exact(&mut buf[16..])
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(buf)
}

impl RpmFile {
    /// Open `path` and parse its lead and headers (not the payload).
    pub fn open(path: &Path) -> Result<RpmFile, PayloadError> {
        let io_err = |source| PayloadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |message: String| PayloadError::Malformed {
            path: path.to_path_buf(),
            message,
        };
        let mut f = BufReader::new(File::open(path).map_err(io_err)?);
        let mut raw = vec![0u8; LEAD_SIZE];
        f.read_exact(&mut raw)
            .map_err(|e| bad(format!("lead: {e}")))?;
        if raw[..4] != [0xed, 0xab, 0xee, 0xdb] {
            return Err(bad("bad lead magic".into()));
        }
        let sig = read_raw_header(&mut f, "signature header").map_err(bad)?;
        let pad = (8 - sig.len() % 8) % 8;
        let mut padding = vec![0u8; pad];
        f.read_exact(&mut padding)
            .map_err(|e| bad(format!("signature padding: {e}")))?;
        let header = read_raw_header(&mut f, "header").map_err(bad)?;
        let payload_offset = (LEAD_SIZE + sig.len() + pad + header.len()) as u64;
        raw.extend_from_slice(&sig);
        raw.extend_from_slice(&padding);
        let sig_blob = sig;
        raw.extend_from_slice(&header);
        let meta = PackageMetadata::parse(&mut raw.as_slice()).map_err(|e| bad(e.to_string()))?;
        Ok(RpmFile {
            path: path.to_path_buf(),
            meta,
            header_blob: header,
            sig_blob,
            payload_offset,
        })
    }

    /// Check the header digests (SHA256 over the raw main header) now; payload digests are
    /// checked by [`PayloadReader::finish`] once the payload has been streamed.
    pub fn verify_header(&self) -> Result<(), PayloadError> {
        if let Ok(expected) = self
            .meta
            .signature
            .get_entry_data_as_string(IndexSignatureTag::RPMSIGTAG_SHA256)
        {
            let actual = hex::encode(Sha256::digest(&self.header_blob));
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(PayloadError::DigestMismatch {
                    path: self.path.clone(),
                    what: "header SHA256",
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        Ok(())
    }

    /// The payload format: "cpio" (newc). Anything else is refused.
    fn check_format(&self) -> Result<(), PayloadError> {
        match self
            .meta
            .header
            .get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADFORMAT)
        {
            Ok("cpio") | Err(_) => Ok(()),
            Ok(other) => Err(PayloadError::Unsupported {
                path: self.path.clone(),
                what: "format",
                value: other.to_string(),
            }),
        }
    }

    /// A streaming reader over the decompressed payload (a newc cpio archive).
    pub fn payload_reader(&self) -> Result<PayloadReader, PayloadError> {
        self.payload_reader_opts(false)
    }

    /// [`RpmFile::payload_reader`] that also computes the sha256 of the whole file (lead,
    /// headers and payload) in the same read, for [`PayloadReader::finish_file_digest`]: the
    /// repository/lock checksum is checked without reading the file a second time.
    pub fn payload_reader_with_file_digest(&self) -> Result<PayloadReader, PayloadError> {
        self.payload_reader_opts(true)
    }

    fn payload_reader_opts(&self, file_digest: bool) -> Result<PayloadReader, PayloadError> {
        self.check_format()?;
        let io_err = |source| PayloadError::Io {
            path: self.path.clone(),
            source,
        };
        let mut f = File::open(&self.path).map_err(io_err)?;
        let file_sha256 = if file_digest {
            // the bytes before the payload (lead + headers, a few KiB to a few MiB)
            let mut prefix = vec![0u8; self.payload_offset as usize];
            f.read_exact(&mut prefix).map_err(io_err)?;
            let mut h = Sha256::new();
            h.update(&prefix);
            Some(h)
        } else {
            f.seek(SeekFrom::Start(self.payload_offset))
                .map_err(io_err)?;
            None
        };
        let sha256 = self
            .meta
            .header
            .get_entry_data_as_string_array(IndexTag::RPMTAG_PAYLOADSHA256)
            .ok()
            .and_then(|v| v.first().map(|s| s.to_string()))
            .or_else(|| {
                self.meta
                    .header
                    .get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADSHA256)
                    .ok()
                    .map(str::to_string)
            });
        let md5 = self
            .meta
            .signature
            .get_entry_data_as_binary(IndexSignatureTag::RPMSIGTAG_MD5)
            .ok()
            .map(<[u8]>::to_vec);
        let has_header_digest = self
            .meta
            .signature
            .get_entry_data_as_string(IndexSignatureTag::RPMSIGTAG_SHA256)
            .is_ok();
        if sha256.is_none() && md5.is_none() {
            return Err(PayloadError::NoDigest {
                path: self.path.clone(),
            });
        }
        let mut md5_state = None;
        if sha256.is_none() || !has_header_digest {
            // MD5 covers header + payload: seed it with the header.
            if md5.is_some() {
                let mut m = Md5::new();
                m.update(&self.header_blob);
                md5_state = Some(m);
            }
        }
        let hashing = HashingReader {
            inner: BufReader::with_capacity(256 * 1024, f),
            sha256: sha256.as_ref().map(|_| Sha256::new()),
            md5: md5_state,
            file_sha256,
        };
        let compressor = self
            .meta
            .header
            .get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADCOMPRESSOR)
            .unwrap_or("none")
            .to_string();
        let payload_len = std::fs::metadata(&self.path)
            .map_err(io_err)?
            .len()
            .saturating_sub(self.payload_offset);
        // A big payload is read and hashed by a thread of its own, ahead of the decompressor:
        // the decompressing thread is what a big package's staging waits for.
        let (src, hashing): (Box<dyn Read>, Hashing) = if payload_len >= READ_AHEAD_MIN {
            let (reader, handle) = super::readahead::spawn(hashing).map_err(io_err)?;
            (Box::new(reader), Hashing::Thread(handle))
        } else {
            let shared = std::rc::Rc::new(std::cell::RefCell::new(hashing));
            (
                Box::new(SharedReader(shared.clone())),
                Hashing::Inline(shared),
            )
        };
        let decoder: Box<dyn Read> = match compressor.as_str() {
            "gzip" => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(src))),
            "xz" | "lzma" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(src)),
            "zstd" => Box::new(zstd::stream::read::Decoder::new(src).map_err(io_err)?),
            "bzip2" => Box::new(bzip2::read::MultiBzDecoder::new(src)),
            "none" | "" => src,
            other => {
                return Err(PayloadError::Unsupported {
                    path: self.path.clone(),
                    what: "compressor",
                    value: other.to_string(),
                });
            }
        };
        Ok(PayloadReader {
            path: self.path.clone(),
            decoder,
            hashing,
            expected_sha256: sha256,
            expected_md5: md5,
        })
    }
}

/// Payloads of at least this many bytes are read by a thread of their own.
const READ_AHEAD_MIN: u64 = 4 << 20;

/// The reader of the file's bytes, which hashes them: used by the decompressor directly, or
/// run by a read-ahead thread.
enum Hashing {
    Inline(std::rc::Rc<std::cell::RefCell<HashingReader>>),
    Thread(std::thread::JoinHandle<io::Result<Digests>>),
}

pub(super) struct HashingReader {
    inner: BufReader<File>,
    sha256: Option<Sha256>,
    md5: Option<Md5>,
    file_sha256: Option<Sha256>,
}

/// The digest states of a whole file read.
pub(super) struct Digests {
    sha256: Option<Sha256>,
    md5: Option<Md5>,
    file_sha256: Option<Sha256>,
}

impl HashingReader {
    /// Read (and hash) the rest of the file; the digests of everything read.
    pub(super) fn finish(&mut self) -> io::Result<Digests> {
        io::copy(self, &mut io::sink())?;
        Ok(Digests {
            sha256: self.sha256.take(),
            md5: self.md5.take(),
            file_sha256: self.file_sha256.take(),
        })
    }
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.sha256 {
            h.update(&buf[..n]);
        }
        if let Some(h) = &mut self.file_sha256 {
            h.update(&buf[..n]);
        }
        if let Some(h) = &mut self.md5 {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

struct SharedReader(std::rc::Rc<std::cell::RefCell<HashingReader>>);

impl Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

/// The decompressed payload stream; call [`PayloadReader::finish`] after reading the archive to
/// check the payload digest.
pub struct PayloadReader {
    path: PathBuf,
    decoder: Box<dyn Read>,
    hashing: Hashing,
    expected_sha256: Option<String>,
    expected_md5: Option<Vec<u8>>,
}

impl Read for PayloadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder.read(buf)
    }
}

impl PayloadReader {
    /// Drain the rest of the compressed payload and compare its digests with the header's.
    pub fn finish(self) -> Result<(), PayloadError> {
        self.finish_file_digest().map(|_| ())
    }

    /// [`PayloadReader::finish`], returning the sha256 (hex) of the whole file when the reader
    /// came from [`RpmFile::payload_reader_with_file_digest`].
    pub fn finish_file_digest(self) -> Result<Option<String>, PayloadError> {
        let PayloadReader {
            path,
            decoder,
            hashing,
            expected_sha256,
            expected_md5,
        } = self;
        drop(decoder);
        let io_err = |source| PayloadError::Io {
            path: path.clone(),
            source,
        };
        // the rest of the file (to its end) is hashed too
        let mut h = match hashing {
            Hashing::Inline(shared) => shared.borrow_mut().finish().map_err(io_err)?,
            Hashing::Thread(handle) => handle
                .join()
                .map_err(|_| io_err(io::Error::other("payload read-ahead thread panicked")))?
                .map_err(io_err)?,
        };
        if let (Some(exp), Some(state)) = (expected_sha256, h.sha256.take()) {
            let actual = hex::encode(state.finalize());
            if !exp.eq_ignore_ascii_case(&actual) {
                return Err(PayloadError::DigestMismatch {
                    path,
                    what: "payload SHA256",
                    expected: exp,
                    actual,
                });
            }
        }
        if let (Some(exp), Some(state)) = (expected_md5, h.md5.take()) {
            let actual = state.finalize().to_vec();
            if exp != actual {
                return Err(PayloadError::DigestMismatch {
                    path,
                    what: "MD5",
                    expected: hex::encode(exp),
                    actual: hex::encode(actual),
                });
            }
        }
        Ok(h.file_sha256.take().map(|s| hex::encode(s.finalize())))
    }
}

/// Open, verify the header digest, and return the package (payload digest is checked while
/// streaming). Convenience for callers that only need the verified metadata.
pub fn open_verified(path: &Path) -> Result<RpmFile, PayloadError> {
    let f = RpmFile::open(path)?;
    f.verify_header()?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_corrupted_payload_is_refused() {
        let Ok(corpus) = std::env::var("OSIMAGE_CORPUS") else {
            eprintln!("SKIPPED: OSIMAGE_CORPUS not set");
            return;
        };
        let p = Path::new(&corpus).join("rpm-upstream/hello-2.0-1.x86_64-corrupted.rpm");
        let f = open_verified(&p).unwrap();
        let mut r = f.payload_reader().unwrap();
        let _ = io::copy(&mut r, &mut io::sink());
        let err = r.finish().unwrap_err().to_string();
        assert!(err.contains("hello-2.0-1.x86_64-corrupted.rpm"), "{err}");
        assert!(err.contains("payload SHA256"), "{err}");
        let ok =
            open_verified(&Path::new(&corpus).join("rpm-upstream/hello-2.0-1.x86_64.rpm")).unwrap();
        let mut r = ok.payload_reader().unwrap();
        io::copy(&mut r, &mut io::sink()).unwrap();
        r.finish().unwrap();
        // the whole-file digest folded into the same read equals a plain sha256 of the file
        let mut r = ok.payload_reader_with_file_digest().unwrap();
        io::copy(&mut r, &mut io::sink()).unwrap();
        let got = r.finish_file_digest().unwrap().unwrap();
        let want = hex::encode(Sha256::digest(std::fs::read(&ok.path).unwrap()));
        assert_eq!(got, want);
    }
}

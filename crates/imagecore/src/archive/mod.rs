//! Deterministic newc cpio writing and reading, and the compressors (zstd, gzip, xz).
//!
//! - [`NewcWriter`]: a deterministic `070701` writer (inode numbers from 1 in write order,
//!   hardlink data with the *first* member as the kernel's initramfs unpacker expects, no
//!   per-entry flush, names as bytes, `TRAILER!!!`).
//! - [`pack_manifest`] / [`pack_dir`]: stream a tree (from the store, or a staging directory)
//!   through the writer into a [`compressor`], reading blobs ahead on other threads.
//! - [`pack_manifest_framed`]: the incremental zstd form, independent frames per group of
//!   entries, reused from a [`FrameCache`] when their entries did not change.
//! - [`NewcReader`]: a streaming reader for `070701`, `070702` and RPM's stripped `07070X`.
//! - [`decompressor`]: sniffs zstd / gzip / xz / bzip2 / plain.
//!
//! ## Reproducibility
//! The same manifest and [`PackOptions`] give bit-identical bytes. zstd always runs in its
//! multi-threaded mode (at least one worker): zstdmt output depends on the level but **not** on
//! the number of workers (checked by the tests), whereas the single-threaded mode would give
//! other bytes. xz likewise always uses the multi-threaded encoder with a fixed block size, so the
//! thread count does not change its output. gzip is single-threaded and has a zero mtime.
//! Thread counts are therefore not part of a pack's cache key; level and codec are.
//!
//! ## Limits
//! newc cannot hold files of 4 GiB or more (error [`ArchiveError::TooLarge`]), nor extended
//! attributes (file capabilities are lost in a cpio root image, as with xCAT's packimage).
//! mtimes are clamped to `source_date_epoch` and to the `0..=u32::MAX` range of the format.

mod compress;
mod frames;
mod newc;
mod ordered;
mod pack;
mod reader;

pub use compress::{FinishWrite, compressor, decompressor, pad_stream};
pub use frames::{
    CUT_MASK, CachedFrame, FrameCache, FrameRef, FramedStats, MAX_GROUP, MIN_GROUP, NoFrameCache,
    frame_keys, pack_manifest_framed,
};
pub use newc::{EntryMeta, NewcWriter};
pub use pack::{pack_dir, pack_manifest};
pub use reader::{NewcEntry, NewcFormat, NewcHeader, NewcReader};

use std::io::Read;

use crate::hash::Hash;

/// Where [`pack_manifest`] reads file contents from: the store implements it; tests implement it
/// over a map or a directory.
pub trait BlobSource: Sync {
    /// Open the content of blob `h` for reading.
    fn open_blob(&self, h: &Hash) -> std::io::Result<Box<dyn Read + Send + '_>>;
}

/// The compression of an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compress {
    /// No compression (a plain newc stream).
    None,
    /// zstd (always multi-threaded mode, checksummed). `threads` 0 = all available cores; the
    /// output does not depend on it.
    Zstd {
        /// Compression level (1..=22; 3 is the zstd default).
        level: i32,
        /// Worker threads (0 = available parallelism). Does not change the output.
        threads: u32,
    },
    /// gzip (flate2, zero mtime in the header).
    Gzip {
        /// Compression level 0..=9.
        level: u32,
    },
    /// xz (liblzma multi-threaded encoder, fixed block size, CRC64 check).
    Xz {
        /// Preset 0..=9.
        level: u32,
    },
}

impl Compress {
    /// The usual file-name suffix (`zst`, `gz`, `xz`), or `None` for plain cpio.
    pub fn extension(&self) -> Option<&'static str> {
        match self {
            Compress::None => None,
            Compress::Zstd { .. } => Some("zst"),
            Compress::Gzip { .. } => Some("gz"),
            Compress::Xz { .. } => Some("xz"),
        }
    }
}

/// Options of [`pack_manifest`] / [`pack_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackOptions {
    /// Clamp every mtime to at most this value (seconds since the epoch).
    pub source_date_epoch: Option<i64>,
    /// The codec.
    pub compress: Compress,
    /// Pad the compressed output to a multiple of this many bytes (e.g. 512, so the archive fills
    /// whole disk sectors): a zstd skippable frame, an empty gzip member with an extra field, xz
    /// stream padding (needs a multiple of 4), or zero bytes after a plain cpio.
    pub pad_to: Option<u64>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            source_date_epoch: Some(0),
            compress: Compress::Zstd {
                level: 3,
                threads: 0,
            },
            pad_to: None,
        }
    }
}

/// What a pack wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Archive entries written (without the trailer; sockets are skipped).
    pub entries: u64,
    /// Bytes of the uncompressed newc stream.
    pub bytes_in: u64,
    /// Bytes written to the output (compressed, including padding).
    pub bytes_out: u64,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Writing the archive or reading an input failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file or entry.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A regular file does not fit the newc format.
    #[error(
        "{path}: {size} bytes; newc cpio cannot hold files of 4 GiB or more; exclude it from the image (exlist) or split it"
    )]
    TooLarge {
        /// The entry.
        path: String,
        /// Its size.
        size: u64,
    },
    /// The same name was given twice to the writer.
    #[error("{0}: duplicate archive entry; a tree must list each path once")]
    Duplicate(String),
    /// A file's content was shorter or longer than its recorded size.
    #[error(
        "{path}: content is {got} bytes but {expected} were expected; the source changed while packing or the store is corrupt (run `osimage cache verify`)"
    )]
    SizeMismatch {
        /// The entry.
        path: String,
        /// Recorded size.
        expected: u64,
        /// Bytes found (at least).
        got: u64,
    },
    /// A malformed cpio stream.
    #[error("cpio stream, byte offset {offset}: {msg}")]
    Format {
        /// Offset of the bad header in the uncompressed stream.
        offset: u64,
        /// What is wrong.
        msg: String,
    },
    /// Options that cannot be honoured.
    #[error("pack options: {0}")]
    Options(String),
}

impl ArchiveError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ArchiveError::Io {
            what: what.into(),
            source,
        }
    }
}

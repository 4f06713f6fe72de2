//! Packing the initrd staging directory: a deterministic newc cpio (sorted names, owner 0:0,
//! mtime 0) compressed with zstd, as the kernel's initramfs unpacker reads it.
//!
//! This is a small private writer until `archive::pack_dir` lands; it handles what a staging
//! directory holds (directories, regular files, symlinks).

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use walkdir::WalkDir;

use super::BootError;

/// A writer whose `flush()` does nothing: the cpio crate flushes after every entry, which would
/// end a zstd block each time and grow the output.
struct NoFlush<W: Write>(W);

impl<W: Write> Write for NoFlush<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Pack `staging` into `out` as newc + zstd at `level` (1–19; 19 for a small initrd).
pub fn pack_initrd(staging: &Path, out: &Path, level: i32) -> Result<(), BootError> {
    let file = std::fs::File::create(out).map_err(|e| BootError::io(out, e))?;
    let mut enc = zstd::stream::write::Encoder::new(io::BufWriter::new(file), level)
        .map_err(|e| BootError::io(out, e))?;
    enc.include_checksum(true)
        .map_err(|e| BootError::io(out, e))?;
    let mut w = NoFlush(enc);
    write_newc(staging, &mut w)?;
    let enc = w.0;
    let mut buf = enc.finish().map_err(|e| BootError::io(out, e))?;
    buf.flush().map_err(|e| BootError::io(out, e))?;
    Ok(())
}

/// Write the newc archive of `dir` (entries sorted, the root itself left out) to `w`.
pub(crate) fn write_newc<W: Write>(dir: &Path, w: &mut W) -> Result<(), BootError> {
    for (ino, entry) in (1u32..).zip(WalkDir::new(dir).min_depth(1).sort_by_file_name()) {
        let entry = entry.map_err(|e| {
            let p = e.path().unwrap_or(dir).to_path_buf();
            BootError::io(p, io::Error::other(e.to_string()))
        })?;
        let path = entry.path();
        let rel = path
            .strip_prefix(dir)
            .map_err(|e| BootError::io(path, io::Error::other(e.to_string())))?;
        let name = rel.to_str().ok_or_else(|| {
            BootError::io(
                path,
                io::Error::other("file name is not UTF-8; cannot go into newc"),
            )
        })?;
        let meta = std::fs::symlink_metadata(path).map_err(|e| BootError::io(path, e))?;
        let ft = meta.file_type();
        let perm = meta.permissions().mode() & 0o7777;
        let (kind, data): (u32, Vec<u8>) = if ft.is_dir() {
            (0o040000, Vec::new())
        } else if ft.is_symlink() {
            let t = std::fs::read_link(path).map_err(|e| BootError::io(path, e))?;
            (0o120000, t.to_string_lossy().into_owned().into_bytes())
        } else if ft.is_file() {
            (
                0o100000,
                std::fs::read(path).map_err(|e| BootError::io(path, e))?,
            )
        } else {
            return Err(BootError::io(
                path,
                io::Error::other(
                    "special file in the initrd staging dir; only dirs, files and symlinks are packed",
                ),
            ));
        };
        let size = u32::try_from(data.len()).map_err(|_| {
            BootError::io(
                path,
                io::Error::other("file over 4 GiB cannot go into newc"),
            )
        })?;
        let mut ew = cpio::newc::Builder::new(name)
            .ino(ino)
            .mode(kind | perm)
            .uid(0)
            .gid(0)
            .nlink(if ft.is_dir() { 2 } else { 1 })
            .mtime(0)
            .write(&mut *w, size);
        ew.write_all(&data).map_err(|e| BootError::io(path, e))?;
        ew.finish().map_err(|e| BootError::io(path, e))?;
    }
    cpio::newc::trailer(&mut *w).map_err(|e| BootError::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_dirs_files_links_deterministically() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("s");
        std::fs::create_dir_all(d.join("usr/bin")).unwrap();
        std::fs::write(d.join("usr/bin/x"), b"hello").unwrap();
        std::os::unix::fs::symlink("usr/bin", d.join("bin")).unwrap();
        let a = t.path().join("a.zst");
        let b = t.path().join("b.zst");
        pack_initrd(&d, &a, 3).unwrap();
        pack_initrd(&d, &b, 3).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let raw = zstd::stream::decode_all(&std::fs::read(&a).unwrap()[..]).unwrap();
        let mut names = Vec::new();
        let mut r = &raw[..];
        loop {
            let rd = cpio::newc::Reader::new(r).unwrap();
            if rd.entry().is_trailer() {
                break;
            }
            names.push((rd.entry().name().to_string(), rd.entry().mode()));
            r = rd.finish().unwrap();
        }
        assert_eq!(
            names.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
            ["bin", "usr", "usr/bin", "usr/bin/x"]
        );
        assert_eq!(names[0].1 & 0o170000, 0o120000);
    }
}

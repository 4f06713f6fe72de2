//! Packing the initrd staging directory: a deterministic newc cpio (sorted names, owner 0:0,
//! mtime 0, hardlink data with the first member) compressed with zstd, as the kernel's
//! initramfs unpacker reads it, through [`crate::archive::pack_dir`].

use std::io::Write;
use std::path::Path;

use crate::archive::{Compress, PackOptions, pack_dir};

use super::BootError;

/// Pack `staging` into `out` as newc + zstd at `level` (1–19; 19 for the smallest initrd).
pub fn pack_initrd(staging: &Path, out: &Path, level: i32) -> Result<(), BootError> {
    let file = std::fs::File::create(out).map_err(|e| BootError::io(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    let opts = PackOptions {
        source_date_epoch: Some(0),
        compress: Compress::Zstd { level, threads: 0 },
        pad_to: None,
    };
    pack_dir(staging, &mut w, &opts)?;
    w.flush().map_err(|e| BootError::io(out, e))
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
        let n: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(n, ["bin", "usr", "usr/bin", "usr/bin/x"]);
        assert_eq!(names[0].1 & 0o170000, 0o120000);
    }
}

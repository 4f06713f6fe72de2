//! Pack a directory with `imagecore::archive::pack_dir` (zstd) and print the wall time and sizes.
//! Used by `scripts/bench-pack.sh`: `pack_bench DIR OUT [LEVEL] [THREADS]` (LEVEL 0 = plain
//! newc, e.g. to `/dev/stdout`); statistics go to stderr. `pack_bench DIR OUT LEVEL THREADS
//! framed` packs with `pack_manifest_framed` (what the pack step uses) from a manifest of DIR
//! whose blobs are the files themselves (no frame cache).

use std::time::Instant;

use imagecore::archive::{Compress, PackOptions, pack_dir};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: pack_bench DIR OUT [LEVEL] [THREADS]");
        std::process::exit(2);
    }
    let level: i32 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let threads: u32 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let opts = PackOptions {
        source_date_epoch: None,
        // level 0 = no compression (measures the newc pipeline alone)
        compress: if level == 0 {
            Compress::None
        } else {
            Compress::Zstd { level, threads }
        },
        pad_to: None,
    };
    let t = Instant::now();
    let out = std::fs::File::create(&args[2])?;
    if std::path::Path::new(&args[1]).is_file() {
        // compress a file with our compressor alone (to compare codec settings with the CLI)
        let mut w = imagecore::archive::compressor(out, &opts.compress)?;
        std::io::copy(&mut std::fs::File::open(&args[1])?, &mut w)?;
        w.finish()?;
        eprintln!("{:.3} s (compressor only)", t.elapsed().as_secs_f64());
        return Ok(());
    }
    if args.get(5).is_some_and(|m| m == "framed") {
        let (m, src) = dir_manifest(std::path::Path::new(&args[1]))?;
        let w = std::io::BufWriter::with_capacity(1 << 20, out);
        let st = imagecore::archive::pack_manifest_framed(
            &src,
            &m,
            level,
            None,
            &imagecore::archive::NoFrameCache,
            w,
        )?;
        eprintln!(
            "{:.3} s, {} entries, {} bytes in, {} bytes out, {} frames (framed)",
            t.elapsed().as_secs_f64(),
            st.pack.entries,
            st.pack.bytes_in,
            st.pack.bytes_out,
            st.frames.len()
        );
        return Ok(());
    }
    let st = pack_dir(std::path::Path::new(&args[1]), out, &opts)?;
    eprintln!(
        "{:.3} s, {} entries, {} bytes in, {} bytes out",
        t.elapsed().as_secs_f64(),
        st.entries,
        st.bytes_in,
        st.bytes_out
    );
    Ok(())
}

/// Files of a directory as blobs: the "blob id" of the n-th file is n, read from its path.
struct DirSource(Vec<std::path::PathBuf>);

impl imagecore::archive::BlobSource for DirSource {
    fn open_blob(
        &self,
        h: &imagecore::hash::Hash,
    ) -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
        let i = u64::from_le_bytes(h.0[..8].try_into().unwrap_or([0; 8])) as usize;
        let p = self
            .0
            .get(i)
            .ok_or_else(|| std::io::Error::other("no such file"))?;
        Ok(Box::new(std::fs::File::open(p)?))
    }
}

/// A manifest of `dir` (directories, files, symlinks; other kinds skipped) over a [`DirSource`].
fn dir_manifest(
    dir: &std::path::Path,
) -> Result<(imagecore::tree::Manifest, DirSource), Box<dyn std::error::Error>> {
    use imagecore::tree::manifest::{Entry, Kind};
    use std::os::unix::fs::MetadataExt;
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e?;
        let md = e.metadata()?;
        let kind = if md.is_dir() {
            Kind::Dir
        } else if md.file_type().is_symlink() {
            let t = std::fs::read_link(e.path())?;
            Kind::Symlink {
                target: t.to_string_lossy().into_owned(),
            }
        } else if md.is_file() {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&(files.len() as u64).to_le_bytes());
            files.push(e.path().to_path_buf());
            Kind::File {
                blob: imagecore::hash::Hash(h),
                size: md.len(),
                link: None,
            }
        } else {
            continue;
        };
        let path = e.path().strip_prefix(dir)?.to_string_lossy().into_owned();
        entries.push(Entry {
            path,
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            xattrs: Default::default(),
        });
    }
    let mut m = imagecore::tree::Manifest { entries };
    m.sort();
    Ok((m, DirSource(files)))
}

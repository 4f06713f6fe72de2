//! Pack a directory with `imagecore::archive::pack_dir` (zstd) and print the wall time and sizes.
//! Used by `scripts/bench-pack.sh`: `pack_bench DIR OUT [LEVEL] [THREADS]` (LEVEL 0 = plain
//! newc, e.g. to `/dev/stdout`); statistics go to stderr.

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

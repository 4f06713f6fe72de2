//! Generated metadata-only repositories (hundreds to thousands of packages, no `.rpm` files):
//! deterministic from a seed, written with imagecore's repodata writer and read by dnf too.

use std::path::Path;

use imagecore::repo::write_repodata;
use imagecore::rpm::{Dep, DepFlags, Evr, PackageMeta};

/// Small deterministic PRNG (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// True with probability `pct`%.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// Package name of index `i`.
pub fn name(i: usize) -> String {
    format!("pkg{i:05}")
}

/// Generate `n` package names (1–3 versions each) with versioned requires on lower-numbered
/// packages (upper bounds `<=` only when `caps`), (when `caps`) virtual capabilities with several providers, file requires and a few conflicts.
pub fn generate(n: usize, seed: u64, caps: bool) -> Vec<PackageMeta> {
    let mut rng = Rng(seed);
    let versions: Vec<u32> = (0..n).map(|_| 1 + rng.below(3) as u32).collect();
    let ncaps = (n / 10).max(1) as u64;
    let mut out = Vec::new();
    for i in 0..n {
        let arch = if rng.chance(30) { "x86_64" } else { "noarch" };
        for v in 1..=versions[i] {
            let evr = Evr::new(0, format!("{v}.0"), "1");
            let mut p = PackageMeta {
                name: name(i),
                version: evr.version.clone(),
                release: evr.release.clone(),
                arch: arch.into(),
                ..Default::default()
            };
            p.provides.push(Dep::new(
                p.name.clone(),
                DepFlags::EQUAL,
                Some(evr.clone()),
                false,
            ));
            if caps && rng.chance(20) {
                let c = rng.below(ncaps);
                p.provides.push(Dep::new(
                    format!("cap{c}"),
                    DepFlags::EQUAL,
                    Some(Evr::new(0, format!("{v}.0"), "")),
                    false,
                ));
            }
            let file = format!("/usr/share/{}/f{v}", p.name);
            p.files.push(file);
            if i > 0 {
                for _ in 0..rng.below(4) {
                    let t = rng.below(i as u64) as usize;
                    let tv = 1 + rng.below(versions[t] as u64) as u32;
                    let (flags, evr) = match rng.below(4) {
                        0 => (DepFlags::ANY, None),
                        1 | 2 => (DepFlags::GE, Some(Evr::new(0, format!("{tv}.0"), ""))),
                        _ if !caps => (DepFlags::GE, Some(Evr::new(0, format!("{tv}.0"), ""))),
                        _ => (DepFlags::LE, Some(Evr::new(0, format!("{tv}.0"), ""))),
                    };
                    p.requires.push(Dep::new(name(t), flags, evr, false));
                }
                if caps && rng.chance(10) {
                    p.requires.push(Dep::new(
                        format!("cap{}", rng.below(ncaps)),
                        DepFlags::ANY,
                        None,
                        false,
                    ));
                }
                if rng.chance(5) {
                    let t = rng.below(i as u64) as usize;
                    p.requires.push(Dep::new(
                        format!("/usr/share/{}/f1", name(t)),
                        DepFlags::ANY,
                        None,
                        false,
                    ));
                }
                if caps && rng.chance(3) {
                    let t = rng.below(i as u64) as usize;
                    p.conflicts.push(Dep::new(
                        name(t),
                        DepFlags::LESS,
                        Some(Evr::new(0, "2.0", "")),
                        false,
                    ));
                }
            }
            p.location = format!(
                "Packages/{}-{}-{}.{}.rpm",
                p.name, p.version, p.release, p.arch
            );
            p.sha256 = format!("{:064x}", (i as u64) << 8 | v as u64);
            p.size = 1000;
            out.push(p);
        }
    }
    out
}

/// Write the universe's repodata under `dir` (no `.rpm` files).
pub fn write(dir: &Path, pkgs: &[PackageMeta]) -> anyhow::Result<()> {
    let with_time: Vec<(PackageMeta, u64)> =
        pkgs.iter().cloned().map(|p| (p, 1_700_000_000)).collect();
    write_repodata(dir, &with_time, None)?;
    Ok(())
}

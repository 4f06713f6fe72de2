//! Human-readable forms of the store's reports (what `osimage cache …` prints).

use std::fmt;

use super::gc::{GcReport, VerifyReport};
use super::outputs::OutputInfo;

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

impl fmt::Display for OutputInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {:>10.1} MiB  t={}",
            self.key,
            mib(self.size),
            self.time
        )?;
        if self.tree.is_some() {
            f.write_str("  tree")?;
        }
        if !self.artifacts.is_empty() {
            write!(f, "  {}", self.artifacts.join(","))?;
        }
        Ok(())
    }
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "outputs: {} kept, {} removed; blobs: {} kept, {} removed; packs {} -> {}; {:.1} MiB -> {:.1} MiB",
            self.outputs_kept,
            self.outputs_removed,
            self.blobs_kept,
            self.blobs_removed,
            self.packs_before,
            self.packs_after,
            mib(self.bytes_before),
            mib(self.bytes_after)
        )
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} blobs ({:.1} MiB) and {} outputs",
            self.blobs_checked,
            mib(self.bytes_checked),
            self.outputs_checked
        )?;
        for p in self.bad_blobs.iter().chain(&self.incomplete_outputs) {
            writeln!(f, "BAD {} in {}: {}", p.hash, p.path.display(), p.what)?;
        }
        if self.ok() {
            write!(f, "ok")
        } else {
            write!(
                f,
                "{} damaged blobs, {} incomplete outputs: run `osimage cache gc` to drop them, then rebuild",
                self.bad_blobs.len(),
                self.incomplete_outputs.len()
            )
        }
    }
}

//! A transaction-level dependency check (skipped with `nodeps`): every `Requires` of the
//! packages being installed must be provided by the transaction or by packages already in the
//! image's rpmdb (names, versioned ranges with rpm's overlap rules, and file paths). The
//! resolver upstream chooses the packages; this check only refuses an incomplete set, like
//! `rpm -i` does. Rich (boolean) dependencies and `rpmlib(...)` are not checked here.

use std::collections::HashMap;

use rpm_version::Evr;

use super::InstallError;
use super::package::{FileInfo, Pkg};
use super::rawheader::RawHeader;

const LESS: u32 = 2;
const GREATER: u32 = 4;
const EQUAL: u32 = 8;
const SENSE: u32 = LESS | GREATER | EQUAL;

fn cmp_evr(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut ea, mut eb) = (Evr::parse(a), Evr::parse(b));
    // rpm: when one side has no release, releases are not compared.
    if ea.release().is_empty() || eb.release().is_empty() {
        ea.set_release("");
        eb.set_release("");
    }
    if ea.epoch().is_empty() {
        ea.set_epoch("0");
    }
    if eb.epoch().is_empty() {
        eb.set_epoch("0");
    }
    ea.cmp(&eb)
}

/// rpm's range overlap (`rpmdsCompare`) of a provide and a requirement.
pub fn overlaps(pflags: u32, pevr: &str, rflags: u32, revr: &str) -> bool {
    let (p, r) = (pflags & SENSE, rflags & SENSE);
    if p == 0 || r == 0 || pevr.is_empty() || revr.is_empty() {
        return true;
    }
    match cmp_evr(pevr, revr) {
        std::cmp::Ordering::Less => p & GREATER != 0 || r & LESS != 0,
        std::cmp::Ordering::Greater => p & LESS != 0 || r & GREATER != 0,
        std::cmp::Ordering::Equal => {
            (p & EQUAL != 0 && r & EQUAL != 0)
                || (p & LESS != 0 && r & LESS != 0)
                || (p & GREATER != 0 && r & GREATER != 0)
        }
    }
}

/// Check `pkgs` against themselves and the installed headers `db_blobs`.
pub fn check(
    pkgs: &[Pkg],
    db_blobs: &[Vec<u8>],
    installed_files: &[(String, Vec<FileInfo>)],
) -> Result<(), InstallError> {
    let mut provides: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    for p in pkgs {
        for d in p.rpm.meta.get_provides().unwrap_or_default() {
            provides
                .entry(d.name)
                .or_default()
                .push((d.flags.bits(), d.version));
        }
        for f in &p.files {
            provides
                .entry(f.path.clone())
                .or_default()
                .push((0, String::new()));
        }
    }
    for b in db_blobs {
        if let Some(h) = RawHeader::parse(b) {
            let names = h.strings(1047);
            let flags = h.u32s(1112);
            let vers = h.strings(1113);
            for (i, n) in names.into_iter().enumerate() {
                provides.entry(n).or_default().push((
                    flags.get(i).copied().unwrap_or(0),
                    vers.get(i).cloned().unwrap_or_default(),
                ));
            }
        }
    }
    for (_, files) in installed_files {
        for f in files {
            provides
                .entry(f.path.clone())
                .or_default()
                .push((0, String::new()));
        }
    }
    let mut missing = Vec::new();
    for p in pkgs {
        for r in p.rpm.meta.get_requires().unwrap_or_default() {
            if r.name.starts_with("rpmlib(") || r.name.starts_with('(') {
                continue;
            }
            let ok = provides.get(&r.name).is_some_and(|v| {
                v.iter()
                    .any(|(f, e)| overlaps(*f, e, r.flags.bits(), &r.version))
            });
            if !ok {
                let mut what = r.name.clone();
                if r.flags.bits() & SENSE != 0 && !r.version.is_empty() {
                    let op = match r.flags.bits() & SENSE {
                        x if x == LESS => "<",
                        x if x == LESS | EQUAL => "<=",
                        x if x == GREATER => ">",
                        x if x == GREATER | EQUAL => ">=",
                        _ => "=",
                    };
                    what = format!("{what} {op} {}", r.version);
                }
                missing.push(format!("{what} is needed by {}", p.nevra));
            }
        }
    }
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(InstallError::Dependencies(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_overlap_rules() {
        assert!(overlaps(EQUAL, "2.0-1", GREATER | EQUAL, "2"));
        assert!(overlaps(EQUAL, "1.2.3-1", GREATER | EQUAL, "1.2"));
        assert!(!overlaps(EQUAL, "1.1-1", GREATER | EQUAL, "1.2"));
        assert!(
            overlaps(EQUAL, "2.0-5", EQUAL, "2.0"),
            "release ignored when absent"
        );
        assert!(!overlaps(EQUAL, "2.0-5", EQUAL, "2.0-6"));
        assert!(
            overlaps(0, "", LESS, "3"),
            "unversioned provide satisfies all"
        );
        assert!(!overlaps(EQUAL, "1:1.0-1", LESS, "2.0"), "epoch wins");
    }
}

//! File conflicts inside one transaction, with rpm's rules (`rpmfilesCompare`): `%ghost` never
//! conflicts; otherwise type and mode (except symlinks; directories included), owner and group
//! (files and symlinks) and content (or link target) must agree. Files of different colours (multilib) do not conflict: the later
//! package wins, as with rpm's default colour policy on a single-arch image.

use std::collections::{HashMap, HashSet};

use super::InstallError;
use super::package::{FileInfo, Pkg, S_IFLNK, S_IFREG};

fn differs(a: &FileInfo, b: &FileInfo) -> bool {
    if a.is_ghost() || b.is_ghost() {
        return false;
    }
    let (at, bt) = (a.ftype(), b.ftype());
    if !(at == S_IFLNK && bt == S_IFLNK) && a.mode != b.mode {
        return true;
    }
    if at != bt {
        return true;
    }
    if (at == S_IFLNK || at == S_IFREG) && (a.user != b.user || a.group != b.group) {
        return true;
    }
    match at {
        S_IFLNK => a.linkto != b.linkto,
        S_IFREG => a.digest != b.digest,
        _ => false,
    }
}

/// Check all packages (in transaction order) against each other. Returns, per package, the
/// file indexes that an earlier package of the transaction already installs identically
/// (rpm skips those, directories included, keeping the first package's entry and metadata).
pub fn check(
    pkgs: &[Pkg],
    installed: &[(String, Vec<FileInfo>)],
) -> Result<Vec<HashSet<usize>>, InstallError> {
    let mut skip = vec![HashSet::new(); pkgs.len()];
    let mut found = Vec::new();
    // Files of packages already in the image's rpmdb.
    let mut on_disk: HashMap<&str, (usize, usize)> = HashMap::new();
    for (ii, (_, files)) in installed.iter().enumerate() {
        for (fi, f) in files.iter().enumerate() {
            on_disk.insert(f.path.as_str(), (ii, fi));
        }
    }
    for p in pkgs {
        for f in &p.files {
            if let Some(&(ii, fi)) = on_disk.get(f.path.as_str()) {
                let o = &installed[ii].1[fi];
                let colored = f.color != 0 && o.color != 0 && f.color != o.color;
                if !colored && differs(o, f) {
                    found.push(format!(
                        "file {} from install of {} conflicts with file from package {}",
                        f.path, p.nevra, installed[ii].0
                    ));
                }
            }
        }
    }
    let mut owner: HashMap<&str, (usize, usize)> = HashMap::new();
    for (pi, p) in pkgs.iter().enumerate() {
        for (fi, f) in p.files.iter().enumerate() {
            if let Some(&(opi, ofi)) = owner.get(f.path.as_str()) {
                let o = &pkgs[opi].files[ofi];
                let colored = f.color != 0 && o.color != 0 && f.color != o.color;
                if opi != pi && !f.is_ghost() && !differs(o, f) {
                    skip[pi].insert(fi);
                }
                if opi != pi && !colored && differs(o, f) {
                    found.push(format!(
                        "file {} from install of {} conflicts with file from package {}",
                        f.path, p.nevra, pkgs[opi].nevra
                    ));
                }
            }
            owner.insert(f.path.as_str(), (pi, fi));
        }
    }
    if found.is_empty() {
        Ok(skip)
    } else {
        Err(InstallError::Conflicts(found))
    }
}

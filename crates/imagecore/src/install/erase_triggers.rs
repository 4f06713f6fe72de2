//! Triggers fired when a package leaves the image (erased, or replaced by an upgrade), in
//! the order and with the arguments of rpm 4.18 (checked against `rpm -e/-U --root`):
//!
//! 1. `%filetriggerun` of priority ≥ 10000: the erased package's own on every installed
//!    file, then those of every package on its removed files (its own again: rpm still has
//!    it in the rpmdb),
//! 2. its own `%triggerun` on installed packages (`$1` = its remaining instances, `$2` =
//!    instances of the target), each trigger at most once,
//! 3. other packages' `%triggerun` on it (`$1` = instances of the owner, `$2` = its
//!    remaining instances),
//!
//! then `%preun`, then the `%filetriggerun` of priority < 10000 (other packages', then its
//! own), the files are removed, and
//!
//! 4. `%filetriggerpostun` of priority ≥ 10000 on the removed files (its own included),
//!
//! then `%postun`, and
//!
//! 5. other packages' `%triggerpostun` on it, then the `%filetriggerpostun` of priority
//!    < 10000.
//!
//! "Removed files" are the files of the package that no package of the transaction
//! installs (an upgrade keeps the paths its new version owns: they do not fire). The erased
//! package's own `%triggerpostun` never runs (it is gone), as with rpm. Failures before
//! `%preun` stop the erase (like a failing `%preun`); later ones are warnings.

use super::live::{LiveDb, LivePkg};
use super::triggers::{
    Class, Run, TRIGGER_POSTUN, TRIGGER_UN, others_file, others_pkg, own_file, own_pkg,
};

/// Steps 1–3, before `%preun` of `me`.
pub(crate) fn before_preun(db: &LiveDb, me: &LivePkg, removed: &[String]) -> Vec<Run> {
    let mut runs = own_file(db, me, TRIGGER_UN, "%filetriggerun", Class::Upper);
    runs.extend(others_file(
        db,
        removed,
        TRIGGER_UN,
        "%filetriggerun",
        Class::Upper,
    ));
    runs.extend(own_pkg(db, me, TRIGGER_UN, "%triggerun", -1));
    runs.extend(others_pkg(db, me, TRIGGER_UN, "%triggerun", -1));
    runs
}

/// After `%preun`, before the files are removed: the lower-priority `%filetriggerun`.
pub(crate) fn after_preun(db: &LiveDb, me: &LivePkg, removed: &[String]) -> Vec<Run> {
    let mut runs = others_file(db, removed, TRIGGER_UN, "%filetriggerun", Class::Lower);
    runs.extend(own_file(db, me, TRIGGER_UN, "%filetriggerun", Class::Lower));
    runs
}

/// Step 4, after the files of `me` are removed, before its `%postun`.
pub(crate) fn after_files(db: &LiveDb, removed: &[String]) -> Vec<Run> {
    others_file(
        db,
        removed,
        TRIGGER_POSTUN,
        "%filetriggerpostun",
        Class::Upper,
    )
}

/// Step 5, after `%postun` of `me` (still counted in `db`, as rpm removes its rpmdb entry
/// last).
pub(crate) fn after_postun(db: &LiveDb, me: &LivePkg, removed: &[String]) -> Vec<Run> {
    let mut runs = others_pkg(db, me, TRIGGER_POSTUN, "%triggerpostun", -1);
    runs.extend(others_file(
        db,
        removed,
        TRIGGER_POSTUN,
        "%filetriggerpostun",
        Class::Lower,
    ));
    runs
}

#[cfg(test)]
mod tests {
    use super::super::scriptlet::Script;
    use super::super::triggers::Trig;
    use super::*;
    use crate::rpm::evr::{DepFlags, Evr};

    fn trig(conds: &[(&str, u32, &str)]) -> Trig {
        Trig {
            script: Script {
                tag: "%trigger".into(),
                prog: vec!["/bin/sh".into()],
                body: String::new(),
            },
            conds: conds.iter().map(|c| c.0.to_string()).collect(),
            flags: conds.iter().fold(0, |a, c| a | c.1),
            ranges: conds.iter().map(|c| (c.1, c.2.to_string())).collect(),
            priority: 1_000_000,
        }
    }

    #[test]
    fn trigger_conditions_match_sense_name_and_range() {
        let target = Evr::new(0, "1.0", "1");
        let plain = trig(&[("target", TRIGGER_UN, "")]);
        assert!(plain.fires(0, TRIGGER_UN, "target", &target));
        assert!(!plain.fires(0, TRIGGER_POSTUN, "target", &target));
        assert!(!plain.fires(0, TRIGGER_UN, "other", &target));
        let newer = trig(&[("target", TRIGGER_UN | DepFlags::GREATER.0, "5")]);
        assert!(!newer.fires(0, TRIGGER_UN, "target", &target));
        let older = trig(&[("target", TRIGGER_UN | DepFlags::LE.0, "1.0")]);
        assert!(older.fires(0, TRIGGER_UN, "target", &target));
    }
}

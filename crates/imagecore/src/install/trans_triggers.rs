//! Transaction file triggers, where rpm 4.18 runs them (checked against `rpm -U --root`):
//!
//! - after every `%pretrans`, before the first package: `%transfiletriggerun` of installed
//!   packages outside the transaction on the files of the packages it erases (all their
//!   files, replaced ones included, in rpmdb order), then each erased package's own on every
//!   installed file;
//! - while a package is erased, the `%transfiletriggerpostun` of packages in the rpmdb at
//!   that moment whose prefixes match its removed files are noted;
//! - after every `%posttrans`: `%transfiletriggerin` of installed packages outside the
//!   transaction on the new packages' files, then the noted `%transfiletriggerpostun` (once
//!   each, without a file list, skipped when their package is gone), then each new package's
//!   own `%transfiletriggerin` on every installed file.
//!
//! Each group runs by descending priority, then rpmdb order, then trigger index; `$1` is 0.

use std::collections::HashSet;

use super::live::{LiveDb, LivePkg};
use super::triggers::{Run, TRIGGER_IN, TRIGGER_POSTUN, TRIGGER_UN, Trig};

/// A noted `%transfiletriggerpostun`: (priority, owner row, trigger index).
pub(crate) type PostunKey = (u32, i64, usize);

fn file_run(owner: &LivePkg, t: &Trig, which: &str, paths: Option<&[&str]>) -> Run {
    Run {
        nevra: owner.nevra.clone(),
        script: super::scriptlet::Script {
            tag: which.to_string(),
            ..t.script.clone()
        },
        args: vec!["0".into()],
        stdin: paths.map(|p| p.join("\n") + "\n"),
    }
}

/// Triggers with `sense` of live packages outside `inside` on the files of `pkgs`.
fn outside(
    db: &LiveDb,
    inside: &HashSet<i64>,
    pkgs: &[&LivePkg],
    sense: u32,
    which: &str,
) -> Vec<Run> {
    let mut found: Vec<(u32, i64, usize, Run)> = Vec::new();
    for owner in db.live().filter(|p| !inside.contains(&p.hnum)) {
        for (tix, t) in owner.trans.iter().enumerate() {
            if t.flags & sense == 0 {
                continue;
            }
            let m = t.matching(sense, pkgs.iter().flat_map(|p| p.paths.iter()));
            if !m.is_empty() {
                found.push((
                    t.priority,
                    owner.hnum,
                    tix,
                    file_run(owner, t, which, Some(&m)),
                ));
            }
        }
    }
    found.sort_by_key(|(p, h, t, _)| (std::cmp::Reverse(*p), *h, *t));
    found.into_iter().map(|(_, _, _, r)| r).collect()
}

/// `me`'s own transaction triggers with `sense` on every file in the rpmdb now.
fn own(db: &LiveDb, me: &LivePkg, sense: u32, which: &str) -> Vec<Run> {
    let mut trigs: Vec<(usize, &Trig)> = me
        .trans
        .iter()
        .enumerate()
        .filter(|(_, t)| t.flags & sense != 0)
        .collect();
    trigs.sort_by_key(|(tix, t)| (std::cmp::Reverse(t.priority), *tix));
    trigs
        .into_iter()
        .filter_map(|(_, t)| {
            let m = t.matching(sense, db.live().flat_map(|p| p.paths.iter()));
            (!m.is_empty()).then(|| file_run(me, t, which, Some(&m)))
        })
        .collect()
}

/// `%transfiletriggerun` before the first package of a transaction that erases `erased`
/// (rows, in erase order) and installs `new` (rows).
pub(crate) fn at_start(db: &LiveDb, erased: &[i64], new: &[i64]) -> Vec<Run> {
    if erased.is_empty() {
        return Vec::new();
    }
    let inside: HashSet<i64> = erased.iter().chain(new).copied().collect();
    let mut by_row: Vec<&LivePkg> = erased.iter().filter_map(|h| db.get(*h)).collect();
    by_row.sort_by_key(|p| p.hnum);
    let mut runs = outside(db, &inside, &by_row, TRIGGER_UN, "%transfiletriggerun");
    for h in erased {
        if let Some(me) = db.get(*h) {
            runs.extend(own(db, me, TRIGGER_UN, "%transfiletriggerun"));
        }
    }
    runs
}

/// Note the `%transfiletriggerpostun` that the removed files of `me` set off.
pub(crate) fn note_postun(db: &LiveDb, removed: &[String], into: &mut Vec<PostunKey>) {
    for owner in db.live() {
        for (tix, t) in owner.trans.iter().enumerate() {
            if t.flags & TRIGGER_POSTUN != 0
                && !t.matching(TRIGGER_POSTUN, removed.iter()).is_empty()
            {
                into.push((t.priority, owner.hnum, tix));
            }
        }
    }
}

/// After every `%posttrans`.
pub(crate) fn at_end(db: &LiveDb, new: &[i64], mut postun: Vec<PostunKey>) -> Vec<Run> {
    let inside: HashSet<i64> = new.iter().copied().collect();
    let mut by_row: Vec<&LivePkg> = new.iter().filter_map(|h| db.get(*h)).collect();
    by_row.sort_by_key(|p| p.hnum);
    let mut runs = outside(db, &inside, &by_row, TRIGGER_IN, "%transfiletriggerin");
    postun.sort_by_key(|(p, h, t)| (std::cmp::Reverse(*p), *h, *t));
    postun.dedup();
    for (_, h, tix) in postun {
        if let (true, Some(owner)) = (db.is_live(h), db.get(h))
            && let Some(t) = owner.trans.get(tix)
        {
            runs.push(file_run(owner, t, "%transfiletriggerpostun", None));
        }
    }
    for h in new {
        if let Some(me) = db.get(*h).filter(|p| db.is_live(p.hnum)) {
            runs.extend(own(db, me, TRIGGER_IN, "%transfiletriggerin"));
        }
    }
    runs
}

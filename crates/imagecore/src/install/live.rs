//! The rpmdb as a running transaction sees it: the packages installed before it (by rpmdb
//! row) and the packages it installs (numbered after them, in transaction order), each live
//! from the moment rpm would have added it to (or until it removed it from) the database.
//! Scriptlet and trigger arguments are instance counts in this view, as with rpm.

use std::collections::HashSet;

use super::package::Pkg;
use super::rawheader::RawHeader;
use super::rpmdb::Installed;
use super::triggers::{FILE_TRIGGER_TAGS, PKG_TRIGGER_TAGS, TRANS_TRIGGER_TAGS, Trig, raw_trigs};
use crate::rpm::evr::{DepFlags, Evr, overlaps};

/// RPMTAG_FILETRIGGERPRIORITIES
const FILE_TRIGGER_PRIORITIES: u32 = 5084;
/// RPMTAG_TRANSFILETRIGGERPRIORITIES
const TRANS_TRIGGER_PRIORITIES: u32 = 5085;

// Names (or provides) dnf installs side by side instead of upgrading: the solver's list.
use crate::solve::INSTALLONLY;

/// One package of the live view.
pub(crate) struct LivePkg {
    /// rpmdb row (installed) or the row it will get (new).
    pub hnum: i64,
    /// Name.
    pub name: String,
    /// NEVRA (messages, scriptlet owner).
    pub nevra: String,
    /// Architecture.
    pub arch: String,
    /// Its EVR (trigger and obsoletes version ranges).
    pub evr: Evr,
    /// `%trigger*`.
    pub pkg: Vec<Trig>,
    /// `%filetrigger*`.
    pub file: Vec<Trig>,
    /// `%transfiletrigger*`.
    pub trans: Vec<Trig>,
    /// Its files (header order).
    pub paths: Vec<String>,
    /// `Obsoletes:` (name, flags, version).
    pub obsoletes: Vec<(String, u32, String)>,
    /// Index in the transaction, for packages it installs.
    pub new: Option<usize>,
    /// Installed side by side rather than replacing (dnf's installonly names and provides,
    /// as the solver treats them: kernels).
    pub installonly: bool,
}

fn with_priorities(mut v: Vec<Trig>, prios: Vec<u32>) -> Vec<Trig> {
    for (t, p) in v.iter_mut().zip(prios) {
        t.priority = p;
    }
    v
}

impl LivePkg {
    /// From a header (rpmdb or file form, already parsed).
    pub fn from_header(h: &RawHeader<'_>, hnum: i64, new: Option<usize>) -> LivePkg {
        let s = |t: u32| h.strings(t).into_iter().next().unwrap_or_default();
        let epoch = h.u32s(1003).first().copied();
        let name = s(1000);
        let nevra =
            crate::rpm::header::nevra(&name, epoch.unwrap_or(0), &s(1001), &s(1002), &s(1022));
        let (on, of, ov) = (h.strings(1090), h.u32s(1114), h.strings(1115));
        let provides = h.strings(1047);
        let installonly = INSTALLONLY
            .iter()
            .any(|n| *n == name || provides.iter().any(|p| p == n));
        LivePkg {
            hnum,
            evr: Evr::new(epoch.unwrap_or(0), s(1001), s(1002)),
            arch: s(1022),
            pkg: raw_trigs(h, PKG_TRIGGER_TAGS, "%trigger"),
            file: with_priorities(
                raw_trigs(h, FILE_TRIGGER_TAGS, "%filetrigger"),
                h.u32s(FILE_TRIGGER_PRIORITIES),
            ),
            trans: with_priorities(
                raw_trigs(h, TRANS_TRIGGER_TAGS, "%transfiletrigger"),
                h.u32s(TRANS_TRIGGER_PRIORITIES),
            ),
            paths: h.file_paths(),
            obsoletes: on
                .into_iter()
                .enumerate()
                .map(|(i, n)| {
                    (
                        n,
                        of.get(i).copied().unwrap_or(0),
                        ov.get(i).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
            new,
            installonly,
            name,
            nevra,
        }
    }

    /// Does this (new) package replace the installed package `old`: same name (not an
    /// installonly package; multilib pairs of different architectures are kept), or named
    /// by one of its `Obsoletes` whose range holds old's EVR.
    pub fn replaces(&self, old: &LivePkg) -> bool {
        if old.name == self.name {
            let multilib = self.arch != old.arch && self.arch != "noarch" && old.arch != "noarch";
            return !self.installonly && !multilib;
        }
        self.obsoletes.iter().any(|(n, f, v)| {
            n == &old.name
                && (DepFlags(*f).is_any()
                    || v.is_empty()
                    || overlaps(
                        DepFlags::EQUAL,
                        Some(&old.evr),
                        DepFlags(*f),
                        Some(&Evr::parse(v)),
                    ))
        })
    }
}

/// The live view of the rpmdb during a transaction.
pub(crate) struct LiveDb {
    /// Every package (installed before the transaction, then the new ones), by row.
    pub pkgs: Vec<LivePkg>,
    live: HashSet<i64>,
}

impl LiveDb {
    /// Installed packages are live; the transaction's `new` packages get the rows after them
    /// and become live when [`LiveDb::add`]ed.
    pub fn new(installed: &[Installed], new: &[Pkg]) -> LiveDb {
        let mut pkgs: Vec<LivePkg> = installed
            .iter()
            .filter_map(|i| {
                Some(LivePkg::from_header(
                    &RawHeader::parse(&i.blob)?,
                    i.hnum,
                    None,
                ))
            })
            .collect();
        pkgs.sort_by_key(|p| p.hnum);
        let live = pkgs.iter().map(|p| p.hnum).collect();
        let base = pkgs.last().map(|p| p.hnum).unwrap_or(0);
        for (i, p) in new.iter().enumerate() {
            let lp = RawHeader::parse_file(&p.rpm.header_blob)
                .map(|h| LivePkg::from_header(&h, base + 1 + i as i64, Some(i)))
                .unwrap_or_else(|| LivePkg {
                    hnum: base + 1 + i as i64,
                    name: p.name.clone(),
                    nevra: p.nevra.clone(),
                    arch: String::new(),
                    evr: Evr::new(0, "", ""),
                    pkg: Vec::new(),
                    file: Vec::new(),
                    trans: Vec::new(),
                    paths: p.files.iter().map(|f| f.path.clone()).collect(),
                    obsoletes: Vec::new(),
                    new: Some(i),
                    installonly: false,
                });
            pkgs.push(lp);
        }
        LiveDb { pkgs, live }
    }

    /// The package with row `hnum`.
    pub fn get(&self, hnum: i64) -> Option<&LivePkg> {
        self.pkgs.iter().find(|p| p.hnum == hnum)
    }

    /// The transaction's package number `i`.
    pub fn new_pkg(&self, i: usize) -> Option<&LivePkg> {
        self.pkgs.iter().find(|p| p.new == Some(i))
    }

    /// Packages in the database now, by row.
    pub fn live(&self) -> impl Iterator<Item = &LivePkg> {
        self.pkgs.iter().filter(|p| self.live.contains(&p.hnum))
    }

    /// Is row `hnum` in the database now?
    pub fn is_live(&self, hnum: i64) -> bool {
        self.live.contains(&hnum)
    }

    /// Instances of `name` in the database now.
    pub fn count(&self, name: &str) -> usize {
        self.live().filter(|p| p.name == name).count()
    }

    /// A new package enters the database.
    pub fn add(&mut self, hnum: i64) {
        self.live.insert(hnum);
    }

    /// An erased package leaves it.
    pub fn remove(&mut self, hnum: i64) {
        self.live.remove(&hnum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, evr: &str, arch: &str) -> LivePkg {
        LivePkg {
            hnum: 1,
            name: name.into(),
            nevra: format!("{name}-{evr}.{arch}"),
            arch: arch.into(),
            evr: Evr::parse(evr),
            pkg: Vec::new(),
            file: Vec::new(),
            trans: Vec::new(),
            paths: Vec::new(),
            obsoletes: Vec::new(),
            new: None,
            installonly: INSTALLONLY.contains(&name),
        }
    }

    #[test]
    fn what_a_new_package_replaces() {
        let new = pkg("app", "2-1", "x86_64");
        assert!(new.replaces(&pkg("app", "1-1", "x86_64")));
        assert!(new.replaces(&pkg("app", "1-1", "noarch")), "noarch ↔ arch");
        assert!(
            !new.replaces(&pkg("app", "1-1", "i686")),
            "multilib pair kept"
        );
        assert!(!new.replaces(&pkg("other", "1-1", "x86_64")));
        let kernel = pkg("kernel", "6.1-2", "x86_64");
        assert!(
            !kernel.replaces(&pkg("kernel", "6.1-1", "x86_64")),
            "installonly"
        );
        let mut obs = pkg("app", "2-1", "noarch");
        obs.obsoletes = vec![("legacy".into(), DepFlags::LESS.0, "2".into())];
        assert!(obs.replaces(&pkg("legacy", "1-1", "noarch")));
        assert!(
            !obs.replaces(&pkg("legacy", "2-1", "noarch")),
            "outside the range"
        );
        obs.obsoletes = vec![("legacy".into(), 0, String::new())];
        assert!(obs.replaces(&pkg("legacy", "9-1", "noarch")), "unversioned");
    }
}

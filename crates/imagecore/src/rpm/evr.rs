//! Epoch:version-release values with rpm's ordering (`rpmvercmp`: tilde sorts before anything,
//! caret after the base but before any further segment, numeric segments beat alphabetic ones),
//! and dependency range matching with rpm's "missing release on one side" rule.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Dependency comparison flags, with rpm's bit values (`RPMSENSE_LESS/GREATER/EQUAL`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct DepFlags(pub u32);

impl DepFlags {
    /// No version constraint.
    pub const ANY: DepFlags = DepFlags(0);
    /// `<`
    pub const LESS: DepFlags = DepFlags(1 << 1);
    /// `>`
    pub const GREATER: DepFlags = DepFlags(1 << 2);
    /// `=`
    pub const EQUAL: DepFlags = DepFlags(1 << 3);
    /// `<=`
    pub const LE: DepFlags = DepFlags((1 << 1) | (1 << 3));
    /// `>=`
    pub const GE: DepFlags = DepFlags((1 << 2) | (1 << 3));
    /// The comparison bits only.
    pub const SENSE_MASK: u32 = 0b1110;

    /// Only the comparison bits.
    pub fn sense(self) -> DepFlags {
        DepFlags(self.0 & Self::SENSE_MASK)
    }

    /// True when no comparison is given.
    pub fn is_any(self) -> bool {
        self.0 & Self::SENSE_MASK == 0
    }

    /// True when every bit of `other` is set.
    pub fn contains(self, other: DepFlags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Parse an operator as written in specs (`<`, `<=`, `=`, `==`, `>=`, `>`).
    pub fn from_op(op: &str) -> Option<DepFlags> {
        Some(match op {
            "<" => Self::LESS,
            "<=" | "=<" => Self::LE,
            "=" | "==" => Self::EQUAL,
            ">=" | "=>" => Self::GE,
            ">" => Self::GREATER,
            _ => return None,
        })
    }

    /// Parse the `flags` attribute of repodata (`LT LE EQ GE GT`).
    pub fn from_repodata(s: &str) -> Option<DepFlags> {
        Some(match s {
            "LT" => Self::LESS,
            "LE" => Self::LE,
            "EQ" => Self::EQUAL,
            "GE" => Self::GE,
            "GT" => Self::GREATER,
            _ => return None,
        })
    }

    /// The repodata spelling (`LT LE EQ GE GT`), `None` for no constraint.
    pub fn to_repodata(self) -> Option<&'static str> {
        Some(match self.sense().0 {
            2 => "LT",
            10 => "LE",
            8 => "EQ",
            12 => "GE",
            4 => "GT",
            _ => return None,
        })
    }

    /// The spec spelling (`<`, `<=`, `=`, `>=`, `>`), empty for no constraint.
    pub fn op(self) -> &'static str {
        match self.sense().0 {
            2 => "<",
            10 => "<=",
            8 => "=",
            12 => ">=",
            4 => ">",
            _ => "",
        }
    }
}

/// An epoch:version-release. An empty `release` means "not given" (matters for ranges).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Evr {
    /// Epoch (0 when not given).
    pub epoch: u32,
    /// Version.
    pub version: String,
    /// Release, empty when not given.
    pub release: String,
}

impl Evr {
    /// Build from parts.
    pub fn new(epoch: u32, version: impl Into<String>, release: impl Into<String>) -> Evr {
        Evr {
            epoch,
            version: version.into(),
            release: release.into(),
        }
    }

    /// Parse `[E:]V[-R]` as written in dependencies. A non-numeric epoch is kept as part of the
    /// version (rpm would reject it; we never panic on input).
    pub fn parse(s: &str) -> Evr {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                (e.parse::<u32>().unwrap_or(u32::MAX), rest)
            }
            _ => (0, s),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, r),
            None => (rest, ""),
        };
        Evr::new(epoch, version, release)
    }

    /// Compare with rpm's rules, treating an empty release on either side as "any release".
    pub fn cmp_ignoring_missing_release(&self, other: &Evr) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| vercmp(&self.version, &other.version))
            .then_with(|| {
                if self.release.is_empty() || other.release.is_empty() {
                    Ordering::Equal
                } else {
                    vercmp(&self.release, &other.release)
                }
            })
    }
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.version)?;
        if !self.release.is_empty() {
            write!(f, "-{}", self.release)?;
        }
        Ok(())
    }
}

impl PartialEq for Evr {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Evr {}
impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Evr {
    fn cmp(&self, other: &Self) -> Ordering {
        // rpmverCmp: a missing release sorts before any present one (even `~x`).
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| vercmp(&self.version, &other.version))
            .then_with(
                || match (self.release.is_empty(), other.release.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => vercmp(&self.release, &other.release),
                },
            )
    }
}

/// rpm's `rpmvercmp` on one version or release string.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let a = rpm_version::Evr::new("", a, "");
    let b = rpm_version::Evr::new("", b, "");
    a.cmp(&b)
}

/// Does a provide `(pflags, pevr)` satisfy a requirement `(rflags, revr)` of the same name?
/// rpm's `rpmdsCompare`: no constraint on either side matches; releases are compared only when
/// both sides have one.
pub fn overlaps(
    pflags: DepFlags,
    pevr: Option<&Evr>,
    rflags: DepFlags,
    revr: Option<&Evr>,
) -> bool {
    let (Some(pevr), Some(revr)) = (pevr, revr) else {
        return true;
    };
    if pflags.is_any() || rflags.is_any() {
        return true;
    }
    let (p, r) = (pflags.sense().0, rflags.sense().0);
    let (l, g, e) = (DepFlags::LESS.0, DepFlags::GREATER.0, DepFlags::EQUAL.0);
    match pevr.cmp_ignoring_missing_release(revr) {
        Ordering::Less => p & g != 0 || r & l != 0,
        Ordering::Greater => p & l != 0 || r & g != 0,
        Ordering::Equal => {
            (p & e != 0 && r & e != 0) || (p & l != 0 && r & l != 0) || (p & g != 0 && r & g != 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_order() {
        assert_eq!(vercmp("1.0", "1.0"), Ordering::Equal);
        assert_eq!(vercmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(vercmp("1.0^git1", "1.0"), Ordering::Greater);
        assert_eq!(vercmp("1.0^git1", "1.0.1"), Ordering::Less);
        assert_eq!(vercmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(vercmp("1a", "1.1"), Ordering::Less);
        assert!(Evr::parse("1:0.1-1") > Evr::parse("9.9-9"));
    }

    #[test]
    fn ranges() {
        let p = Evr::parse("2.0-5");
        assert!(overlaps(
            DepFlags::EQUAL,
            Some(&p),
            DepFlags::GE,
            Some(&Evr::parse("2.0"))
        ));
        assert!(overlaps(
            DepFlags::EQUAL,
            Some(&p),
            DepFlags::EQUAL,
            Some(&Evr::parse("2.0"))
        ));
        assert!(!overlaps(
            DepFlags::EQUAL,
            Some(&p),
            DepFlags::GREATER,
            Some(&Evr::parse("2.0"))
        ));
        assert!(!overlaps(
            DepFlags::EQUAL,
            Some(&p),
            DepFlags::LESS,
            Some(&Evr::parse("2.0-1"))
        ));
        assert!(overlaps(
            DepFlags::ANY,
            None,
            DepFlags::LESS,
            Some(&Evr::parse("1"))
        ));
        assert!(overlaps(
            DepFlags::GE,
            Some(&Evr::parse("3")),
            DepFlags::LESS,
            Some(&Evr::parse("4"))
        ));
        assert!(!overlaps(
            DepFlags::LE,
            Some(&Evr::parse("3")),
            DepFlags::GREATER,
            Some(&Evr::parse("4"))
        ));
    }
}

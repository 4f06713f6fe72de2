//! Compact binary encoding of parsed repository indexes (the `repo` step's cached artifact).
//!
//! Layout: the magic `OSIMGIDX`, a little-endian `u32` format version ([`BLOB_VERSION`]), then
//! the body. Integers are little-endian (`u32` counts and lengths, `u64` sizes); a string is a
//! `u32` byte length and its UTF-8 bytes; an `Option` is a `0`/`1` byte then the value; a rich
//! dependency is a tag byte (0 atom, 1 and, 2 or, 3 if, 4 unless, 5 with, 6 without) then its
//! parts. Decoding checks every length against the remaining input and never panics, so a
//! truncated or foreign blob is an error, never garbage.

use std::path::PathBuf;

use super::{Group, GroupPackage, GroupPkgKind, RepoIndex};
use crate::rpm::{Dep, DepFlags, Evr, PackageMeta, RichDep};

/// The first bytes of every index blob.
pub const BLOB_MAGIC: &[u8; 8] = b"OSIMGIDX";
/// Bumped whenever the layout changes (old blobs are then refused and rebuilt).
pub const BLOB_VERSION: u32 = 1;

/// Nesting limit for rich dependencies (a corrupt blob must not overflow the stack).
const MAX_DEPTH: u32 = 64;

/// Encode repository indexes.
pub fn encode(repos: &[RepoIndex]) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(1 << 20));
    w.0.extend_from_slice(BLOB_MAGIC);
    w.u32(BLOB_VERSION);
    w.len(repos.len());
    for r in repos {
        w.str(&r.name);
        w.str(&r.checksum);
        w.str(&r.base.to_string_lossy());
        w.len(r.groups.len());
        for g in &r.groups {
            w.group(g);
        }
        w.len(r.packages.len());
        for p in &r.packages {
            w.pkg(p);
        }
    }
    w.0
}

/// Decode what [`encode`] wrote; the error says what is wrong (bad magic, other version,
/// truncation).
pub fn decode(data: &[u8]) -> Result<Vec<RepoIndex>, String> {
    let mut r = R { d: data, pos: 0 };
    if r.take(8)? != BLOB_MAGIC {
        return Err("not an osimage repository index (bad magic)".into());
    }
    let v = r.u32()?;
    if v != BLOB_VERSION {
        return Err(format!(
            "repository index format {v}, this osimage reads format {BLOB_VERSION}"
        ));
    }
    let n = r.len(16)?;
    let mut repos = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let checksum = r.string()?;
        let base = PathBuf::from(r.string()?);
        let ng = r.len(8)?;
        let mut groups = Vec::with_capacity(ng);
        for _ in 0..ng {
            groups.push(r.group()?);
        }
        let np = r.len(64)?;
        let mut packages = Vec::with_capacity(np);
        for _ in 0..np {
            packages.push(r.pkg()?);
        }
        repos.push(RepoIndex {
            name,
            packages,
            groups,
            checksum,
            base,
        });
    }
    if r.pos != data.len() {
        return Err(format!(
            "{} trailing bytes after the index",
            data.len() - r.pos
        ));
    }
    Ok(repos)
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn strs(&mut self, v: &[String]) {
        self.len(v.len());
        v.iter().for_each(|s| self.str(s));
    }
    fn evr(&mut self, e: &Evr) {
        self.u32(e.epoch);
        self.str(&e.version);
        self.str(&e.release);
    }
    fn opt_evr(&mut self, e: &Option<Evr>) {
        match e {
            None => self.u8(0),
            Some(e) => {
                self.u8(1);
                self.evr(e);
            }
        }
    }
    fn rich(&mut self, r: &RichDep) {
        match r {
            RichDep::Atom { name, flags, evr } => {
                self.u8(0);
                self.str(name);
                self.u32(flags.0);
                self.opt_evr(evr);
            }
            RichDep::And(v) | RichDep::Or(v) | RichDep::With(v) => {
                self.u8(match r {
                    RichDep::And(_) => 1,
                    RichDep::Or(_) => 2,
                    _ => 5,
                });
                self.len(v.len());
                v.iter().for_each(|x| self.rich(x));
            }
            RichDep::If(a, b, c) | RichDep::Unless(a, b, c) => {
                self.u8(if matches!(r, RichDep::If(..)) { 3 } else { 4 });
                self.rich(a);
                self.rich(b);
                match c {
                    None => self.u8(0),
                    Some(c) => {
                        self.u8(1);
                        self.rich(c);
                    }
                }
            }
            RichDep::Without(a, b) => {
                self.u8(6);
                self.rich(a);
                self.rich(b);
            }
        }
    }
    fn deps(&mut self, v: &[Dep]) {
        self.len(v.len());
        for d in v {
            self.str(&d.name);
            self.u32(d.flags.0);
            self.opt_evr(&d.evr);
            self.u8(d.pre as u8 | (d.rich.is_some() as u8) << 1);
            if let Some(r) = &d.rich {
                self.rich(r);
            }
        }
    }
    fn pkg(&mut self, p: &PackageMeta) {
        self.str(&p.name);
        self.u32(p.epoch);
        self.str(&p.version);
        self.str(&p.release);
        self.str(&p.arch);
        for v in [
            &p.provides,
            &p.requires,
            &p.conflicts,
            &p.obsoletes,
            &p.recommends,
            &p.suggests,
            &p.supplements,
            &p.enhances,
        ] {
            self.deps(v);
        }
        self.strs(&p.files);
        self.strs(&p.dirs);
        self.strs(&p.ghosts);
        self.str(&p.location);
        self.str(&p.sha256);
        self.u64(p.size);
        self.u64(p.installed_size);
        self.str(&p.sourcerpm);
        self.str(&p.summary);
        self.u64(p.build_time);
        self.strs(&p.scriptlets);
        self.u64(p.header_range.0);
        self.u64(p.header_range.1);
    }
    fn group(&mut self, g: &Group) {
        self.str(&g.id);
        self.str(&g.name);
        self.u8(g.is_environment as u8);
        self.len(g.packages.len());
        for p in &g.packages {
            self.str(&p.name);
            self.u8(match p.kind {
                GroupPkgKind::Mandatory => 0,
                GroupPkgKind::Default => 1,
                GroupPkgKind::Optional => 2,
                GroupPkgKind::Conditional => 3,
            });
            match &p.requires {
                None => self.u8(0),
                Some(r) => {
                    self.u8(1);
                    self.str(r);
                }
            }
        }
        self.strs(&g.groups);
        self.strs(&g.options);
    }
}

struct R<'d> {
    d: &'d [u8],
    pos: usize,
}

impl<'d> R<'d> {
    fn take(&mut self, n: usize) -> Result<&'d [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.d.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.d[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A count of items each at least `min` bytes long (bounds the pre-allocation).
    fn len(&mut self, min: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min.max(1)) > self.d.len() - self.pos {
            return Err(format!("count {n} at byte {} exceeds the data", self.pos));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("invalid UTF-8 before byte {}", self.pos))
    }
    fn strings(&mut self) -> Result<Vec<String>, String> {
        let n = self.len(4)?;
        (0..n).map(|_| self.string()).collect()
    }
    fn evr(&mut self) -> Result<Evr, String> {
        Ok(Evr {
            epoch: self.u32()?,
            version: self.string()?,
            release: self.string()?,
        })
    }
    fn opt_evr(&mut self) -> Result<Option<Evr>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.evr()?)),
            t => Err(format!("bad option tag {t} before byte {}", self.pos)),
        }
    }
    fn rich(&mut self, depth: u32) -> Result<RichDep, String> {
        if depth > MAX_DEPTH {
            return Err("rich dependency nested too deeply".into());
        }
        let sub = |r: &mut Self| r.rich(depth + 1).map(Box::new);
        Ok(match self.u8()? {
            0 => RichDep::Atom {
                name: self.string()?,
                flags: DepFlags(self.u32()?),
                evr: self.opt_evr()?,
            },
            t @ (1 | 2 | 5) => {
                let n = self.len(1)?;
                let v = (0..n)
                    .map(|_| self.rich(depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                match t {
                    1 => RichDep::And(v),
                    2 => RichDep::Or(v),
                    _ => RichDep::With(v),
                }
            }
            t @ (3 | 4) => {
                let a = sub(self)?;
                let b = sub(self)?;
                let c = match self.u8()? {
                    0 => None,
                    _ => Some(sub(self)?),
                };
                if t == 3 {
                    RichDep::If(a, b, c)
                } else {
                    RichDep::Unless(a, b, c)
                }
            }
            6 => {
                let a = sub(self)?;
                RichDep::Without(a, sub(self)?)
            }
            t => return Err(format!("bad rich dependency tag {t}")),
        })
    }
    fn deps(&mut self) -> Result<Vec<Dep>, String> {
        let n = self.len(10)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let flags = DepFlags(self.u32()?);
            let evr = self.opt_evr()?;
            let bits = self.u8()?;
            let rich = if bits & 2 != 0 {
                Some(self.rich(0)?)
            } else {
                None
            };
            v.push(Dep {
                name,
                flags,
                evr,
                pre: bits & 1 != 0,
                rich,
            });
        }
        Ok(v)
    }
    fn pkg(&mut self) -> Result<PackageMeta, String> {
        Ok(PackageMeta {
            name: self.string()?,
            epoch: self.u32()?,
            version: self.string()?,
            release: self.string()?,
            arch: self.string()?,
            provides: self.deps()?,
            requires: self.deps()?,
            conflicts: self.deps()?,
            obsoletes: self.deps()?,
            recommends: self.deps()?,
            suggests: self.deps()?,
            supplements: self.deps()?,
            enhances: self.deps()?,
            files: self.strings()?,
            dirs: self.strings()?,
            ghosts: self.strings()?,
            location: self.string()?,
            sha256: self.string()?,
            size: self.u64()?,
            installed_size: self.u64()?,
            sourcerpm: self.string()?,
            summary: self.string()?,
            build_time: self.u64()?,
            scriptlets: self.strings()?,
            header_range: (self.u64()?, self.u64()?),
        })
    }
    fn group(&mut self) -> Result<Group, String> {
        let id = self.string()?;
        let name = self.string()?;
        let is_environment = self.u8()? != 0;
        let n = self.len(6)?;
        let mut packages = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let kind = match self.u8()? {
                0 => GroupPkgKind::Mandatory,
                1 => GroupPkgKind::Default,
                2 => GroupPkgKind::Optional,
                3 => GroupPkgKind::Conditional,
                t => return Err(format!("bad group package kind {t}")),
            };
            let requires = match self.u8()? {
                0 => None,
                _ => Some(self.string()?),
            };
            packages.push(GroupPackage {
                name,
                kind,
                requires,
            });
        }
        Ok(Group {
            id,
            name,
            is_environment,
            packages,
            groups: self.strings()?,
            options: self.strings()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<RepoIndex> {
        let mut p = PackageMeta {
            name: "foo".into(),
            epoch: 2,
            version: "1.0~rc1".into(),
            release: "3.el9".into(),
            arch: "x86_64".into(),
            location: "Packages/f/foo.rpm".into(),
            sha256: "ab".repeat(32),
            size: 1234,
            installed_size: 99,
            files: vec!["/usr/bin/foo".into(), "/etc".into()],
            dirs: vec!["/etc".into()],
            ghosts: vec![],
            scriptlets: vec!["post".into()],
            header_range: (4504, 9999),
            summary: "ünïcode".into(),
            ..Default::default()
        };
        p.provides = vec![Dep::new(
            "foo",
            DepFlags::EQUAL,
            Some(Evr::parse("2:1.0-3")),
            false,
        )];
        p.requires = vec![
            Dep::new("bar", DepFlags::GE, Some(Evr::parse("1.2")), true),
            Dep::new("(a or (b and c))", DepFlags::ANY, None, false),
            Dep::new("(x if (y or z) else w)", DepFlags::ANY, None, false),
            Dep::new("(p with q without r)", DepFlags::ANY, None, false),
            Dep::new("(m unless n)", DepFlags::ANY, None, false),
        ];
        p.obsoletes = vec![Dep::new(
            "old",
            DepFlags::LESS,
            Some(Evr::parse("1")),
            false,
        )];
        vec![RepoIndex {
            name: "r".into(),
            packages: vec![p.clone(), PackageMeta::default()],
            groups: vec![Group {
                id: "core".into(),
                name: "Core".into(),
                is_environment: false,
                packages: vec![GroupPackage {
                    name: "foo".into(),
                    kind: GroupPkgKind::Conditional,
                    requires: Some("bar".into()),
                }],
                groups: vec![],
                options: vec!["x".into()],
            }],
            checksum: "sha256:00".into(),
            base: PathBuf::from("/srv/repo"),
        }]
    }

    #[test]
    fn round_trip() {
        let s = sample();
        assert!(s[0].packages[0].requires[1].rich.is_some());
        let b = encode(&s);
        let d = decode(&b).unwrap();
        assert_eq!(d, s);
        // bit-exact too (Evr's equality is rpm's comparison, so compare the JSON forms)
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            serde_json::to_string(&s).unwrap()
        );
    }

    #[test]
    fn refuses_truncation_and_foreign_data() {
        let b = encode(&sample());
        for cut in [0, 7, 12, 40, b.len() / 2, b.len() - 1] {
            assert!(decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"[{\"name\":\"x\"}]").unwrap_err().contains("magic"));
        let mut v = b.clone();
        v[8] = 99;
        assert!(decode(&v).unwrap_err().contains("format 99"));
        let mut t = b.clone();
        t.push(0);
        assert!(decode(&t).unwrap_err().contains("trailing"));
    }
}

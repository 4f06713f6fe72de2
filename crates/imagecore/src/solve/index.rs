//! The immutable package index a solve works on: allowed packages, names, and the provides and
//! file-provides lookup tables. Built once per [`super::solve`] call and shared by every pass.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::repo::RepoIndex;
use crate::rpm::{Dep, PackageMeta, RichDep};

/// A fast non-cryptographic hasher (the Fx hash of rustc) for the solver's string and integer
/// keys: std's SipHash dominated index construction on 20,000-package repositories.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(a));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// `HashSet` with [`FxHasher`].
pub(crate) type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// Package names dnf treats as install-only (several versions may be installed) by default.
pub const INSTALLONLY: &[&str] = &[
    "kernel",
    "kernel-core",
    "kernel-modules",
    "kernel-modules-core",
    "kernel-modules-extra",
    "kernel-devel",
    "kernel-debug",
    "kernel-uek",
    "installonlypkg(kernel)",
    "installonlypkg(kernel-module)",
    "installonlypkg(vm)",
    "multiversion(kernel)",
];

/// One candidate package.
pub(crate) struct Solv<'a> {
    pub pkg: &'a PackageMeta,
    /// The package's EVR (computed once: comparisons are hot).
    pub evr: crate::rpm::Evr,
    pub repo: usize,
    pub name: usize,
    /// 0 = the image arch, 1 = noarch, 2 = a multilib arch.
    pub arch_rank: u8,
}

/// A solver name: a package name (with `.i686`-style suffix for multilib packages, which may be
/// installed beside the main-arch package), or a capability nothing provides.
pub(crate) struct NameInfo {
    pub display: String,
    pub solvables: Vec<u32>,
    pub installonly: bool,
}

pub(crate) struct Index<'a> {
    pub repos: &'a [RepoIndex],
    pub solvs: Vec<Solv<'a>>,
    pub names: Vec<NameInfo>,
    pub name_ids: FxMap<String, usize>,
    /// capability → solvables providing it (any version).
    pub provides: FxMap<&'a str, Vec<u32>>,
    /// path → solvables shipping it, only for paths something asks for.
    pub files: FxMap<String, Vec<u32>>,
    /// base package name → name ids (main and multilib keys).
    pub by_base_name: FxMap<&'a str, Vec<usize>>,
}

/// Arches a system of `arch` installs: (main, multilib).
pub(crate) fn compat_arches(arch: &str) -> (Vec<&'static str>, Vec<&'static str>) {
    match arch {
        "x86_64" | "amd64" => (
            vec!["x86_64"],
            vec!["i686", "i586", "i486", "i386", "athlon"],
        ),
        "aarch64" => (vec!["aarch64"], vec![]),
        "ppc64le" => (vec!["ppc64le"], vec![]),
        "s390x" => (vec!["s390x"], vec!["s390"]),
        "i686" => (vec!["i686", "i586", "i486", "i386"], vec![]),
        _ => (vec![], vec![]),
    }
}

fn collect_paths<'b>(d: &'b Dep, out: &mut FxSet<&'b str>) {
    fn rich<'b>(r: &'b RichDep, out: &mut FxSet<&'b str>) {
        match r {
            RichDep::Atom { name, .. } => {
                if name.starts_with('/') {
                    out.insert(name);
                }
            }
            RichDep::And(v) | RichDep::Or(v) | RichDep::With(v) => {
                v.iter().for_each(|x| rich(x, out))
            }
            RichDep::If(a, b, c) | RichDep::Unless(a, b, c) => {
                rich(a, out);
                rich(b, out);
                if let Some(c) = c {
                    rich(c, out);
                }
            }
            RichDep::Without(a, b) => {
                rich(a, out);
                rich(b, out);
            }
        }
    }
    if d.name.starts_with('/') {
        out.insert(&d.name);
    }
    if let Some(r) = &d.rich {
        rich(r, out);
    }
}

impl<'a> Index<'a> {
    pub fn new(
        repos: &'a [RepoIndex],
        arch: &str,
        multilib: bool,
        excluded: impl Fn(&PackageMeta) -> bool,
        extra_paths: &[String],
    ) -> Index<'a> {
        let (main, multi) = compat_arches(arch);
        let mut idx = Index {
            repos,
            solvs: Vec::new(),
            names: Vec::new(),
            name_ids: FxMap::default(),
            provides: FxMap::default(),
            files: FxMap::default(),
            by_base_name: FxMap::default(),
        };
        for (r, repo) in repos.iter().enumerate() {
            for pkg in &repo.packages {
                let rank = if pkg.arch == arch || main.contains(&pkg.arch.as_str()) {
                    0
                } else if pkg.arch == "noarch" {
                    1
                } else if multilib && multi.contains(&pkg.arch.as_str()) {
                    2
                } else {
                    continue;
                };
                if excluded(pkg) {
                    continue;
                }
                let key = if rank == 2 {
                    format!("{}.{}", pkg.name, pkg.arch)
                } else {
                    pkg.name.clone()
                };
                let name = idx.name_id(&key);
                let id = idx.solvs.len() as u32;
                idx.names[name].solvables.push(id);
                let ids = idx.by_base_name.entry(pkg.name.as_str()).or_default();
                if !ids.contains(&name) {
                    ids.push(name);
                }
                idx.solvs.push(Solv {
                    pkg,
                    evr: pkg.evr(),
                    repo: r,
                    name,
                    arch_rank: rank,
                });
            }
        }
        let mut wanted: FxSet<&str> = extra_paths.iter().map(String::as_str).collect();
        for (i, s) in idx.solvs.iter().enumerate() {
            let pkg = s.pkg;
            let mut seen_self = false;
            for p in &pkg.provides {
                if p.name == pkg.name {
                    seen_self = true;
                }
                let v = idx.provides.entry(p.name.as_str()).or_default();
                if v.last() != Some(&(i as u32)) {
                    v.push(i as u32);
                }
            }
            if !seen_self {
                idx.provides
                    .entry(pkg.name.as_str())
                    .or_default()
                    .push(i as u32);
            }
            for d in pkg
                .requires
                .iter()
                .chain(&pkg.conflicts)
                .chain(&pkg.recommends)
                .chain(&pkg.supplements)
            {
                collect_paths(d, &mut wanted);
            }
        }
        for (i, s) in idx.solvs.iter().enumerate() {
            for f in &s.pkg.files {
                if wanted.contains(f.as_str()) {
                    let v = idx.files.entry(f.clone()).or_default();
                    if v.last() != Some(&(i as u32)) {
                        v.push(i as u32);
                    }
                }
            }
        }
        for n in &mut idx.names {
            n.installonly = INSTALLONLY.contains(&n.display.as_str());
        }
        for s in &idx.solvs {
            if s.pkg
                .provides
                .iter()
                .any(|p| INSTALLONLY.contains(&p.name.as_str()))
            {
                idx.names[s.name].installonly = true;
            }
        }
        idx
    }

    pub fn name_id(&mut self, key: &str) -> usize {
        if let Some(&id) = self.name_ids.get(key) {
            return id;
        }
        let id = self.names.len();
        self.names.push(NameInfo {
            display: key.to_string(),
            solvables: Vec::new(),
            installonly: false,
        });
        self.name_ids.insert(key.to_string(), id);
        id
    }

    /// Solvables that may provide `cap` (name match only; versions are checked by filters).
    pub fn providers(&self, cap: &str) -> Vec<u32> {
        let mut v: Vec<u32> = self.provides.get(cap).cloned().unwrap_or_default();
        if cap.starts_with('/')
            && let Some(f) = self.files.get(cap)
        {
            v.extend(f);
            v.sort_unstable();
            v.dedup();
        }
        v
    }

    /// The name ids of `cap`'s providers, in preference order: main-arch names alphabetically,
    /// then multilib names (libsolv's choice among equal providers: best arch, then name).
    pub fn provider_names(&self, cap: &str) -> Vec<usize> {
        let mut names: Vec<usize> = self
            .providers(cap)
            .iter()
            .map(|&s| self.solvs[s as usize].name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names.sort_by(|&a, &b| {
            let ra = self.names[a]
                .solvables
                .iter()
                .map(|&s| self.solvs[s as usize].arch_rank)
                .min();
            let rb = self.names[b]
                .solvables
                .iter()
                .map(|&s| self.solvs[s as usize].arch_rank)
                .min();
            (ra == Some(2))
                .cmp(&(rb == Some(2)))
                .then_with(|| self.names[a].display.cmp(&self.names[b].display))
        });
        names
    }
}

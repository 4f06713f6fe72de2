//! The driver set of the initrd: module dependency closure in load order.
//!
//! Dependencies come from `modules.dep` when the kernel package ships it (RHEL ships the depmod
//! output or depmod runs in `%posttrans`). Debian-style packages ship none, so we do depmod's job
//! ourselves: each module's `.modinfo` names its hard dependencies (`depends=`), which is exactly
//! what depmod writes into `modules.dep`. Module names are matched anchored and whole (unlike
//! xCAT's `/<name>.ko:/` regex), for `.ko`, `.ko.xz`, `.ko.zst` and `.ko.gz` alike.
//!
//! Extras over a plain dependency walk:
//! - softdeps (`softdep=pre: … post: …` in `.modinfo`): loaded before / after the module;
//!   every `softdep=` entry counts (kmod applies only the last one of a module, e.g. btrfs has
//!   four), and names may be aliases (`crypto-crc32c`), resolved through `modules.alias` or,
//!   without it, through every module's `alias=` fields;
//! - `virtio_pci`, the PCI transport, whenever a virtio device driver is in the set: it is bound
//!   only through `modules.alias`, never a dependency, and without it there is no `/dev/vda`;
//! - firmware named by `firmware=` that exists under `lib/firmware` (also `.xz`/`.zst`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;
use walkdir::WalkDir;

use super::BootError;
use super::modinfo::{ModInfo, modinfo, module_name, normalize, read_module};

/// The per-architecture default network drivers that xCAT appends to `netdrivers` (with
/// `mlx_en` spelled as the real module name `mlx4_en`).
pub fn default_netdrivers(arch: &str) -> &'static [&'static str] {
    match arch {
        "x86_64" | "x86" | "i686" | "i386" => &[
            "tg3",
            "bnx2",
            "bnx2x",
            "e1000",
            "e1000e",
            "igb",
            "mlx4_en",
            "virtio_net",
            "be2net",
        ],
        "aarch64" => &[
            "tg3",
            "bnx2",
            "bnx2x",
            "e1000e",
            "igb",
            "mlx4_en",
            "virtio_net",
        ],
        "ppc64" => &["e1000", "e1000e", "igb", "ibmveth", "ehea"],
        "s390x" => &["qdio", "ccwgroup"],
        _ => &[],
    }
}

/// The modules (and firmware) the initrd carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverSet {
    /// Module files (absolute, possibly compressed), in load order: dependencies first.
    pub modules: Vec<PathBuf>,
    /// Names from the `wanted` (default) list that this kernel has neither as a module nor built
    /// in; the caller prints them as a warning.
    pub missing_default: Vec<String>,
    /// Firmware files (absolute) named by the modules and present in the image.
    pub firmware: Vec<PathBuf>,
}

/// Virtio device drivers whose devices sit on the virtio PCI transport.
const VIRTIO_DEVICE_DRIVERS: [&str; 5] = [
    "virtio_blk",
    "virtio_net",
    "virtio_scsi",
    "virtio_console",
    "virtio_balloon",
];

/// Compute the load-ordered closure of `explicit` (user-asked: missing ones are an error) and
/// `wanted` (defaults: missing ones are reported in [`DriverSet::missing_default`]).
pub fn module_closure(
    modules_dir: &Path,
    wanted: &[String],
    explicit: &[String],
) -> Result<DriverSet, BootError> {
    let index = ModIndex::load(modules_dir)?;
    let mut w = Walk {
        index: &index,
        infos: HashMap::new(),
        done: HashSet::new(),
        active: HashSet::new(),
        order: Vec::new(),
    };
    let mut missing_explicit = Vec::new();
    let mut missing_default = Vec::new();
    for name in explicit {
        let n = normalize(name.trim_end_matches(".ko"));
        if !w.visit(&n)? {
            missing_explicit.push(name.clone());
        }
    }
    if !missing_explicit.is_empty() {
        return Err(BootError::MissingDrivers {
            dir: modules_dir.to_path_buf(),
            names: missing_explicit.join(" "),
        });
    }
    for name in wanted {
        let n = normalize(name.trim_end_matches(".ko"));
        if !w.visit(&n)? {
            missing_default.push(name.clone());
        }
    }
    if w.order
        .iter()
        .any(|m| VIRTIO_DEVICE_DRIVERS.contains(&m.as_str()))
    {
        // a missing virtio_pci is fine when it is built in; visit() reports that as "present"
        w.visit("virtio_pci")?;
    }
    let firmware_dir = modules_dir
        .parent()
        .and_then(Path::parent)
        .map(|lib| lib.join("firmware"));
    let mut firmware = Vec::new();
    let mut seen_fw = HashSet::new();
    for name in &w.order {
        let Some(info) = w.infos.get(name) else {
            continue;
        };
        for fw in &info.firmware {
            let Some(dir) = &firmware_dir else { continue };
            for cand in [fw.clone(), format!("{fw}.xz"), format!("{fw}.zst")] {
                let p = dir.join(&cand);
                if p.is_file() && seen_fw.insert(p.clone()) {
                    firmware.push(p);
                }
            }
        }
    }
    let modules = w
        .order
        .iter()
        .filter_map(|n| index.by_name.get(n))
        .map(|rel| modules_dir.join(rel))
        .collect();
    Ok(DriverSet {
        modules,
        missing_default,
        firmware,
    })
}

/// What the modules directory says about its modules.
struct ModIndex {
    dir: PathBuf,
    /// name -> path relative to the modules dir.
    by_name: BTreeMap<String, String>,
    /// From `modules.dep` when present: name -> dependency names.
    dep: Option<HashMap<String, Vec<String>>>,
    /// Names built into the kernel (`modules.builtin`).
    builtin: HashSet<String>,
    /// `modules.alias`: exact alias -> module names (for softdeps that name an alias); `None`
    /// until needed when the tree has no `modules.alias` (then built from every `.modinfo`).
    alias: OnceLock<HashMap<String, Vec<String>>>,
}

impl ModIndex {
    fn load(dir: &Path) -> Result<ModIndex, BootError> {
        let version = dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !dir.is_dir() {
            return Err(BootError::NoModules {
                dir: dir.to_path_buf(),
                version,
            });
        }
        let mut by_name: BTreeMap<String, String> = BTreeMap::new();
        let walker = WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                e.depth() != 1 || !matches!(e.file_name().to_str(), Some("build" | "source"))
            });
        for entry in walker {
            let entry = entry.map_err(|e| {
                let p = e.path().unwrap_or(dir).to_path_buf();
                BootError::io(p, std::io::Error::other(e.to_string()))
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().and_then(module_name) else {
                continue;
            };
            let Ok(rel) = entry.path().strip_prefix(dir) else {
                continue;
            };
            let rel = rel.to_string_lossy().into_owned();
            match by_name.get(&name) {
                Some(old) if rank(old) <= rank(&rel) => {}
                _ => {
                    by_name.insert(name, rel);
                }
            }
        }
        if by_name.is_empty() {
            return Err(BootError::NoModules {
                dir: dir.to_path_buf(),
                version,
            });
        }
        let dep = read_opt(&dir.join("modules.dep"))?.map(|text| {
            let mut m = HashMap::new();
            for line in text.lines() {
                let Some((path, deps)) = line.split_once(':') else {
                    continue;
                };
                let Some(name) = file_name_of(path).and_then(module_name) else {
                    continue;
                };
                let deps = deps
                    .split_whitespace()
                    .filter_map(|d| file_name_of(d).and_then(module_name))
                    .collect();
                m.insert(name, deps);
            }
            m
        });
        let builtin = read_opt(&dir.join("modules.builtin"))?
            .map(|t| {
                t.lines()
                    .filter_map(|l| file_name_of(l.trim()).and_then(module_name))
                    .collect()
            })
            .unwrap_or_default();
        let alias = OnceLock::new();
        if let Some(t) = read_opt(&dir.join("modules.alias"))? {
            let mut m: HashMap<String, Vec<String>> = HashMap::new();
            for l in t.lines() {
                let mut w = l.split_whitespace();
                if let (Some("alias"), Some(a), Some(name)) = (w.next(), w.next(), w.next()) {
                    m.entry(normalize(a)).or_default().push(normalize(name));
                }
            }
            let _ = alias.set(m);
        }
        Ok(ModIndex {
            dir: dir.to_path_buf(),
            by_name,
            dep,
            builtin,
            alias,
        })
    }
}

impl ModIndex {
    /// The modules an alias names (exact match, `-` and `_` alike, as kmod compares them); reads every module's `.modinfo` (in parallel)
    /// the first time when the tree has no `modules.alias`, as depmod would.
    fn alias(&self, name: &str) -> Result<Vec<String>, BootError> {
        if self.alias.get().is_none() {
            let pairs: Vec<(String, Vec<String>)> = self
                .by_name
                .par_iter()
                .map(|(n, rel)| -> Result<(String, Vec<String>), BootError> {
                    let p = self.dir.join(rel);
                    Ok((n.clone(), modinfo(&p, &read_module(&p)?)?.alias))
                })
                .collect::<Result<_, _>>()?;
            let mut m: HashMap<String, Vec<String>> = HashMap::new();
            for (n, aliases) in pairs {
                for a in aliases {
                    m.entry(normalize(&a)).or_default().push(n.clone());
                }
            }
            let _ = self.alias.set(m);
        }
        Ok(self
            .alias
            .get()
            .and_then(|m| m.get(name).cloned())
            .unwrap_or_default())
    }
}

/// depmod's default search order: `updates/` first, then `extra/`, then the rest.
fn rank(rel: &str) -> u8 {
    if rel.starts_with("updates/") {
        0
    } else if rel.starts_with("extra/") {
        1
    } else {
        2
    }
}

fn file_name_of(path: &str) -> Option<&str> {
    path.rsplit('/').next().filter(|s| !s.is_empty())
}

fn read_opt(path: &Path) -> Result<Option<String>, BootError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BootError::io(path, e)),
    }
}

/// The depth-first walk producing the load order.
struct Walk<'a> {
    index: &'a ModIndex,
    infos: HashMap<String, ModInfo>,
    done: HashSet<String>,
    active: HashSet<String>,
    order: Vec<String>,
}

impl Walk<'_> {
    /// Add `name` and its dependencies; false when the kernel has no such module (built-in
    /// modules count as present and add nothing).
    fn visit(&mut self, name: &str) -> Result<bool, BootError> {
        if self.done.contains(name) || self.active.contains(name) {
            return Ok(true);
        }
        let Some(rel) = self.index.by_name.get(name) else {
            return Ok(self.index.builtin.contains(name));
        };
        self.active.insert(name.to_string());
        let path = self.index.dir.join(rel);
        let info = modinfo(&path, &read_module(&path)?)?;
        let deps = match &self.index.dep {
            Some(dep) => dep.get(name).cloned().unwrap_or_default(),
            None => info.depends.clone(),
        };
        for p in &info.pre {
            self.visit_soft(p)?;
        }
        for d in &deps {
            if !self.visit(d)? {
                return Err(BootError::Module {
                    path,
                    message: format!(
                        "depends on module {d}, which is not in {}",
                        self.index.dir.display()
                    ),
                });
            }
        }
        self.active.remove(name);
        self.done.insert(name.to_string());
        self.order.push(name.to_string());
        let post = info.post.clone();
        self.infos.insert(name.to_string(), info);
        for p in &post {
            self.visit_soft(p)?;
        }
        Ok(true)
    }

    /// A softdep: a module name or an alias; absent ones are skipped, as modprobe does.
    fn visit_soft(&mut self, name: &str) -> Result<(), BootError> {
        if self.index.by_name.contains_key(name) {
            self.visit(name)?;
        } else {
            let real = self.index.alias(name)?;
            if real.is_empty() {
                tracing::debug!(softdep = name, "softdep not found, skipped");
            }
            for r in real {
                self.visit(&r)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert!(default_netdrivers("x86_64").contains(&"virtio_net"));
        assert!(default_netdrivers("ppc64le").is_empty());
    }

    #[test]
    fn empty_tree_is_no_modules() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("lib/modules/1.0");
        std::fs::create_dir_all(d.join("kernel")).unwrap();
        let e = module_closure(&d, &[], &["e1000".into()]).unwrap_err();
        assert!(matches!(e, BootError::NoModules { .. }), "{e}");
        let e = module_closure(&t.path().join("nope"), &[], &[]).unwrap_err();
        assert!(matches!(e, BootError::NoModules { .. }), "{e}");
    }
}

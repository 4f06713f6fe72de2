//! Distro identification from `.discinfo`, `.treeinfo` and SUSE's `media.1/products`, mapped to
//! xCAT's distro names (as `anaconda.pm`/`sles.pm` and `discinfo.pm` do).

use std::collections::BTreeMap;
use std::io::Read;

use sha2::Digest;

use super::{EntryKind, MediaError, MediaReader, normalize_arch};

/// What [`detect`] found out about a medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistroInfo {
    /// xCAT distro name: `rhels9.4`, `rocky9.4`, `alma9.4`, `centos-stream9`, `ol9.4`,
    /// `fedora40`, `sles15.5`, …
    pub distname: String,
    /// Architecture, normalised as xCAT does (`x86_64`, `aarch64`, `ppc64le`, `x86`, …).
    pub arch: String,
    /// Disc number(s): `1`, `2`, `all` (from `.discinfo` line 4, or `media.N`).
    pub discno: String,
    /// Human description (`.discinfo` line 2, or `.treeinfo` family + version).
    pub description: String,
    /// `.treeinfo` `[checksums]` entries, verified while copying.
    pub checksums: Vec<TreeChecksum>,
    /// `.treeinfo` variants (`BaseOS`, `AppStream`, …).
    pub variants: Vec<String>,
}

/// One `.treeinfo` `[checksums]` line: `path = algo:hex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeChecksum {
    /// Root-relative path of the file.
    pub path: String,
    /// `sha256` or `sha512` (others are refused when parsing).
    pub algo: String,
    /// Expected digest, lowercase hex.
    pub hex: String,
}

/// A parsed INI file (sections → key → value), as `.treeinfo` is.
type Ini = BTreeMap<String, BTreeMap<String, String>>;

fn parse_ini(text: &str) -> Ini {
    let mut out: Ini = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_string();
            out.entry(section.clone()).or_default();
        } else if let Some((k, v)) = l.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

fn get<'a>(ini: &'a Ini, section: &str, key: &str) -> Option<&'a str> {
    ini.get(section)
        .and_then(|s| s.get(key))
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

fn is_version(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn major(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

/// Maps a family/product name and a version to an xCAT distro name.
fn name_for(family: &str, version: &str, compute_node: bool) -> Option<String> {
    let f = family.to_ascii_lowercase();
    let v = version.trim();
    if v.is_empty() {
        return None;
    }
    let name = if f.contains("centos stream") {
        format!("centos-stream{}", major(v))
    } else if f.starts_with("centos") {
        format!("centos{v}")
    } else if f.starts_with("rocky") {
        format!("rocky{v}")
    } else if f.starts_with("almalinux") || f.starts_with("alma linux") {
        format!("alma{v}")
    } else if f.starts_with("red hat enterprise linux") || f == "rhel" {
        let v = v.trim_end_matches("-alternate");
        if compute_node {
            format!("rhelhpc{v}")
        } else {
            format!("rhels{v}")
        }
    } else if f.starts_with("oracle linux") || f == "ol" {
        format!("ol{v}")
    } else if f.starts_with("fedora") {
        format!("fedora{v}")
    } else if f.starts_with("suse linux enterprise server") || f == "sles" {
        format!("sles{}", suse_version(v))
    } else {
        return None;
    };
    Some(name)
}

/// `15-SP5` / `15 SP5` / `15.5` → `15.5`; `15` → `15`.
fn suse_version(v: &str) -> String {
    let v = v.trim();
    let up = v.to_ascii_uppercase();
    if let Some((maj, sp)) = up.split_once("SP") {
        let maj = maj.trim_end_matches(['-', ' ', '_']);
        let sp = sp.trim();
        if !maj.is_empty() && !sp.is_empty() {
            return format!("{maj}.{sp}");
        }
    }
    v.to_string()
}

/// Splits a `.discinfo` description like `Rocky Linux 9.4` into (family, version).
fn split_description(desc: &str) -> Option<(&str, &str)> {
    let (family, ver) = desc.trim().rsplit_once(' ')?;
    let ver = ver.trim_end_matches("-alternate");
    if ver.chars().next()?.is_ascii_digit() {
        Some((family.trim(), ver))
    } else {
        None
    }
}

fn read_text(r: &dyn MediaReader, path: &str) -> Result<Option<String>, MediaError> {
    match r.stat(path) {
        Ok(e) if e.kind == EntryKind::File => {
            let bytes = r.read_file(path)?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        _ => Ok(None),
    }
}

/// Identifies the distro on a medium.
///
/// Reads `.discinfo` (line 1 timestamp, 2 description, 3 arch, 4 disc numbers) and `.treeinfo`
/// (`[general]`/`[release]` family/name and version, `[tree]`/`[general]` arch, `[variant-*]`,
/// `[checksums]`), or for SUSE media `media.1/products` and `content`. The `[checksums]` are
/// parsed here and verified by [`verify_checksums`] (copycds verifies them while copying).
pub fn detect(reader: &dyn MediaReader) -> Result<DistroInfo, MediaError> {
    let media = reader.source().to_path_buf();
    let discinfo = read_text(reader, ".discinfo")?;
    let treeinfo = read_text(reader, ".treeinfo")?.map(|t| parse_ini(&t));
    let empty = Ini::new();
    let ti = treeinfo.as_ref().unwrap_or(&empty);

    let family = get(ti, "release", "name").or_else(|| get(ti, "general", "family"));
    let version = get(ti, "release", "version").or_else(|| get(ti, "general", "version"));
    let ti_arch = get(ti, "tree", "arch").or_else(|| get(ti, "general", "arch"));
    let mut variants: Vec<String> = ti
        .keys()
        .filter_map(|s| s.strip_prefix("variant-").map(str::to_string))
        .collect();
    if let Some(v) = get(ti, "general", "variant")
        && !variants.iter().any(|x| x == v)
    {
        variants.push(v.to_string());
    }
    let compute_node = variants.iter().any(|v| v == "ComputeNode");

    let mut checksums = Vec::new();
    if let Some(sec) = ti.get("checksums") {
        for (path, value) in sec {
            let Some((algo, hex)) = value.split_once(':') else {
                return Err(MediaError::BadInfo {
                    media,
                    file: ".treeinfo".into(),
                    why: format!("[checksums] {path} = {value:?}: expected ALGO:HEX"),
                });
            };
            let algo = algo.trim().to_ascii_lowercase();
            if algo != "sha256" && algo != "sha512" {
                return Err(MediaError::BadInfo {
                    media,
                    file: ".treeinfo".into(),
                    why: format!(
                        "[checksums] {path}: unsupported algorithm {algo:?} (sha256 and sha512 are supported)"
                    ),
                });
            }
            checksums.push(TreeChecksum {
                path: path.trim_start_matches('/').to_string(),
                algo,
                hex: hex.trim().to_ascii_lowercase(),
            });
        }
    }

    if let Some(text) = discinfo {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let description = lines.get(1).copied().unwrap_or("").to_string();
        let arch = lines
            .get(2)
            .copied()
            .filter(|s| !s.is_empty())
            .or(ti_arch)
            .ok_or_else(|| MediaError::BadInfo {
                media: media.clone(),
                file: ".discinfo".into(),
                why: "line 3 (architecture) is missing and .treeinfo names no arch".into(),
            })?;
        let discno = match lines.get(3).copied().unwrap_or("") {
            "" => "1".to_string(),
            d if d.eq_ignore_ascii_case("all") => "all".to_string(),
            d => d.to_string(),
        };
        let distname = if is_version(&description) {
            // RHEL 8+ style: a bare version; the family comes from .treeinfo.
            family.and_then(|f| name_for(f, &description, compute_node))
        } else {
            split_description(&description)
                .and_then(|(f, v)| name_for(f, v, compute_node))
                .or_else(|| family.and_then(|f| version.and_then(|v| name_for(f, v, compute_node))))
        };
        let distname = distname.ok_or_else(|| MediaError::Unidentified {
            media: media.clone(),
            why: format!(
                ".discinfo description {description:?} with .treeinfo family {:?} is not a known distro",
                family.unwrap_or("")
            ),
        })?;
        return Ok(DistroInfo {
            distname,
            arch: normalize_arch(arch),
            discno,
            description,
            checksums,
            variants,
        });
    }

    if let (Some(f), Some(v)) = (family, version) {
        let distname = name_for(f, v, compute_node).ok_or_else(|| MediaError::Unidentified {
            media: media.clone(),
            why: format!(".treeinfo family {f:?} is not a known distro"),
        })?;
        let arch = ti_arch.ok_or_else(|| MediaError::BadInfo {
            media: media.clone(),
            file: ".treeinfo".into(),
            why: "no [tree] arch or [general] arch".into(),
        })?;
        return Ok(DistroInfo {
            distname,
            arch: normalize_arch(arch),
            discno: "1".into(),
            description: format!("{f} {v}"),
            checksums,
            variants,
        });
    }

    if let Some(info) = detect_suse(reader, checksums.clone(), variants.clone(), ti_arch)? {
        return Ok(info);
    }

    Err(MediaError::Unidentified {
        media,
        why: "no .discinfo, no .treeinfo with family and version, no media.1/products".into(),
    })
}

/// SUSE media: `media.N/products` (`/ SLES15-SP5 15.5-0`), arch from `content`
/// (`DEFAULTBASE`/`BASEARCHS`) or `.treeinfo`.
fn detect_suse(
    reader: &dyn MediaReader,
    checksums: Vec<TreeChecksum>,
    variants: Vec<String>,
    ti_arch: Option<&str>,
) -> Result<Option<DistroInfo>, MediaError> {
    let media_dir = reader
        .entries()
        .iter()
        .find(|e| {
            e.kind == EntryKind::Dir
                && !e.path.contains('/')
                && e.path.strip_prefix("media.").is_some_and(is_version)
        })
        .map(|e| e.path.clone());
    let Some(media_dir) = media_dir else {
        return Ok(None);
    };
    let Some(products) = read_text(reader, &format!("{media_dir}/products"))? else {
        return Ok(None);
    };
    let line = products.lines().next().unwrap_or("").trim().to_string();
    let parts: Vec<&str> = line.split_whitespace().collect();
    let product = parts.get(1).copied().unwrap_or("");
    let up = product.to_ascii_uppercase();
    if !(up.contains("SLES") || up.contains("SUSE-LINUX-ENTERPRISE-SERVER")) {
        return Ok(None);
    }
    let ver = parts
        .get(2)
        .and_then(|v| v.split('-').next())
        .filter(|v| is_version(v))
        .ok_or_else(|| MediaError::BadInfo {
            media: reader.source().to_path_buf(),
            file: format!("{media_dir}/products"),
            why: format!("expected \"/ PRODUCT VERSION-RELEASE\", got {line:?}"),
        })?;
    let content = read_text(reader, "content")?.unwrap_or_default();
    let mut arch = None;
    for l in content.lines() {
        let mut it = l.split_whitespace();
        match (it.next(), it.next()) {
            (Some("DEFAULTBASE"), Some(a)) => {
                arch = Some(a.to_string());
                break;
            }
            (Some("BASEARCHS"), Some(a)) if arch.is_none() => arch = Some(a.to_string()),
            _ => {}
        }
    }
    let arch = arch
        .or_else(|| ti_arch.map(str::to_string))
        .or_else(|| {
            ["x86_64", "aarch64", "ppc64le", "s390x"]
                .iter()
                .find(|a| product.contains(*a))
                .map(|a| a.to_string())
        })
        .ok_or_else(|| MediaError::Unidentified {
            media: reader.source().to_path_buf(),
            why: "SUSE media without an architecture in content or .treeinfo".into(),
        })?;
    Ok(Some(DistroInfo {
        distname: format!("sles{ver}"),
        arch: normalize_arch(&arch),
        discno: media_dir.trim_start_matches("media.").to_string(),
        description: line,
        checksums,
        variants,
    }))
}

/// A streaming hasher for one `.treeinfo` checksum algorithm.
pub(crate) enum TreeHasher {
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl TreeHasher {
    /// A hasher for `algo` (`sha256` or `sha512`).
    pub(crate) fn new(algo: &str) -> TreeHasher {
        if algo == "sha512" {
            TreeHasher::Sha512(sha2::Sha512::new())
        } else {
            TreeHasher::Sha256(sha2::Sha256::new())
        }
    }
    /// Feeds bytes.
    pub(crate) fn update(&mut self, b: &[u8]) {
        match self {
            TreeHasher::Sha256(h) => h.update(b),
            TreeHasher::Sha512(h) => h.update(b),
        }
    }
    /// Lowercase hex digest.
    pub(crate) fn finish(self) -> String {
        match self {
            TreeHasher::Sha256(h) => hex::encode(h.finalize()),
            TreeHasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Verifies every `.treeinfo` `[checksums]` entry against the media (reads those files).
pub fn verify_checksums(reader: &dyn MediaReader, info: &DistroInfo) -> Result<(), MediaError> {
    for c in &info.checksums {
        let mut h = TreeHasher::new(&c.algo);
        let mut f = reader.open(&c.path)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|source| MediaError::Read {
                media: reader.source().to_path_buf(),
                path: c.path.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let actual = h.finish();
        if actual != c.hex {
            return Err(MediaError::ChecksumMismatch {
                media: reader.source().to_path_buf(),
                path: c.path.clone(),
                expected: format!("{}:{}", c.algo, c.hex),
                actual: format!("{}:{actual}", c.algo),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;

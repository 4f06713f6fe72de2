//! Shared-library closure of binaries inside an image root, without running anything from it:
//! `PT_INTERP` and `DT_NEEDED` read with the `object` crate, sonames searched like `ld.so` does
//! (`DT_RPATH`/`DT_RUNPATH` with `$ORIGIN`, `etc/ld.so.conf` and its includes, the default
//! directories), every symlink resolved inside the root, never on the host.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use object::Endianness;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};

use super::BootError;

/// Directories searched for a bare binary name.
pub(crate) const BIN_DIRS: [&str; 6] = [
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
    "usr/local/sbin",
    "usr/local/bin",
];

/// Root-relative paths (no leading `/`) that a copy of `binaries` into another root needs:
/// the binaries, their interpreter and libraries, and every symlink met on the way (directory
/// links such as `lib64 -> usr/lib64` and soname links such as `libz.so.1 -> libz.so.1.2.13`).
/// Each path's parent directory is a real directory in `root`. Sorted, no duplicates.
///
/// `binaries` are absolute paths inside the root (`/usr/bin/zstd`) or bare names searched in
/// `usr/sbin usr/bin sbin bin`.
pub fn elf_closure(root: &Path, binaries: &[&str]) -> Result<Vec<PathBuf>, BootError> {
    let conf_dirs = ld_so_conf_dirs(root);
    let mut out = BTreeSet::new();
    let mut queue: VecDeque<PathBuf> = VecDeque::new();
    let mut seen = BTreeSet::new();
    for b in binaries {
        let (links, file) = if b.contains('/') {
            resolve_in_root(root, b).filter(|(_, f)| root.join(f).is_file())
        } else {
            BIN_DIRS.iter().find_map(|d| {
                resolve_in_root(root, &format!("{d}/{b}")).filter(|(_, f)| root.join(f).is_file())
            })
        }
        .ok_or_else(|| BootError::BinaryNotFound {
            root: root.to_path_buf(),
            name: b.to_string(),
            searched: if b.contains('/') {
                b.to_string()
            } else {
                BIN_DIRS.join(" ")
            },
        })?;
        out.extend(links);
        queue.push_back(file);
    }
    while let Some(file) = queue.pop_front() {
        if !seen.insert(file.clone()) {
            continue;
        }
        out.insert(file.clone());
        let abs = root.join(&file);
        let data = std::fs::read(&abs).map_err(|e| BootError::io(&abs, e))?;
        let Some(info) = elf_info(&abs, &data)? else {
            continue; // a script or other non-ELF file: nothing to follow
        };
        let needed_by = file.to_string_lossy().into_owned();
        if let Some(interp) = &info.interp {
            let (links, f) = resolve_in_root(root, interp)
                .filter(|(_, f)| root.join(f).is_file())
                .ok_or_else(|| BootError::LibraryNotFound {
                    root: root.to_path_buf(),
                    lib: interp.clone(),
                    needed_by: needed_by.clone(),
                })?;
            out.extend(links);
            queue.push_back(f);
        }
        let origin = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut dirs: Vec<String> = Vec::new();
        for rp in &info.runpath {
            let rp = rp.replace("$ORIGIN", &format!("/{}", origin.display()));
            dirs.push(rp.replace("${ORIGIN}", &format!("/{}", origin.display())));
        }
        dirs.extend(conf_dirs.iter().cloned());
        dirs.extend(default_lib_dirs(info.is64).iter().map(|s| s.to_string()));
        for soname in &info.needed {
            let found = if soname.contains('/') {
                resolve_in_root(root, soname).filter(|(_, f)| root.join(f).is_file())
            } else {
                dirs.iter().find_map(|d| {
                    let (links, f) = resolve_in_root(root, &format!("{d}/{soname}"))?;
                    let data = std::fs::read(root.join(&f)).ok()?;
                    match object::FileKind::parse(&data[..]) {
                        Ok(object::FileKind::Elf64) if info.is64 => Some((links, f)),
                        Ok(object::FileKind::Elf32) if !info.is64 => Some((links, f)),
                        _ => None,
                    }
                })
            };
            let (links, f) = found.ok_or_else(|| BootError::LibraryNotFound {
                root: root.to_path_buf(),
                lib: soname.clone(),
                needed_by: needed_by.clone(),
            })?;
            out.extend(links);
            queue.push_back(f);
        }
    }
    Ok(out.into_iter().collect())
}

fn default_lib_dirs(is64: bool) -> &'static [&'static str] {
    if is64 {
        &[
            "/lib64",
            "/usr/lib64",
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/lib",
            "/usr/lib",
        ]
    } else {
        &[
            "/lib",
            "/usr/lib",
            "/lib/i386-linux-gnu",
            "/usr/lib/i386-linux-gnu",
        ]
    }
}

/// Directories named in `etc/ld.so.conf` and the files it `include`s (globs of the form
/// `dir/*.conf`), read inside the root.
fn ld_so_conf_dirs(root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut files = vec!["/etc/ld.so.conf".to_string()];
    let mut i = 0;
    while i < files.len() && i < 64 {
        let f = files[i].clone();
        i += 1;
        let Some((_, real)) = resolve_in_root(root, &f) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(root.join(real)) else {
            continue;
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if let Some(pat) = line.strip_prefix("include") {
                let pat = pat.trim();
                let pat = if pat.starts_with('/') {
                    pat.to_string()
                } else {
                    format!("/etc/{pat}")
                };
                if let Some((dir, glob)) = pat.rsplit_once('/') {
                    let (pre, suf) = glob.split_once('*').unwrap_or((glob, ""));
                    if let Some((_, rd)) = resolve_in_root(root, dir)
                        && let Ok(entries) = std::fs::read_dir(root.join(rd))
                    {
                        let mut names: Vec<String> = entries
                            .filter_map(|e| e.ok()?.file_name().into_string().ok())
                            .filter(|n| n.starts_with(pre) && n.ends_with(suf))
                            .collect();
                        names.sort();
                        files.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
                    }
                }
            } else if line.starts_with('/') {
                dirs.push(line.to_string());
            }
        }
    }
    dirs
}

/// What the loader needs from one ELF file.
struct ElfInfo {
    is64: bool,
    interp: Option<String>,
    needed: Vec<String>,
    runpath: Vec<String>,
}

/// `Ok(None)` when the file is not ELF.
fn elf_info(path: &Path, data: &[u8]) -> Result<Option<ElfInfo>, BootError> {
    let r = match object::FileKind::parse(data) {
        Ok(object::FileKind::Elf64) => parse::<object::elf::FileHeader64<Endianness>>(data, true),
        Ok(object::FileKind::Elf32) => parse::<object::elf::FileHeader32<Endianness>>(data, false),
        _ => return Ok(None),
    };
    r.map(Some).map_err(|e| BootError::Elf {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn parse<Elf: FileHeader<Endian = Endianness>>(data: &[u8], is64: bool) -> object::Result<ElfInfo> {
    let h = Elf::parse(data)?;
    let endian = h.endian()?;
    let mut info = ElfInfo {
        is64,
        interp: None,
        needed: Vec::new(),
        runpath: Vec::new(),
    };
    for ph in h.program_headers(endian, data)? {
        if let Some(i) = ph.interpreter(endian, data)? {
            info.interp = Some(String::from_utf8_lossy(i).into_owned());
        }
    }
    let sections = h.sections(endian, data)?;
    if let Some((dyns, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        for d in dyns {
            let tag = d.tag32(endian).unwrap_or(0);
            if tag == object::elf::DT_NEEDED {
                info.needed
                    .push(String::from_utf8_lossy(d.string(endian, strings)?).into_owned());
            } else if tag == object::elf::DT_RUNPATH || tag == object::elf::DT_RPATH {
                let s = String::from_utf8_lossy(d.string(endian, strings)?).into_owned();
                info.runpath
                    .extend(s.split(':').filter(|p| !p.is_empty()).map(str::to_string));
            }
        }
    }
    Ok(info)
}

/// Resolve `path` (absolute or relative to the root) inside `root`, following symlinks as if
/// `root` were `/`. Returns the symlinks met (root-relative, each with a real parent directory)
/// and the final root-relative path; `None` when it does not exist or loops.
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> Option<(Vec<PathBuf>, PathBuf)> {
    let mut links = Vec::new();
    let mut done = PathBuf::new();
    let mut todo: VecDeque<String> = comps(path).into();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => {}
            ".." => {
                done.pop();
            }
            name => {
                let cand = done.join(name);
                let meta = std::fs::symlink_metadata(root.join(&cand)).ok()?;
                if meta.file_type().is_symlink() {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    let target = std::fs::read_link(root.join(&cand)).ok()?;
                    links.push(cand);
                    let t = target.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        done = PathBuf::new();
                    }
                    for (i, tc) in comps(&t).into_iter().enumerate() {
                        todo.insert(i, tc);
                    }
                } else {
                    done = cand;
                }
            }
        }
    }
    Some((links, done))
}

fn comps(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_follows_links_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib64")).unwrap();
        symlink("usr/lib64", r.join("lib64")).unwrap();
        std::fs::write(r.join("usr/lib64/libz.so.1.3"), b"x").unwrap();
        symlink("libz.so.1.3", r.join("usr/lib64/libz.so.1")).unwrap();
        // an absolute link must stay inside the root
        symlink("/usr/lib64/libz.so.1", r.join("usr/lib64/abs")).unwrap();
        let (links, f) = resolve_in_root(r, "/lib64/libz.so.1").unwrap();
        assert_eq!(f, PathBuf::from("usr/lib64/libz.so.1.3"));
        assert_eq!(
            links,
            vec![PathBuf::from("lib64"), PathBuf::from("usr/lib64/libz.so.1")]
        );
        let (_, f) = resolve_in_root(r, "/usr/lib64/abs").unwrap();
        assert_eq!(f, PathBuf::from("usr/lib64/libz.so.1.3"));
        assert!(resolve_in_root(r, "/lib64/nope").is_none());
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop").is_none());
    }

    #[test]
    fn missing_binary_is_named() {
        let t = tempfile::tempdir().unwrap();
        let e = elf_closure(t.path(), &["zstd"]).unwrap_err();
        assert!(e.to_string().contains("zstd not found in the image"), "{e}");
    }
}

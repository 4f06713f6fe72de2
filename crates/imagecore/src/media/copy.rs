//! `copycds`: import install media into `<store>/<distname>/<arch>`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::detect::{DistroInfo, detect};
use super::fingerprint::media_fingerprint;
use super::install::{Staging, create_dirs, remove_empty};
use super::record::{MediaRecord, RECORD_FILE, SourceRecord};
use super::transfer::{copy_into, finish_dirs};
use super::{EntryKind, MediaError, MediaReader, MediaTree, normalize_arch, open_media};

/// Options of [`copycds`], named after xCAT's flags.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `-n`: distro name to use instead of the detected one (e.g. `rhels9.4-supp`).
    pub name: Option<String>,
    /// `-a`: architecture; must match the media's.
    pub arch: Option<String>,
    /// `-p`: destination directory instead of `<store>/<distname>/<arch>`.
    pub path: Option<PathBuf>,
    /// The media store (`--store`; `/install` for xCAT users).
    pub store: PathBuf,
    /// `-i`: identify only, copy nothing.
    pub inspection: bool,
    /// `-w`: refuse to overwrite a destination that holds different content.
    pub nonoverwrite: bool,
    /// `-o`: write no starter spec.
    pub noosimage: bool,
    /// Where a starter spec `<distname>-<arch>-netboot-compute.toml` may be written.
    pub spec_dir: Option<PathBuf>,
}

/// What [`copycds`] did for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// xCAT distro name.
    pub distname: String,
    /// Architecture.
    pub arch: String,
    /// Disc number(s) of the media copied here.
    pub discno: String,
    /// Description of the media (`.discinfo` line 2).
    pub description: String,
    /// The media copied to this destination.
    pub media: Vec<PathBuf>,
    /// Destination directory.
    pub dest: PathBuf,
    /// Content fingerprint recorded for the destination (empty with `-i`).
    pub fingerprint: String,
    /// Every repository root (directory holding `repodata/repomd.xml`) in the copy.
    pub repos: Vec<PathBuf>,
    /// `RPM-GPG-KEY*` files in the copy (recorded for gpgcheck, never imported on the host).
    pub gpgkeys: Vec<PathBuf>,
    /// True when the destination already held this content and nothing was copied.
    pub skipped_same: bool,
    /// True with `-i`: identified only.
    pub inspected: bool,
    /// Files and bytes in the copy.
    pub files: u64,
    /// Bytes in the copy.
    pub bytes: u64,
    /// The starter spec written, if any (an existing file is never overwritten).
    pub starter_spec: Option<PathBuf>,
    /// Problems worth telling the user that do not stop the import (e.g. a repository whose
    /// `repomd.xml` names files the media lacks).
    pub warnings: Vec<String>,
}

struct Medium {
    path: PathBuf,
    reader: Box<dyn MediaReader>,
    info: DistroInfo,
}

/// Imports install media (ISO files, block devices or extracted directories).
///
/// Each medium is identified ([`detect`], `-n` overrides, `-a` must match), then copied into
/// `<store>/<distname>/<arch>` (or `-p`). Media that map to the same destination (multi-DVD
/// sets) are merged into it, later discs winning on identical paths. The copy is staged next to
/// the destination and swapped in atomically; `.treeinfo` checksums are verified on the way and
/// a record (`.osimage-media.toml`) with the content fingerprint is written. A re-run on
/// unchanged media returns `skipped_same` without reading the media (size/mtime/inode pre-check);
/// on changed stamps the fingerprint is recomputed and compared. `progress(done, total)` reports
/// copied bytes.
pub fn copycds(
    media: &[PathBuf],
    opts: &CopyOptions,
    progress: &dyn Fn(u64, u64),
) -> Result<Vec<CopyReport>, MediaError> {
    if media.is_empty() {
        return Err(MediaError::Conflict(
            "copycds: no media given; pass an ISO file, a block device or a directory".into(),
        ));
    }
    let mut items = Vec::new();
    for m in media {
        let path = super::absolute(m);
        let reader = open_media(&path)?;
        let info = identify(reader.as_ref(), opts)?;
        items.push(Medium { path, reader, info });
    }
    // Group by destination, keeping the order of first appearance.
    let mut groups: Vec<(PathBuf, Vec<Medium>)> = Vec::new();
    for it in items {
        let dest = match &opts.path {
            Some(p) => super::absolute(p),
            None => super::absolute(&opts.store)
                .join(&it.info.distname)
                .join(&it.info.arch),
        };
        match groups.iter_mut().find(|(d, _)| *d == dest) {
            Some((_, v)) => {
                let first = &v[0].info;
                if first.distname != it.info.distname || first.arch != it.info.arch {
                    return Err(MediaError::Conflict(format!(
                        "{} ({} {}) and {} ({} {}) would both go to {}; copy them in separate runs or use -n",
                        v[0].path.display(),
                        first.distname,
                        first.arch,
                        it.path.display(),
                        it.info.distname,
                        it.info.arch,
                        dest.display()
                    )));
                }
                v.push(it)
            }
            None => groups.push((dest, vec![it])),
        }
    }
    let mut reports = Vec::new();
    for (dest, members) in &groups {
        let mut report = if opts.inspection {
            base_report(dest, members, true)
        } else {
            copy_group(dest, members, opts, progress)?
        };
        if !opts.inspection
            && !opts.noosimage
            && let Some(dir) = &opts.spec_dir
        {
            report.starter_spec =
                write_starter_spec(&super::absolute(dir), &report, opts.path.is_some())?;
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Detects the distro, applying `-n` and checking `-a`.
fn identify(reader: &dyn MediaReader, opts: &CopyOptions) -> Result<DistroInfo, MediaError> {
    let want_arch = opts.arch.as_deref().map(normalize_arch);
    let mut info = match detect(reader) {
        Ok(i) => i,
        Err(e @ MediaError::Unidentified { .. }) => match (&opts.name, &want_arch) {
            (Some(name), Some(arch)) => DistroInfo {
                distname: name.clone(),
                arch: arch.clone(),
                discno: "1".into(),
                description: String::new(),
                checksums: Vec::new(),
                variants: Vec::new(),
            },
            _ => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if let Some(a) = want_arch
        && a != info.arch
    {
        return Err(MediaError::ArchMismatch {
            media: reader.source().to_path_buf(),
            requested: a,
            media_arch: info.arch,
        });
    }
    if let Some(n) = &opts.name {
        if n.is_empty() || n.contains('/') || n.starts_with('.') {
            return Err(MediaError::Conflict(format!(
                "-n {n:?}: a distro name must be non-empty, without '/', and not start with '.'"
            )));
        }
        info.distname = n.clone();
    }
    Ok(info)
}

/// The cheap pre-check stamp of an ISO file: size, mtime (ns), inode and device. Empty for
/// directories and block devices, which are always re-hashed. Only ever used to skip re-hashing
/// media whose [`MediaRecord`] carries the same stamp, never as the media's identity.
pub fn media_stamp(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(md) if md.is_file() => format!(
            "size={} mtime_ns={} ino={} dev={}",
            md.len(),
            md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            md.ino(),
            md.dev()
        ),
        _ => String::new(),
    }
}

fn stamp(m: &Medium) -> String {
    if m.reader.tree() == MediaTree::Directory {
        return String::new();
    }
    media_stamp(&m.path)
}

fn base_report(dest: &Path, members: &[Medium], inspected: bool) -> CopyReport {
    let first = &members[0].info;
    let mut repos = Vec::new();
    let mut gpgkeys = Vec::new();
    for m in members {
        for e in m.reader.entries() {
            if e.kind == EntryKind::File {
                if let Some(root) = e.path.strip_suffix("repodata/repomd.xml") {
                    let root = root.trim_end_matches('/');
                    let r = if root.is_empty() {
                        dest.to_path_buf()
                    } else {
                        dest.join(root)
                    };
                    if !repos.contains(&r) {
                        repos.push(r);
                    }
                }
                let name = e.path.rsplit('/').next().unwrap_or(&e.path);
                let k = dest.join(&e.path);
                if name.starts_with("RPM-GPG-KEY") && !gpgkeys.contains(&k) {
                    gpgkeys.push(k);
                }
            }
        }
    }
    repos.sort();
    gpgkeys.sort();
    CopyReport {
        distname: first.distname.clone(),
        arch: first.arch.clone(),
        discno: members
            .iter()
            .map(|m| m.info.discno.as_str())
            .collect::<Vec<_>>()
            .join(","),
        description: first.description.clone(),
        media: members.iter().map(|m| m.path.clone()).collect(),
        dest: dest.to_path_buf(),
        fingerprint: String::new(),
        repos,
        gpgkeys,
        skipped_same: false,
        inspected,
        files: 0,
        bytes: 0,
        starter_spec: None,
        warnings: repo_warnings(members),
    }
}

/// Checks that every file each `repodata/repomd.xml` names is on the media. Joliet-only images
/// made without `-joliet-long` cut names to 64 characters, which breaks createrepo's
/// `<sha256>-primary.xml.gz` names.
fn repo_warnings(members: &[Medium]) -> Vec<String> {
    let mut out = Vec::new();
    for m in members {
        let r = m.reader.as_ref();
        for e in r.entries() {
            let Some(root) = e.path.strip_suffix("repodata/repomd.xml") else {
                continue;
            };
            let Ok(xml) = r.read_file(&e.path) else {
                out.push(format!("{}: cannot read /{}", r.source().display(), e.path));
                continue;
            };
            let xml = String::from_utf8_lossy(&xml);
            for part in xml.split("href=\"").skip(1) {
                let href = part.split('"').next().unwrap_or("");
                let p = format!("{root}{href}");
                if r.stat(&p).is_err() {
                    let hint = if r.tree() == MediaTree::Joliet {
                        " (a Joliet-only image cuts names to 64 characters; make the ISO with Rock Ridge (-R) or -joliet-long)"
                    } else {
                        ""
                    };
                    out.push(format!(
                        "{}: /{} names {href}, which is not on the media{hint}",
                        r.source().display(),
                        e.path
                    ));
                }
            }
        }
    }
    out
}

fn group_fingerprint(fps: &[String]) -> String {
    if fps.len() == 1 {
        return fps[0].clone();
    }
    let mut h = blake3::Hasher::new();
    for f in fps {
        h.update(f.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

fn rel_strings(dest: &Path, v: &[PathBuf]) -> Vec<String> {
    v.iter()
        .map(|p| {
            let r = p
                .strip_prefix(dest)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned();
            if r.is_empty() { ".".into() } else { r }
        })
        .collect()
}

fn copy_group(
    dest: &Path,
    members: &[Medium],
    opts: &CopyOptions,
    progress: &dyn Fn(u64, u64),
) -> Result<CopyReport, MediaError> {
    let mut report = base_report(dest, members, false);
    let stamps: Vec<String> = members.iter().map(stamp).collect();
    let dest_meta = std::fs::symlink_metadata(dest).ok();
    if let Some(md) = &dest_meta
        && !md.is_dir()
    {
        return Err(MediaError::io(
            dest,
            std::io::Error::other("exists and is not a directory; remove it or pass -p"),
        ));
    }
    let existing = if dest_meta.is_some() {
        MediaRecord::load(dest)?
    } else {
        None
    };
    if let Some(rec) = &existing {
        // Fast path: same media files, unchanged stamps.
        let same_stamps = rec.sources.len() == members.len()
            && members
                .iter()
                .zip(&stamps)
                .zip(&rec.sources)
                .all(|((m, s), r)| !s.is_empty() && r.path == m.path && &r.stamp == s);
        let mut fps = Vec::new();
        let same = if same_stamps {
            true
        } else {
            for m in members {
                fps.push(media_fingerprint(m.reader.as_ref())?);
            }
            group_fingerprint(&fps) == rec.fingerprint
        };
        if same {
            if !same_stamps {
                let mut updated = rec.clone();
                updated.sources = source_records(members, &fps, &stamps);
                updated.save(dest)?;
            }
            report.fingerprint = rec.fingerprint.clone();
            report.skipped_same = true;
            report.files = rec.files;
            report.bytes = rec.bytes;
            return Ok(report);
        }
        if opts.nonoverwrite {
            return Err(MediaError::WouldOverwrite {
                dest: dest.to_path_buf(),
                why: format!(
                    "recorded fingerprint {} differs from the media's {}",
                    &rec.fingerprint[..rec.fingerprint.len().min(12)],
                    &group_fingerprint(&fps)[..12]
                ),
            });
        }
    } else if dest_meta.is_some() && opts.nonoverwrite {
        return Err(MediaError::WouldOverwrite {
            dest: dest.to_path_buf(),
            why: format!("it has no {RECORD_FILE} from copycds"),
        });
    }

    let parent = dest.parent().unwrap_or(Path::new("/"));
    let created = create_dirs(parent)?;
    let result = (|| {
        let staging = Staging::new(dest)?;
        let mut fps = Vec::new();
        let mut dirs = Vec::new();
        for m in members {
            let c = copy_into(m.reader.as_ref(), &m.info, staging.path(), progress)?;
            fps.push(c.fingerprint);
            report.files += c.files;
            report.bytes += c.bytes;
            dirs.extend(
                m.reader
                    .entries()
                    .iter()
                    .filter(|e| e.kind == EntryKind::Dir)
                    .cloned(),
            );
        }
        finish_dirs(staging.path(), &dirs)?;
        report.fingerprint = group_fingerprint(&fps);
        let record = MediaRecord {
            fingerprint: report.fingerprint.clone(),
            distname: report.distname.clone(),
            arch: report.arch.clone(),
            sources: source_records(members, &fps, &stamps),
            repos: rel_strings(dest, &report.repos),
            gpgkeys: rel_strings(dest, &report.gpgkeys),
            files: report.files,
            bytes: report.bytes,
        };
        record.save(staging.path())?;
        std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| MediaError::io(staging.path(), e))?;
        staging.install(dest)
    })();
    if let Err(e) = result {
        remove_empty(&created);
        return Err(e);
    }
    Ok(report)
}

fn source_records(members: &[Medium], fps: &[String], stamps: &[String]) -> Vec<SourceRecord> {
    members
        .iter()
        .zip(fps.iter().zip(stamps))
        .map(|(m, (fp, st))| SourceRecord {
            path: m.path.clone(),
            fingerprint: fp.clone(),
            discno: m.info.discno.clone(),
            description: m.info.description.clone(),
            stamp: st.clone(),
        })
        .collect()
}

/// Writes `<dir>/<distname>-<arch>-netboot-compute.toml` unless it exists (never overwrites).
fn write_starter_spec(
    dir: &Path,
    r: &CopyReport,
    custom_path: bool,
) -> Result<Option<PathBuf>, MediaError> {
    use std::io::Write;
    let name = format!("{}-{}-netboot-compute", r.distname, r.arch);
    let path = dir.join(format!("{name}.toml"));
    let pkgdir = if custom_path {
        r.dest.display().to_string()
    } else {
        format!("media:{}/{}", r.distname, r.arch)
    };
    let text = format!(
        "# Starter spec written by `osimage copycds` for {desc} ({media}).\n\
         # Edit freely: copycds never overwrites this file.\n\
         [osimage]\n\
         name = {name:?}\n\
         osvers = {distname:?}\n\
         arch = {arch:?}\n\
         profile = \"compute\"\n\
         provmethod = \"netboot\"\n\
         \n\
         [repos]\n\
         pkgdir = [{pkgdir:?}]\n\
         \n\
         [packages]\n\
         install = [\"@core\", \"kernel\"]\n",
        desc = if r.description.is_empty() {
            &r.distname
        } else {
            &r.description
        },
        media = r
            .media
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        distname = r.distname,
        arch = r.arch,
    );
    std::fs::create_dir_all(dir).map_err(|e| MediaError::io(dir, e))?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes())
                .map_err(|e| MediaError::io(&path, e))?;
            Ok(Some(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(MediaError::io(&path, e)),
    }
}

/// Resolves a media reference (`rocky9.4/x86_64`, optionally prefixed `media:`) against the
/// store. Errors when that media was not imported (completely) yet.
pub fn resolve_media_ref(store: &Path, r: &str) -> Result<PathBuf, MediaError> {
    let rel = r.strip_prefix("media:").unwrap_or(r).trim_matches('/');
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.len() < 2
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(MediaError::BadReference(r.to_string()));
    }
    let path = super::absolute(store).join(rel);
    if !path.join(RECORD_FILE).is_file() {
        return Err(MediaError::NotImported {
            reference: rel.to_string(),
            path,
            store: store.to_path_buf(),
        });
    }
    Ok(path)
}

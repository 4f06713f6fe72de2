//! Writing repodata (`osimage createrepo`): primary, filelists and other (`.xml.gz`, sha256,
//! unique file names) plus comps, and `repomd.xml` — the layout createrepo_c writes, so dnf and
//! `createrepo_c --update` accept it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use quick_xml::escape::escape;
use rayon::prelude::*;

use super::{RepoError, io_err, scan, xml::digest_hex};
use crate::rpm::{Dep, PackageMeta};

const PRIMARY_NS: &str = r#"xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm""#;

/// Is `f` listed in primary.xml (createrepo's rule: `/etc/*`, `*bin/*`, `/usr/lib/sendmail`)?
pub fn is_primary_file(f: &str) -> bool {
    f.starts_with("/etc/") || f.contains("bin/") || f == "/usr/lib/sendmail"
}

fn deps_xml(out: &mut String, tag: &str, deps: &[Dep]) {
    if deps.is_empty() {
        return;
    }
    let _ = writeln!(out, "    <rpm:{tag}>");
    for d in deps {
        let _ = write!(out, "      <rpm:entry name=\"{}\"", escape(d.name.as_str()));
        if let (Some(flags), Some(evr)) = (d.flags.to_repodata(), &d.evr) {
            let _ = write!(
                out,
                " flags=\"{flags}\" epoch=\"{}\" ver=\"{}\"",
                evr.epoch,
                escape(evr.version.as_str())
            );
            if !evr.release.is_empty() {
                let _ = write!(out, " rel=\"{}\"", escape(evr.release.as_str()));
            }
        }
        if d.pre {
            out.push_str(" pre=\"1\"");
        }
        out.push_str("/>\n");
    }
    let _ = writeln!(out, "    </rpm:{tag}>");
}

/// Requires as createrepo_c writes them: requires on the package's own primary files and
/// requires identical to one of its own provides are dropped, and of the `libc.so.6*` requires
/// only the highest (`libc.so.6(GLIBC_x)`) is kept.
pub fn repodata_requires(p: &PackageMeta) -> Vec<Dep> {
    // `libc.so.6(GLIBC_2.2.5)(64bit)` → "2.2.5"; `libc.so.6()(64bit)` → "" (lowest).
    let libc_key = |n: &str| -> Option<String> {
        let rest = n.strip_prefix("libc.so.6")?;
        Some(match rest.split_once("(GLIBC_") {
            Some((_, v)) => v.split(')').next().unwrap_or("").to_string(),
            None => String::new(),
        })
    };
    let mut out: Vec<Dep> = Vec::new();
    let mut libc: Option<&Dep> = None;
    for d in &p.requires {
        if d.name.starts_with('/') && is_primary_file(&d.name) && p.files.contains(&d.name) {
            continue;
        }
        // a plain require the package provides itself, identically
        if !d.pre
            && p.provides
                .iter()
                .any(|pr| pr.name == d.name && pr.flags == d.flags && pr.evr == d.evr)
        {
            continue;
        }
        if let Some(k) = libc_key(&d.name) {
            let better = match libc {
                None => true,
                Some(cur) => {
                    let ck = libc_key(&cur.name).unwrap_or_default();
                    crate::rpm::evr::vercmp(&k, &ck).is_gt() || (ck.is_empty() && !k.is_empty())
                }
            };
            if better {
                libc = Some(d);
            }
            continue;
        }
        out.push(d.clone());
    }
    out.extend(libc.cloned());
    out
}

fn version_xml(p: &PackageMeta) -> String {
    format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        p.epoch,
        escape(p.version.as_str()),
        escape(p.release.as_str())
    )
}

fn file_xml(out: &mut String, p: &PackageMeta, f: &str) {
    let kind = if p.dirs.iter().any(|d| d == f) {
        " type=\"dir\""
    } else if p.ghosts.iter().any(|g| g == f) {
        " type=\"ghost\""
    } else {
        ""
    };
    let _ = writeln!(out, "    <file{kind}>{}</file>", escape(f));
}

fn primary_xml(pkgs: &[(PackageMeta, u64)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata {PRIMARY_NS} packages=\"{}\">\n",
        pkgs.len()
    );
    for (p, mtime) in pkgs {
        let _ = write!(
            s,
            "<package type=\"rpm\">\n  <name>{}</name>\n  <arch>{}</arch>\n  {}\n  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>\n  <summary>{}</summary>\n  <description>{}</description>\n  <packager></packager>\n  <url></url>\n  <time file=\"{mtime}\" build=\"{}\"/>\n  <size package=\"{}\" installed=\"{}\" archive=\"0\"/>\n  <location href=\"{}\"/>\n  <format>\n    <rpm:license></rpm:license>\n    <rpm:vendor></rpm:vendor>\n    <rpm:group>Unspecified</rpm:group>\n    <rpm:buildhost></rpm:buildhost>\n    <rpm:sourcerpm>{}</rpm:sourcerpm>\n    <rpm:header-range start=\"{}\" end=\"{}\"/>\n",
            escape(p.name.as_str()),
            escape(p.arch.as_str()),
            version_xml(p),
            p.sha256,
            escape(p.summary.as_str()),
            escape(p.summary.as_str()),
            p.build_time,
            p.size,
            p.installed_size,
            escape(p.location.as_str()),
            escape(p.sourcerpm.as_str()),
            p.header_range.0,
            p.header_range.1,
        );
        for (tag, deps) in [
            ("provides", &p.provides),
            ("requires", &repodata_requires(p)),
            ("conflicts", &p.conflicts),
            ("obsoletes", &p.obsoletes),
            ("suggests", &p.suggests),
            ("enhances", &p.enhances),
            ("recommends", &p.recommends),
            ("supplements", &p.supplements),
        ] {
            deps_xml(&mut s, tag, deps);
        }
        for f in p.files.iter().filter(|f| is_primary_file(f)) {
            file_xml(&mut s, p, f);
        }
        s.push_str("  </format>\n</package>\n");
    }
    s.push_str("</metadata>\n");
    s
}

fn filelists_xml(pkgs: &[(PackageMeta, u64)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{}\">\n",
        pkgs.len()
    );
    for (p, _) in pkgs {
        let _ = writeln!(
            s,
            "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  {}",
            p.sha256,
            escape(p.name.as_str()),
            escape(p.arch.as_str()),
            version_xml(p)
        );
        for f in &p.files {
            file_xml(&mut s, p, f);
        }
        s.push_str("</package>\n");
    }
    s.push_str("</filelists>\n");
    s
}

fn other_xml(pkgs: &[(PackageMeta, u64)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{}\">\n",
        pkgs.len()
    );
    for (p, _) in pkgs {
        let _ = writeln!(
            s,
            "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  {}\n</package>",
            p.sha256,
            escape(p.name.as_str()),
            escape(p.arch.as_str()),
            version_xml(p)
        );
    }
    s.push_str("</otherdata>\n");
    s
}

struct Written {
    kind: &'static str,
    href: String,
    checksum: String,
    open_checksum: Option<String>,
    size: usize,
    open_size: Option<usize>,
}

fn write_md(
    repodata: &Path,
    kind: &'static str,
    base: &str,
    content: &[u8],
    gz: bool,
) -> Result<Written, RepoError> {
    let data = if gz {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(content).map_err(io_err(repodata))?;
        e.finish().map_err(io_err(repodata))?
    } else {
        content.to_vec()
    };
    let checksum = digest_hex("sha256", &data).unwrap_or_default();
    let name = format!("{checksum}-{base}{}", if gz { ".gz" } else { "" });
    let path = repodata.join(&name);
    std::fs::write(&path, &data).map_err(io_err(&path))?;
    Ok(Written {
        kind,
        href: format!("repodata/{name}"),
        checksum,
        open_checksum: gz.then(|| digest_hex("sha256", content).unwrap_or_default()),
        size: data.len(),
        open_size: gz.then_some(content.len()),
    })
}

/// Write repodata for every `.rpm` below `dir` (headers read in parallel), with `comps` as the
/// `group`/`group_gz` entries when given. Old metadata files in `repodata/` are removed.
pub fn createrepo(dir: &Path, comps: Option<&Path>) -> Result<(), RepoError> {
    let files = scan::rpm_files(dir)?;
    let mut pkgs: Vec<(PackageMeta, u64)> = files
        .par_iter()
        .map(|(abs, rel)| {
            let mut m = crate::rpm::read_header(abs)?;
            m.location = rel.clone();
            let mtime = std::fs::metadata(abs)
                .ok()
                .and_then(|md| md.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            Ok((m, mtime))
        })
        .collect::<Result<_, RepoError>>()?;
    pkgs.retain(|(p, _)| p.arch != "src" && p.arch != "nosrc");
    pkgs.sort_by(|a, b| a.0.location.cmp(&b.0.location));
    write_repodata(dir, &pkgs, comps)
}

/// Write `repodata/` under `dir` for already-known packages, each with its file mtime (seconds);
/// used by [`createrepo`] and for metadata-only test universes.
pub fn write_repodata(
    dir: &Path,
    pkgs: &[(PackageMeta, u64)],
    comps: Option<&Path>,
) -> Result<(), RepoError> {
    let repodata = dir.join("repodata");
    std::fs::create_dir_all(&repodata).map_err(io_err(&repodata))?;
    let (p, (f, o)) = rayon::join(
        || primary_xml(pkgs),
        || rayon::join(|| filelists_xml(pkgs), || other_xml(pkgs)),
    );
    let mut written = vec![
        write_md(&repodata, "primary", "primary.xml", p.as_bytes(), true)?,
        write_md(&repodata, "filelists", "filelists.xml", f.as_bytes(), true)?,
        write_md(&repodata, "other", "other.xml", o.as_bytes(), true)?,
    ];
    if let Some(c) = comps {
        let data = std::fs::read(c).map_err(io_err(c))?;
        super::comps::parse_comps(c, &data)?;
        written.push(write_md(&repodata, "group", "comps.xml", &data, false)?);
        written.push(write_md(&repodata, "group_gz", "comps.xml", &data, true)?);
    }
    let revision = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    let mut md = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>{revision}</revision>\n"
    );
    for w in &written {
        let _ = write!(
            md,
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n",
            w.kind, w.checksum
        );
        if let Some(oc) = &w.open_checksum {
            let _ = writeln!(
                md,
                "    <open-checksum type=\"sha256\">{oc}</open-checksum>"
            );
        }
        let _ = write!(
            md,
            "    <location href=\"{}\"/>\n    <timestamp>{revision}</timestamp>\n    <size>{}</size>\n",
            w.href, w.size
        );
        if let Some(os) = w.open_size {
            let _ = writeln!(md, "    <open-size>{os}</open-size>");
        }
        md.push_str("  </data>\n");
    }
    md.push_str("</repomd>\n");
    let tmp = repodata.join(".repomd.xml.tmp");
    std::fs::write(&tmp, md).map_err(io_err(&tmp))?;
    let final_path = repodata.join("repomd.xml");
    std::fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
    let keep: Vec<String> = written
        .iter()
        .map(|w| w.href.trim_start_matches("repodata/").to_string())
        .collect();
    for e in std::fs::read_dir(&repodata)
        .map_err(io_err(&repodata))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "repomd.xml" && !keep.contains(&name) && e.path().is_file() {
            std::fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
        }
    }
    Ok(())
}

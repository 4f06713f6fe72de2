//! Reading repodata XML: `repomd.xml`, `primary.xml`, `filelists.xml` (streaming, quick-xml
//! events; element names are matched by local name so `rpm:` prefixes do not matter).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use sha2::Digest;

use super::RepoError;
use crate::rpm::{Dep, DepFlags, Evr, PackageMeta};

/// One `<data>` entry of `repomd.xml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepomdData {
    /// `type` attribute (`primary`, `filelists`, `group`, `group_gz`, ...).
    pub kind: String,
    /// `location href`.
    pub href: String,
    /// Checksum type (`sha256`, ...).
    pub checksum_type: String,
    /// Checksum of the file as stored.
    pub checksum: String,
    /// Checksum of the decompressed content, when listed.
    pub open_checksum: Option<String>,
}

pub(crate) fn xml_err(path: &Path, reader_pos: u64, e: impl std::fmt::Display) -> RepoError {
    RepoError::Xml {
        path: path.to_path_buf(),
        message: format!("at byte {reader_pos}: {e}"),
    }
}

pub(crate) fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .map(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| a.value.to_string())
        })
}

/// Hash `data` with the named algorithm, hex.
pub fn digest_hex(kind: &str, data: &[u8]) -> Option<String> {
    Some(match kind {
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        _ => return None,
    })
}

/// Decompress by file name suffix (`.gz`, `.zst`, `.xz`, `.bz2`, or plain).
pub fn decompress(path: &Path, data: &[u8]) -> Result<Vec<u8>, RepoError> {
    let name = path.to_string_lossy();
    let mut out = Vec::with_capacity(data.len() * 4);
    let res = if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)
    } else if name.ends_with(".zst") || name.ends_with(".zstd") {
        zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut out))
    } else if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(data).read_to_end(&mut out)
    } else if name.ends_with(".bz2") {
        bzip2::read::MultiBzDecoder::new(data).read_to_end(&mut out)
    } else {
        out.extend_from_slice(data);
        Ok(out.len())
    };
    res.map_err(|e| RepoError::Decompress {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(out)
}

/// Parse `repomd.xml`.
pub fn parse_repomd(path: &Path, data: &[u8]) -> Result<(Vec<RepomdData>, Option<u64>), RepoError> {
    let mut r = Reader::from_reader(data);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut cur: Option<RepomdData> = None;
    let mut text_for: Option<&'static str> = None;
    let mut revision = None;
    let mut in_revision = false;
    let mut saw_root = false;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(path, r.buffer_position(), e))?;
        match ev {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "repomd" => saw_root = true,
                "revision" => in_revision = true,
                "data" => {
                    cur = Some(RepomdData {
                        kind: attr(&e, "type").unwrap_or_default(),
                        ..Default::default()
                    })
                }
                "location" => {
                    if let Some(c) = cur.as_mut() {
                        c.href = attr(&e, "href").unwrap_or_default();
                    }
                }
                "checksum" => {
                    if let Some(c) = cur.as_mut() {
                        c.checksum_type = attr(&e, "type").unwrap_or_default();
                        text_for = Some("checksum");
                    }
                }
                "open-checksum" => text_for = Some("open"),
                _ => {}
            },
            Event::Text(t) => {
                let s = t.xml10_content().trim().to_string();
                if in_revision {
                    revision = s.parse().ok();
                }
                if let (Some(c), Some(which)) = (cur.as_mut(), text_for) {
                    match which {
                        "checksum" => c.checksum = s,
                        _ => c.open_checksum = Some(s),
                    }
                }
            }
            Event::End(e) => {
                text_for = None;
                match e.local_name().as_ref() {
                    "data" => out.extend(cur.take()),
                    "revision" => in_revision = false,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(RepoError::Xml {
            path: path.to_path_buf(),
            message: "no <repomd> element".into(),
        });
    }
    Ok((out, revision))
}

/// Text-collecting helper: concatenates text and entity references of the current element.
#[derive(Default)]
struct TextBuf {
    raw: String,
    active: bool,
}

impl TextBuf {
    fn start(&mut self) {
        self.raw.clear();
        self.active = true;
    }
    fn take(&mut self) -> String {
        self.active = false;
        quick_xml::escape::unescape(&self.raw)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| self.raw.clone())
    }
}

fn dep_from(e: &BytesStart<'_>) -> Dep {
    let name = attr(e, "name").unwrap_or_default();
    let flags = attr(e, "flags")
        .and_then(|f| DepFlags::from_repodata(&f))
        .unwrap_or(DepFlags::ANY);
    let evr = attr(e, "ver").map(|v| {
        let epoch = attr(e, "epoch").and_then(|x| x.parse().ok()).unwrap_or(0);
        Evr::new(epoch, v, attr(e, "rel").unwrap_or_default())
    });
    let pre = matches!(attr(e, "pre").as_deref(), Some("1") | Some("true"));
    Dep::new(name, flags, evr, pre)
}

/// Parse `primary.xml` into packages (file lists hold only what primary lists).
pub fn parse_primary(path: &Path, data: &[u8]) -> Result<Vec<PackageMeta>, RepoError> {
    let mut r = Reader::from_reader(data);
    let mut buf = Vec::new();
    let mut pkgs = Vec::new();
    let mut cur: Option<PackageMeta> = None;
    let mut list: Option<&'static str> = None;
    let mut text = TextBuf::default();
    let mut file_type = String::new();
    let mut checksum_type = String::new();
    let mut depth_ok = false;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(path, r.buffer_position(), e))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let ln = e.local_name();
                let ln = ln.as_ref();
                if ln == "metadata" {
                    depth_ok = true;
                }
                if ln == "package" {
                    cur = Some(PackageMeta::default());
                }
                let Some(p) = cur.as_mut() else {
                    buf.clear();
                    continue;
                };
                match ln {
                    "name" | "arch" | "summary" | "sourcerpm" if !empty => text.start(),
                    "checksum" if !empty => {
                        checksum_type = attr(e, "type").unwrap_or_default();
                        text.start();
                    }
                    "file" if !empty => {
                        file_type = attr(e, "type").unwrap_or_default();
                        text.start();
                    }
                    "version" => {
                        p.epoch = attr(e, "epoch").and_then(|x| x.parse().ok()).unwrap_or(0);
                        p.version = attr(e, "ver").unwrap_or_default();
                        p.release = attr(e, "rel").unwrap_or_default();
                    }
                    "time" => {
                        p.build_time = attr(e, "build").and_then(|x| x.parse().ok()).unwrap_or(0)
                    }
                    "size" => {
                        p.size = attr(e, "package").and_then(|x| x.parse().ok()).unwrap_or(0);
                        p.installed_size = attr(e, "installed")
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(0);
                    }
                    "location" => p.location = attr(e, "href").unwrap_or_default(),
                    "header-range" => {
                        let g = |n: &str| attr(e, n).and_then(|x| x.parse().ok()).unwrap_or(0);
                        p.header_range = (g("start"), g("end"));
                    }
                    "provides" => list = Some("provides"),
                    "requires" => list = Some("requires"),
                    "conflicts" => list = Some("conflicts"),
                    "obsoletes" => list = Some("obsoletes"),
                    "recommends" => list = Some("recommends"),
                    "suggests" => list = Some("suggests"),
                    "supplements" => list = Some("supplements"),
                    "enhances" => list = Some("enhances"),
                    "entry" => {
                        let d = dep_from(e);
                        match list {
                            Some("provides") => p.provides.push(d),
                            Some("requires") => p.requires.push(d),
                            Some("conflicts") => p.conflicts.push(d),
                            Some("obsoletes") => p.obsoletes.push(d),
                            Some("recommends") => p.recommends.push(d),
                            Some("suggests") => p.suggests.push(d),
                            Some("supplements") => p.supplements.push(d),
                            Some("enhances") => p.enhances.push(d),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if text.active => text.raw.push_str(&t.into_inner()),
            Event::CData(t) if text.active => text
                .raw
                .push_str(&quick_xml::escape::escape(t.into_inner())),
            Event::GeneralRef(g) if text.active => {
                text.raw.push('&');
                text.raw.push_str(&g.into_inner());
                text.raw.push(';');
            }
            Event::End(e) => {
                let ln = e.local_name();
                if let Some(p) = cur.as_mut() {
                    match ln.as_ref() {
                        "package" => {
                            if let Some(p) = cur.take() {
                                pkgs.push(p);
                            }
                        }
                        "name" if text.active => p.name = text.take(),
                        "arch" if text.active => p.arch = text.take(),
                        "summary" if text.active => p.summary = text.take(),
                        "sourcerpm" if text.active => p.sourcerpm = text.take(),
                        "checksum" if text.active => {
                            let v = text.take();
                            if checksum_type == "sha256" {
                                p.sha256 = v;
                            } else {
                                p.sha256 = format!("{checksum_type}:{v}");
                            }
                        }
                        "file" if text.active => {
                            let f = text.take();
                            match file_type.as_str() {
                                "dir" => p.dirs.push(f.clone()),
                                "ghost" => p.ghosts.push(f.clone()),
                                _ => {}
                            }
                            p.files.push(f);
                        }
                        "provides" | "requires" | "conflicts" | "obsoletes" | "recommends"
                        | "suggests" | "supplements" | "enhances" => list = None,
                        _ => {}
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if cur.is_some() || !depth_ok {
        return Err(RepoError::Xml {
            path: path.to_path_buf(),
            message: "document ends inside a <package> (truncated?) or has no <metadata>".into(),
        });
    }
    Ok(pkgs)
}

/// Parse `filelists.xml` and merge the file lists into `pkgs` (matched by `pkgid`, the package
/// checksum, then by name/arch/EVR).
pub fn merge_filelists(
    path: &Path,
    data: &[u8],
    pkgs: &mut [PackageMeta],
) -> Result<(), RepoError> {
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::with_capacity(pkgs.len());
    for (i, p) in pkgs.iter().enumerate() {
        let id = p.sha256.rsplit(':').next().unwrap_or("").to_string();
        by_id.entry(id).or_default().push(i);
    }
    let mut r = Reader::from_reader(data);
    let mut buf = Vec::new();
    let mut targets: Vec<usize> = Vec::new();
    let mut files: Vec<(String, String)> = Vec::new();
    let mut text = TextBuf::default();
    let mut file_type = String::new();
    let mut in_pkg = false;
    let mut saw_root = false;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(path, r.buffer_position(), e))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => match e.local_name().as_ref() {
                "filelists" => saw_root = true,
                "package" => {
                    in_pkg = true;
                    let id = attr(e, "pkgid").unwrap_or_default();
                    targets = by_id.get(&id).cloned().unwrap_or_default();
                    files.clear();
                }
                "file" if matches!(ev, Event::Start(_)) => {
                    file_type = attr(e, "type").unwrap_or_default();
                    text.start();
                }
                _ => {}
            },
            Event::Text(t) if text.active => text.raw.push_str(&t.into_inner()),
            Event::GeneralRef(g) if text.active => {
                text.raw.push('&');
                text.raw.push_str(&g.into_inner());
                text.raw.push(';');
            }
            Event::End(e) => match e.local_name().as_ref() {
                "file" if text.active => files.push((text.take(), file_type.clone())),
                "package" => {
                    in_pkg = false;
                    for &i in &targets {
                        let p = &mut pkgs[i];
                        p.files.clear();
                        p.dirs.clear();
                        p.ghosts.clear();
                        for (f, t) in &files {
                            match t.as_str() {
                                "dir" => p.dirs.push(f.clone()),
                                "ghost" => p.ghosts.push(f.clone()),
                                _ => {}
                            }
                            p.files.push(f.clone());
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if in_pkg || !saw_root {
        return Err(RepoError::Xml {
            path: path.to_path_buf(),
            message: "document ends inside a <package> (truncated?) or has no <filelists>".into(),
        });
    }
    Ok(())
}

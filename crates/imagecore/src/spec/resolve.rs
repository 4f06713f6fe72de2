//! Merged layer → [`Spec`]: defaults, path resolution (against the directory of the file that
//! names each path), existence checks and validation.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::raw::{LImage, LKernel, LPack, LPackages, LRepos, Layer, Sect};
use super::*;

const ARCHES: [&str; 7] = [
    "x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "riscv64", "i686",
];

/// Lexical normalisation: drop `.`, apply `..` (no filesystem access).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn invalid(at: &Origin, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        at: at.clone(),
        message: message.into(),
    }
}

/// A path value resolved against the directory of the file it is written in.
fn resolve_path(l: &Located<String>) -> PathBuf {
    let dir = l.origin.file.parent().unwrap_or(Path::new("/"));
    normalize(&dir.join(&l.value))
}

#[derive(Clone, Copy, PartialEq)]
enum Want {
    File,
    Dir,
}

fn existing(l: &Located<String>, what: &str, want: Want) -> Result<Located<PathBuf>, SpecError> {
    if l.value.trim().is_empty() {
        return Err(invalid(&l.origin, format!("{what} is empty; name a path")));
    }
    let path = resolve_path(l);
    let meta = std::fs::metadata(&path).map_err(|source| SpecError::MissingFile {
        at: l.origin.clone(),
        what: what.to_string(),
        path: path.clone(),
        source,
    })?;
    match want {
        Want::Dir if !meta.is_dir() => Err(invalid(
            &l.origin,
            format!(
                "{what} {} is not a directory; name a directory",
                path.display()
            ),
        )),
        Want::File if !meta.is_file() => Err(invalid(
            &l.origin,
            format!(
                "{what} {} is not a regular file; name a file",
                path.display()
            ),
        )),
        _ => Ok(Located::new(path, l.origin.clone())),
    }
}

fn existing_all(
    v: Option<Located<Vec<Located<String>>>>,
    what: &str,
) -> Result<Vec<Located<PathBuf>>, SpecError> {
    v.map(|l| l.value)
        .unwrap_or_default()
        .iter()
        .map(|l| existing(l, what, Want::File))
        .collect()
}

fn string(v: Option<Located<String>>) -> String {
    v.map(|l| l.value).unwrap_or_default()
}

/// A list of single words (no whitespace, no comma).
fn words(v: Option<Located<Vec<Located<String>>>>, what: &str) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::new();
    for l in v.map(|l| l.value).unwrap_or_default() {
        if l.value.is_empty() || l.value.contains(|c: char| c.is_whitespace() || c == ',') {
            return Err(invalid(
                &l.origin,
                format!(
                    "{what} entry {:?} must be one non-empty word; use one array element per item",
                    l.value
                ),
            ));
        }
        out.push(l.value);
    }
    Ok(out)
}

fn required(
    v: Option<Located<String>>,
    sect: &Origin,
    key: &str,
    example: &str,
) -> Result<Located<String>, SpecError> {
    match v {
        Some(l) if !l.value.trim().is_empty() => Ok(l),
        Some(l) => Err(invalid(
            &l.origin,
            format!("{key} is empty; write e.g. {key} = {example:?}"),
        )),
        None => Err(invalid(
            sect,
            format!("[osimage] {key} is missing; add {key} = {example:?}"),
        )),
    }
}

pub(super) fn resolve(layer: Layer, file: PathBuf, files: Vec<PathBuf>) -> Result<Spec, SpecError> {
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let Some(os) = layer.osimage else {
        return Err(invalid(
            &Origin::start_of(&file),
            "no [osimage] section; add [osimage] with name, osvers and arch",
        ));
    };
    let osimage = resolve_osimage(os)?;
    let source = match layer.source {
        Some(s) => {
            let Some(r) = s.v.rootimg else {
                return Err(invalid(
                    &s.origin,
                    "[source] needs rootimg = \"path/to/tree\"",
                ));
            };
            Some(Source {
                rootimg: existing(&r, "source.rootimg", Want::Dir)?,
            })
        }
        None => None,
    };
    if let (Some(src), Some(other)) = (
        &source,
        layer
            .repos
            .as_ref()
            .map(|s| ("[repos]", &s.origin))
            .or(layer.packages.as_ref().map(|s| ("[packages]", &s.origin))),
    ) {
        return Err(invalid(
            &src.rootimg.origin,
            format!(
                "[source] (capture an existing tree) cannot be combined with {} (at {}); \
                 remove one of them",
                other.0, other.1
            ),
        ));
    }
    let repos = layer.repos.map(resolve_repos).transpose()?;
    let packages = match layer.packages {
        Some(p) => Some(resolve_packages(p, repos.as_ref())?),
        None => None,
    };
    if source.is_none() && packages.is_none() {
        return Err(invalid(
            &Origin::start_of(&file),
            "nothing to build: add [source] rootimg = \"tree\" to capture a tree, or [repos] and \
             [packages] to install one",
        ));
    }
    let kernel = layer.kernel.map(resolve_kernel).transpose()?;
    let image = resolve_image(layer.image, &dir, &osimage.name)?;
    let pack = resolve_pack(layer.pack)?;
    Ok(Spec {
        file,
        dir,
        files,
        osimage,
        source,
        repos,
        packages,
        kernel,
        image,
        pack,
    })
}

fn resolve_osimage(s: Sect<super::raw::LOsImage>) -> Result<OsImage, SpecError> {
    let o = s.v;
    let name = required(o.name, &s.origin, "name", "compute")?;
    if name.value.contains(|c: char| c == '/' || c.is_whitespace()) {
        return Err(invalid(&name.origin, "name must not contain '/' or spaces"));
    }
    let osvers = required(o.osvers, &s.origin, "osvers", "rocky9.4")?;
    let arch = required(o.arch, &s.origin, "arch", "x86_64")?;
    if !ARCHES.contains(&arch.value.as_str()) {
        return Err(invalid(
            &arch.origin,
            format!(
                "arch {:?} is not known; use one of {}",
                arch.value,
                ARCHES.join(", ")
            ),
        ));
    }
    let provmethod = o
        .provmethod
        .unwrap_or_else(|| Located::new("netboot".into(), s.origin.clone()));
    if provmethod.value != "netboot" {
        return Err(invalid(
            &provmethod.origin,
            format!(
                "provmethod {:?} is not supported; only \"netboot\" (stateless) images are built",
                provmethod.value
            ),
        ));
    }
    let mut environvar = BTreeMap::new();
    for (k, v) in o.environvar.map(|l| l.value).unwrap_or_default() {
        if !crate::lists::pkglist::valid_var(&k) {
            return Err(invalid(
                &v.origin,
                format!("environvar name {k:?} is not a valid variable name (letters, digits, _)"),
            ));
        }
        environvar.insert(k, v.value);
    }
    Ok(OsImage {
        profile: o
            .profile
            .map(|l| l.value)
            .unwrap_or_else(|| name.value.clone()),
        name: name.value,
        osvers: osvers.value,
        arch: arch.value,
        provmethod: provmethod.value,
        description: string(o.description),
        environvar,
    })
}

fn pkgdir(l: &Located<String>) -> Result<Located<PkgDir>, SpecError> {
    let v = l.value.trim();
    let d = if let Some(m) = v.strip_prefix("media:") {
        if m.is_empty() {
            return Err(invalid(
                &l.origin,
                "media: needs a name, e.g. \"media:rocky9.4/x86_64\"",
            ));
        }
        PkgDir::Media(m.to_string())
    } else if ["http://", "https://", "ftp://"]
        .iter()
        .any(|p| v.starts_with(p))
    {
        PkgDir::Url(v.to_string())
    } else if let Some(p) = v.strip_prefix("file://") {
        PkgDir::Path(normalize(Path::new(p)))
    } else if v.is_empty() {
        return Err(invalid(
            &l.origin,
            "empty pkgdir; name a directory, media:NAME or a URL",
        ));
    } else if v.contains("://") {
        return Err(invalid(
            &l.origin,
            format!("unsupported URL {v:?}; use http, https, ftp or file"),
        ));
    } else {
        PkgDir::Path(resolve_path(l))
    };
    Ok(Located::new(d, l.origin.clone()))
}

fn resolve_repos(s: Sect<LRepos>) -> Result<Repos, SpecError> {
    let r = s.v;
    Ok(Repos {
        pkgdir: r
            .pkgdir
            .map(|l| l.value)
            .unwrap_or_default()
            .iter()
            .map(pkgdir)
            .collect::<Result<_, _>>()?,
        otherpkgdir: r.otherpkgdir.as_ref().map(pkgdir).transpose()?,
        gpgcheck: r.gpgcheck.is_some_and(|l| l.value),
        gpgkeys: existing_all(r.gpgkeys, "gpgkey")?,
    })
}

fn resolve_packages(s: Sect<LPackages>, repos: Option<&Repos>) -> Result<Packages, SpecError> {
    let p = s.v;
    if repos.is_none_or(|r| r.pkgdir.is_empty()) {
        return Err(invalid(
            &s.origin,
            "[packages] needs package directories: add [repos] pkgdir = [\"…\"]",
        ));
    }
    if let Some(o) = &p.otherpkglist
        && !o.value.is_empty()
        && repos.is_none_or(|r| r.otherpkgdir.is_none())
    {
        return Err(invalid(
            &o.origin,
            "otherpkglist needs [repos] otherpkgdir = \"…\"",
        ));
    }
    let scriptlets = match p.scriptlets {
        None => ScriptletPolicy::Run,
        Some(l) => match l.value.as_str() {
            "run" => ScriptletPolicy::Run,
            "skip" => ScriptletPolicy::Skip,
            other => {
                return Err(invalid(
                    &l.origin,
                    format!("scriptlets {other:?}: use \"run\" or \"skip\""),
                ));
            }
        },
    };
    Ok(Packages {
        pkglist: existing_all(p.pkglist, "pkglist")?,
        otherpkglist: existing_all(p.otherpkglist, "otherpkglist")?,
        install: words(p.install, "install")?,
        weak_deps: p.weak_deps.is_some_and(|l| l.value),
        scriptlets,
    })
}

fn resolve_kernel(s: Sect<LKernel>) -> Result<KernelSpec, SpecError> {
    let k = s.v;
    let mut dus = Vec::new();
    for l in k.driverupdatesrc.map(|l| l.value).unwrap_or_default() {
        let (prefix, rest) = match l.value.split_once(':') {
            Some((p @ ("dud" | "rpm"), r)) => (format!("{p}:"), r.to_string()),
            _ => (String::new(), l.value.clone()),
        };
        let f = existing(
            &Located::new(rest, l.origin.clone()),
            "driverupdatesrc",
            Want::File,
        )?;
        dus.push(Located::new(
            format!("{prefix}{}", f.value.display()),
            l.origin,
        ));
    }
    if let Some(r) = &k.rootlimit {
        let v = r.value.trim();
        let num = v.trim_end_matches(['%', 'k', 'K', 'm', 'M', 'g', 'G']);
        if !v.is_empty()
            && (num.is_empty()
                || !num.chars().all(|c| c.is_ascii_digit())
                || v.len() - num.len() > 1)
        {
            return Err(invalid(
                &r.origin,
                format!("rootlimit {v:?}: write a tmpfs size like \"80%\" or \"4G\""),
            ));
        }
    }
    Ok(KernelSpec {
        kerneldir: k
            .kerneldir
            .as_ref()
            .map(|l| existing(l, "kerneldir", Want::Dir))
            .transpose()?,
        kernelver: string(k.kernelver),
        krpmver: string(k.krpmver),
        netdrivers: words(k.netdrivers, "netdrivers")?,
        netdrivers_defaults: k.netdrivers_defaults.is_none_or(|l| l.value),
        driverupdatesrc: dus,
        rootlimit: string(k.rootlimit),
        addkcmdline: string(k.addkcmdline),
    })
}

fn resolve_image(s: Option<Sect<LImage>>, dir: &Path, name: &str) -> Result<Image, SpecError> {
    let i = s.map(|s| s.v).unwrap_or_default();
    let mut postinstall = Vec::new();
    for l in i.postinstall.map(|l| l.value).unwrap_or_default() {
        let base = l.origin.file.parent().unwrap_or(Path::new("/"));
        let e = PostinstallEntry::parse(&l.value, base, &l.origin)?;
        let script = normalize(&e.script);
        let meta = std::fs::metadata(&script).map_err(|source| SpecError::MissingFile {
            at: l.origin.clone(),
            what: "postinstall script".into(),
            path: script.clone(),
            source,
        })?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(invalid(
                &l.origin,
                format!(
                    "postinstall script {} is not an executable file; chmod +x it",
                    script.display()
                ),
            ));
        }
        postinstall.push(Located::new(
            PostinstallEntry {
                script,
                args: e.args,
            },
            l.origin,
        ));
    }
    let permission = i.permission.map(|l| {
        let ok =
            (3..=4).contains(&l.value.len()) && l.value.chars().all(|c| ('0'..='7').contains(&c));
        if ok {
            Ok(l.value)
        } else {
            Err(invalid(
                &l.origin,
                format!("permission {:?}: write octal like \"755\"", l.value),
            ))
        }
    });
    Ok(Image {
        rootimgdir: match &i.rootimgdir {
            Some(l) if !l.value.trim().is_empty() => resolve_path(l),
            _ => dir.join("build").join(name),
        },
        postinstall,
        synclists: existing_all(i.synclists, "synclist")?,
        exlist: existing_all(i.exlist, "exlist")?,
        permission: permission.transpose()?.unwrap_or_else(|| "755".into()),
        nodebootif: string(i.nodebootif),
        otherifce: words(i.otherifce, "otherifce")?,
    })
}

fn resolve_pack(s: Option<Sect<LPack>>) -> Result<Pack, SpecError> {
    let p = s.map(|s| s.v).unwrap_or_default();
    if let Some(m) = &p.method
        && m.value != "cpio"
    {
        return Err(invalid(
            &m.origin,
            format!(
                "pack method {:?} is not supported yet; use \"cpio\"",
                m.value
            ),
        ));
    }
    let compress = match &p.compress {
        None => Compress::Zstd,
        Some(l) => match l.value.as_str() {
            "zstd" => Compress::Zstd,
            "gzip" => Compress::Gzip,
            "xz" => Compress::Xz,
            other => {
                return Err(invalid(
                    &l.origin,
                    format!("compress {other:?}: use \"zstd\", \"gzip\" or \"xz\""),
                ));
            }
        },
    };
    let level = match &p.level {
        None => 3,
        Some(l) => {
            let r = compress.levels();
            match i32::try_from(l.value) {
                Ok(v) if r.contains(&v) => v,
                _ => {
                    return Err(invalid(
                        &l.origin,
                        format!(
                            "level {} is out of range for {}: use {}..={}",
                            l.value,
                            compress.name(),
                            r.start(),
                            r.end()
                        ),
                    ));
                }
            }
        }
    };
    let source_date_epoch = match &p.source_date_epoch {
        None => DEFAULT_SOURCE_DATE_EPOCH,
        Some(l) if l.value >= 0 => l.value,
        Some(l) => {
            return Err(invalid(
                &l.origin,
                "source_date_epoch must be >= 0 (seconds since 1970)",
            ));
        }
    };
    Ok(Pack {
        method: PackMethod::Cpio,
        compress,
        level,
        source_date_epoch,
    })
}

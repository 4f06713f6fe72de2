//! [`Spec::to_toml`]: the fully resolved spec as TOML (absolute paths, every key written).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::*;

impl fmt::Display for PkgDir {
    /// The form a spec writes: a path, `media:NAME` or the URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkgDir::Path(p) => write!(f, "{}", p.display()),
            PkgDir::Media(m) => write!(f, "media:{m}"),
            PkgDir::Url(u) => f.write_str(u),
        }
    }
}

#[derive(Serialize)]
struct Out<'a> {
    osimage: OutOs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<OutSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repos: Option<OutRepos>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packages: Option<OutPackages<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<OutKernel<'a>>,
    image: OutImage<'a>,
    pack: OutPack,
}

#[derive(Serialize)]
struct OutOs<'a> {
    name: &'a str,
    osvers: &'a str,
    arch: &'a str,
    profile: &'a str,
    provmethod: &'a str,
    description: &'a str,
    environvar: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct OutSource {
    rootimg: String,
}

#[derive(Serialize)]
struct OutRepos {
    pkgdir: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    otherpkgdir: Option<String>,
    gpgcheck: bool,
    gpgkeys: Vec<String>,
}

#[derive(Serialize)]
struct OutPackages<'a> {
    pkglist: Vec<String>,
    otherpkglist: Vec<String>,
    install: &'a [String],
    weak_deps: bool,
    scriptlets: &'static str,
}

#[derive(Serialize)]
struct OutKernel<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    kerneldir: Option<String>,
    kernelver: &'a str,
    krpmver: &'a str,
    netdrivers: &'a [String],
    netdrivers_defaults: bool,
    driverupdatesrc: Vec<&'a str>,
    rootlimit: &'a str,
    addkcmdline: &'a str,
}

#[derive(Serialize)]
struct OutImage<'a> {
    rootimgdir: String,
    postinstall: Vec<String>,
    synclists: Vec<String>,
    exlist: Vec<String>,
    permission: &'a str,
    nodebootif: &'a str,
    otherifce: &'a [String],
}

#[derive(Serialize)]
struct OutPack {
    method: &'static str,
    compress: &'static str,
    level: i32,
    source_date_epoch: i64,
}

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn ps(v: &[Located<PathBuf>]) -> Vec<String> {
    v.iter().map(|l| p(&l.value)).collect()
}

pub(super) fn to_toml(s: &Spec) -> String {
    let out = Out {
        osimage: OutOs {
            name: &s.osimage.name,
            osvers: &s.osimage.osvers,
            arch: &s.osimage.arch,
            profile: &s.osimage.profile,
            provmethod: &s.osimage.provmethod,
            description: &s.osimage.description,
            environvar: &s.osimage.environvar,
        },
        source: s.source.as_ref().map(|x| OutSource {
            rootimg: p(&x.rootimg.value),
        }),
        repos: s.repos.as_ref().map(|r| OutRepos {
            pkgdir: r.pkgdir.iter().map(|d| d.value.to_string()).collect(),
            otherpkgdir: r.otherpkgdir.as_ref().map(|d| d.value.to_string()),
            gpgcheck: r.gpgcheck,
            gpgkeys: ps(&r.gpgkeys),
        }),
        packages: s.packages.as_ref().map(|x| OutPackages {
            pkglist: ps(&x.pkglist),
            otherpkglist: ps(&x.otherpkglist),
            install: &x.install,
            weak_deps: x.weak_deps,
            scriptlets: match x.scriptlets {
                ScriptletPolicy::Run => "run",
                ScriptletPolicy::Skip => "skip",
            },
        }),
        kernel: s.kernel.as_ref().map(|k| OutKernel {
            kerneldir: k.kerneldir.as_ref().map(|d| p(&d.value)),
            kernelver: &k.kernelver,
            krpmver: &k.krpmver,
            netdrivers: &k.netdrivers,
            netdrivers_defaults: k.netdrivers_defaults,
            driverupdatesrc: k.driverupdatesrc.iter().map(|d| d.value.as_str()).collect(),
            rootlimit: &k.rootlimit,
            addkcmdline: &k.addkcmdline,
        }),
        image: OutImage {
            rootimgdir: p(&s.image.rootimgdir),
            postinstall: s
                .image
                .postinstall
                .iter()
                .map(|e| e.value.to_line())
                .collect(),
            synclists: ps(&s.image.synclists),
            exlist: ps(&s.image.exlist),
            permission: &s.image.permission,
            nodebootif: &s.image.nodebootif,
            otherifce: &s.image.otherifce,
        },
        pack: OutPack {
            method: match s.pack.method {
                PackMethod::Cpio => "cpio",
            },
            compress: s.pack.compress.name(),
            level: s.pack.level,
            source_date_epoch: s.pack.source_date_epoch,
        },
    };
    let header = format!(
        "# Resolved osimage spec from {} (extends merged, defaults applied).\n",
        s.file.display()
    );
    match toml::to_string(&out) {
        Ok(body) => header + &body,
        Err(e) => format!("# cannot serialise the spec: {e}\n"),
    }
}

//! The per-file layer: each spec file is parsed into all-`Option` structs with spanned values
//! (`deny_unknown_fields`), lifted to [`Located`] values that remember their own file, and
//! merged child-over-parent. Tables merge key by key (deep), arrays and scalars are replaced.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{Located, Origin, SpecError};

/// One spec file's path and text, to turn byte spans into [`Origin`]s.
pub(crate) struct FileCtx {
    pub path: PathBuf,
    pub text: String,
}

impl FileCtx {
    pub fn origin(&self, span: Range<usize>) -> Origin {
        Origin::at_offset(&self.path, &self.text, span.start)
    }

    fn loc<T: Lift>(&self, s: Spanned<T>) -> Located<T::Out> {
        let origin = self.origin(s.span());
        Located::new(s.into_inner().lift(self), origin)
    }
}

/// Raw (spanned) value → located value.
pub(crate) trait Lift {
    type Out;
    fn lift(self, ctx: &FileCtx) -> Self::Out;
}

macro_rules! lift_plain {
    ($($t:ty),*) => {$(
        impl Lift for $t {
            type Out = $t;
            fn lift(self, _: &FileCtx) -> $t { self }
        }
    )*};
}
lift_plain!(String, bool, i64);

impl Lift for Vec<Spanned<String>> {
    type Out = Vec<Located<String>>;
    fn lift(self, ctx: &FileCtx) -> Self::Out {
        self.into_iter().map(|s| ctx.loc(s)).collect()
    }
}

impl Lift for BTreeMap<String, Spanned<String>> {
    type Out = BTreeMap<String, Located<String>>;
    fn lift(self, ctx: &FileCtx) -> Self::Out {
        self.into_iter().map(|(k, v)| (k, ctx.loc(v))).collect()
    }
}

/// How a field present in both child and parent merges (the child's value is `self`).
pub(crate) trait FieldMerge: Sized {
    fn merge_parent(&mut self, _parent: Self) {}
}
impl FieldMerge for Located<String> {}
impl FieldMerge for Located<bool> {}
impl FieldMerge for Located<i64> {}
impl FieldMerge for Located<Vec<Located<String>>> {}
impl FieldMerge for Located<BTreeMap<String, Located<String>>> {
    /// Tables deep-merge: the parent's keys the child does not set are kept.
    fn merge_parent(&mut self, parent: Self) {
        for (k, v) in parent.value {
            self.value.entry(k).or_insert(v);
        }
    }
}

fn merge_field<T: FieldMerge>(child: &mut Option<T>, parent: Option<T>) {
    match (child.as_mut(), parent) {
        (None, p) => *child = p,
        (Some(c), Some(p)) => c.merge_parent(p),
        (Some(_), None) => {}
    }
}

macro_rules! section {
    ($raw:ident => $layer:ident { $($f:ident : $t:ty),* $(,)? }) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $raw {
            $( #[serde(default)] pub $f: Option<Spanned<$t>>, )*
        }

        #[derive(Debug, Default, Clone)]
        pub(crate) struct $layer {
            $( pub $f: Option<Located<<$t as Lift>::Out>>, )*
        }

        impl $raw {
            fn lift(self, ctx: &FileCtx) -> $layer {
                $layer { $( $f: self.$f.map(|s| ctx.loc(s)), )* }
            }
        }

        impl $layer {
            fn merge_parent(&mut self, parent: $layer) {
                $( merge_field(&mut self.$f, parent.$f); )*
            }
        }
    };
}

type Strings = Vec<Spanned<String>>;

section!(RawOsImage => LOsImage {
    name: String, osvers: String, arch: String, profile: String, provmethod: String,
    extends: String, description: String, environvar: BTreeMap<String, Spanned<String>>,
});
section!(RawSource => LSource { rootimg: String });
section!(RawRepos => LRepos {
    pkgdir: Strings, otherpkgdir: String, gpgcheck: bool, gpgkeys: Strings,
});
section!(RawPackages => LPackages {
    pkglist: Strings, otherpkglist: Strings, install: Strings, weak_deps: bool, scriptlets: String,
});
section!(RawKernel => LKernel {
    kerneldir: String, kernelver: String, krpmver: String, netdrivers: Strings,
    netdrivers_defaults: bool, driverupdatesrc: Strings, rootlimit: String, addkcmdline: String,
});
section!(RawImage => LImage {
    rootimgdir: String, postinstall: Strings, synclists: Strings, exlist: Strings,
    permission: String, nodebootif: String, otherifce: Strings,
});
section!(RawPack => LPack { method: String, compress: String, level: i64, source_date_epoch: i64 });

/// A whole spec file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    osimage: Option<Spanned<RawOsImage>>,
    #[serde(default)]
    source: Option<Spanned<RawSource>>,
    #[serde(default)]
    repos: Option<Spanned<RawRepos>>,
    #[serde(default)]
    packages: Option<Spanned<RawPackages>>,
    #[serde(default)]
    kernel: Option<Spanned<RawKernel>>,
    #[serde(default)]
    image: Option<Spanned<RawImage>>,
    #[serde(default)]
    pack: Option<Spanned<RawPack>>,
}

/// A section that is present, with where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Sect<T> {
    pub origin: Origin,
    pub v: T,
}

/// One file (or a merged chain of files) as located values.
#[derive(Debug, Default, Clone)]
pub(crate) struct Layer {
    pub osimage: Option<Sect<LOsImage>>,
    pub source: Option<Sect<LSource>>,
    pub repos: Option<Sect<LRepos>>,
    pub packages: Option<Sect<LPackages>>,
    pub kernel: Option<Sect<LKernel>>,
    pub image: Option<Sect<LImage>>,
    pub pack: Option<Sect<LPack>>,
}

macro_rules! merge_sections {
    ($child:expr, $parent:expr, $($s:ident),*) => {$(
        match ($child.$s.as_mut(), $parent.$s) {
            (None, p) => $child.$s = p,
            (Some(c), Some(p)) => c.v.merge_parent(p.v),
            (Some(_), None) => {}
        }
    )*};
}

impl Layer {
    /// Parse one file's text.
    pub fn parse(path: &Path, text: String) -> Result<Layer, SpecError> {
        let ctx = FileCtx {
            path: path.to_path_buf(),
            text,
        };
        let raw: RawFile = toml::from_str(&ctx.text).map_err(|e| toml_error(&ctx, &e))?;
        macro_rules! lift {
            ($s:ident) => {
                raw.$s.map(|s| Sect {
                    origin: ctx.origin(s.span()),
                    v: s.into_inner().lift(&ctx),
                })
            };
        }
        Ok(Layer {
            osimage: lift!(osimage),
            source: lift!(source),
            repos: lift!(repos),
            packages: lift!(packages),
            kernel: lift!(kernel),
            image: lift!(image),
            pack: lift!(pack),
        })
    }

    /// The `extends` value of this file, if any.
    pub fn extends(&self) -> Option<&Located<String>> {
        self.osimage.as_ref().and_then(|o| o.v.extends.as_ref())
    }

    /// Merge `parent` under `self` (self wins, tables merge key by key).
    pub fn merge_parent(&mut self, parent: Layer) {
        merge_sections!(
            self, parent, osimage, source, repos, packages, kernel, image, pack
        );
    }
}

/// A TOML syntax, unknown-key or type error with its location and advice.
fn toml_error(ctx: &FileCtx, e: &toml::de::Error) -> SpecError {
    let at = match e.span() {
        Some(span) => ctx.origin(span),
        None => Origin::start_of(&ctx.path),
    };
    let msg = e.message().trim_end().replace('\n', " ");
    let advice = if msg.starts_with("unknown field") {
        "remove the key or fix its spelling"
    } else if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
        "change the value to the expected type"
    } else {
        "fix the TOML syntax there"
    };
    SpecError::Toml {
        at,
        message: format!("{msg}; {advice}"),
    }
}

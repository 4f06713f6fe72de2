//! Reading kernel modules: decompression (`.ko.xz`, `.ko.zst`, `.ko.gz`) and the `.modinfo`
//! section (`depends=`, `softdep=`, `firmware=`), the data `depmod`/`modinfo` use.

use std::io::Read;
use std::path::Path;

use object::{Object, ObjectSection};

use super::BootError;

/// The compression suffixes a module file may carry, longest first.
pub(crate) const MODULE_SUFFIXES: [&str; 4] = [".ko.zst", ".ko.xz", ".ko.gz", ".ko"];

/// The module name of a file name (`virtio_net.ko.xz` -> `virtio_net`, `-` -> `_`), or `None`
/// when it is not a module file.
pub(crate) fn module_name(file_name: &str) -> Option<String> {
    MODULE_SUFFIXES
        .iter()
        .find_map(|s| file_name.strip_suffix(s))
        .filter(|n| !n.is_empty())
        .map(normalize)
}

/// Module names treat `-` and `_` alike; we use `_`.
pub(crate) fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Strip the compression suffix: `a/b.ko.xz` -> `a/b.ko`.
pub(crate) fn uncompressed_rel(rel: &str) -> String {
    for s in [".zst", ".xz", ".gz"] {
        if let Some(base) = rel.strip_suffix(s)
            && base.ends_with(".ko")
        {
            return base.to_string();
        }
    }
    rel.to_string()
}

/// Read a module file and decompress it according to its suffix.
pub(crate) fn read_module(path: &Path) -> Result<Vec<u8>, BootError> {
    let raw = std::fs::read(path).map_err(|e| BootError::io(path, e))?;
    let name = path.to_string_lossy();
    let err = |m: String| BootError::Module {
        path: path.to_path_buf(),
        message: m,
    };
    if name.ends_with(".ko.xz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        liblzma::read::XzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| err(format!("xz: {e}")))?;
        Ok(out)
    } else if name.ends_with(".ko.zst") {
        zstd::stream::decode_all(&raw[..]).map_err(|e| err(format!("zstd: {e}")))
    } else if name.ends_with(".ko.gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| err(format!("gzip: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The fields of a module's `.modinfo` section that the closure needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ModInfo {
    /// `depends=`: hard dependencies (module names).
    pub depends: Vec<String>,
    /// `softdep=` `pre:` modules.
    pub pre: Vec<String>,
    /// `softdep=` `post:` modules.
    pub post: Vec<String>,
    /// `firmware=` file names, relative to `/lib/firmware`.
    pub firmware: Vec<String>,
    /// `alias=` patterns.
    pub alias: Vec<String>,
}

/// Parse the `.modinfo` section of a (decompressed) module.
pub(crate) fn modinfo(path: &Path, data: &[u8]) -> Result<ModInfo, BootError> {
    let file = object::File::parse(data).map_err(|e| BootError::Module {
        path: path.to_path_buf(),
        message: format!("not an ELF object: {e}"),
    })?;
    let mut info = ModInfo::default();
    let Some(section) = file.section_by_name(".modinfo") else {
        return Ok(info);
    };
    let bytes = section.data().map_err(|e| BootError::Module {
        path: path.to_path_buf(),
        message: format!(".modinfo: {e}"),
    })?;
    for field in bytes.split(|b| *b == 0) {
        let Ok(field) = std::str::from_utf8(field) else {
            continue;
        };
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "depends" => info
                .depends
                .extend(value.split(',').filter(|s| !s.is_empty()).map(normalize)),
            "softdep" => parse_softdep(value, &mut info.pre, &mut info.post),
            "firmware" => info.firmware.push(value.to_string()),
            "alias" => info.alias.push(value.to_string()),
            _ => {}
        }
    }
    Ok(info)
}

/// `pre: a b post: c` (the `softdep` syntax of modinfo and modprobe.d).
pub(crate) fn parse_softdep(value: &str, pre: &mut Vec<String>, post: &mut Vec<String>) {
    let mut cur: Option<&mut Vec<String>> = None;
    for word in value.split_whitespace() {
        match word {
            "pre:" => cur = Some(&mut *pre),
            "post:" => cur = Some(&mut *post),
            w => {
                if let Some(list) = cur.as_deref_mut() {
                    list.push(normalize(w));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(module_name("virtio_net.ko").as_deref(), Some("virtio_net"));
        assert_eq!(
            module_name("nf-conntrack.ko.xz").as_deref(),
            Some("nf_conntrack")
        );
        assert_eq!(module_name("x.ko.zst").as_deref(), Some("x"));
        assert_eq!(module_name("modules.dep"), None);
        assert_eq!(module_name(".ko"), None);
        assert_eq!(uncompressed_rel("kernel/a/b.ko.xz"), "kernel/a/b.ko");
        assert_eq!(uncompressed_rel("kernel/a/b.ko"), "kernel/a/b.ko");
    }

    #[test]
    fn softdeps() {
        let (mut pre, mut post) = (Vec::new(), Vec::new());
        parse_softdep("pre: crc32c-generic  post: foo bar", &mut pre, &mut post);
        assert_eq!(pre, vec!["crc32c_generic"]);
        assert_eq!(post, vec!["foo", "bar"]);
    }
}

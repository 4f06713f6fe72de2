//! A package opened for installation: its verified header and its file table.

use std::collections::HashMap;
use std::path::Path;

use rpm::{FileFlags, IndexTag};

use super::InstallError;
use crate::rpm::payload::RpmFile;

/// One file entry of a package header.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// Path as packaged, absolute ("/usr/bin/x").
    pub path: String,
    /// Root-relative path (validated: no `.`/`..` components).
    pub rel: String,
    /// Full st_mode (type + permission bits).
    pub mode: u32,
    /// Owner name.
    pub user: String,
    /// Group name.
    pub group: String,
    /// mtime (seconds).
    pub mtime: u32,
    /// RPMFILE_* flags.
    pub flags: FileFlags,
    /// Symlink target (symlinks only).
    pub linkto: String,
    /// Capabilities text, if any.
    pub caps: Option<String>,
    /// File digest (hex), empty for non-regular files.
    pub digest: String,
    /// Inode number within the package (hardlink sets share it).
    pub inode: u32,
    /// File colour (multilib).
    pub color: u32,
    /// Size in bytes (regular files: content size).
    pub size: u64,
}

impl FileInfo {
    /// File type bits.
    pub fn ftype(&self) -> u32 {
        self.mode & 0o170000
    }
    /// True for %ghost entries.
    pub fn is_ghost(&self) -> bool {
        self.flags.contains(FileFlags::GHOST)
    }
}

/// S_IFDIR
pub const S_IFDIR: u32 = 0o040000;
/// S_IFREG
pub const S_IFREG: u32 = 0o100000;
/// S_IFLNK
pub const S_IFLNK: u32 = 0o120000;

/// A package ready to be unpacked.
pub struct Pkg {
    /// The RPM file with its parsed headers.
    pub rpm: RpmFile,
    /// Package name.
    pub name: String,
    /// name-[epoch:]version-release.arch
    pub nevra: String,
    /// Files in header order.
    pub files: Vec<FileInfo>,
    /// Packaged path → index in `files`.
    pub index: HashMap<String, usize>,
}

fn bad(path: &Path, message: impl Into<String>) -> InstallError {
    InstallError::Package {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl Pkg {
    /// Open `path`, check its header digest and load its file table.
    pub fn load(path: &Path) -> Result<Pkg, InstallError> {
        Pkg::load_checked(path, None)
    }

    /// [`Pkg::load`], first checking the package's OpenPGP header signature against `keys`
    /// when given (`gpgcheck`), before its header digest, so that a tampered package is
    /// reported with the key whose signature no longer verifies.
    pub fn load_checked(
        path: &Path,
        keys: Option<&super::gpg::Keyring>,
    ) -> Result<Pkg, InstallError> {
        let rpm = crate::rpm::payload::RpmFile::open(path)?;
        if let Some(k) = keys {
            k.check(&rpm)?;
        }
        rpm.verify_header()?;
        let h = &rpm.meta;
        let name = h
            .get_name()
            .map_err(|e| bad(path, format!("no name: {e}")))?
            .to_string();
        let epoch = h.get_epoch().ok();
        let version = h.get_version().unwrap_or("");
        let release = h.get_release().unwrap_or("");
        let arch = if h.is_source_package() {
            return Err(bad(
                path,
                "is a source package; only binary packages can be installed",
            ));
        } else {
            h.get_arch().unwrap_or("noarch")
        };
        let nevra = crate::rpm::header::nevra(&name, epoch.unwrap_or(0), version, release, arch);
        let entries = h
            .get_file_entries()
            .map_err(|e| bad(path, format!("file list: {e}")))?;
        let inodes = h
            .header
            .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILEINODES)
            .unwrap_or_default();
        let colors = h
            .header
            .get_entry_data_as_u32_array(IndexTag::RPMTAG_FILECOLORS)
            .unwrap_or_default();
        let mut files: Vec<FileInfo> = Vec::with_capacity(entries.len());
        let mut index = HashMap::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let p = e.path().to_string_lossy().into_owned();
            let rel = super::safepath::package_rel(&p).ok_or_else(|| {
                bad(
                    path,
                    format!("unsafe file name '{p}' in the header; refusing the package"),
                )
            })?;
            index.insert(p.clone(), i);
            files.push(FileInfo {
                path: p,
                rel,
                mode: u32::from(e.mode().raw_mode()),
                user: e.user().to_string(),
                group: e.group().to_string(),
                mtime: u32::from(e.modified_at()),
                flags: e.flags(),
                linkto: e.linkto().unwrap_or("").to_string(),
                caps: e.caps().filter(|c| !c.is_empty()).map(str::to_string),
                digest: e
                    .digest()
                    .map(|d| d.as_hex().to_string())
                    .unwrap_or_default(),
                inode: inodes.get(i).copied().unwrap_or(i as u32 + 1),
                color: colors.get(i).copied().unwrap_or(0),
                size: e.size() as u64,
            });
        }
        if files.is_empty() {
            files = legacy_files(&rpm).map_err(|m| bad(path, m))?;
            for (i, f) in files.iter().enumerate() {
                index.insert(f.path.clone(), i);
            }
        }
        Ok(Pkg {
            rpm,
            name,
            nevra,
            files,
            index,
        })
    }
}

/// File table of old (v3-era) packages that list `OLDFILENAMES` instead of dir/base names.
fn legacy_files(rpm: &RpmFile) -> Result<Vec<FileInfo>, String> {
    let h = super::rawheader::RawHeader::parse_file(&rpm.header_blob)
        .ok_or_else(|| "unreadable header".to_string())?;
    raw_files(&h)
}

/// NEVRA and file table of an installed package's header blob (rpmdb form).
pub fn installed_files(blob: &[u8]) -> Option<(String, Vec<FileInfo>)> {
    let h = super::rawheader::RawHeader::parse(blob)?;
    let s = |t: u32| h.strings(t).into_iter().next().unwrap_or_default();
    let nevra = format!("{}-{}-{}.{}", s(1000), s(1001), s(1002), s(1022));
    Some((nevra, raw_files(&h).ok()?))
}

/// File table from raw header arrays.
fn raw_files(h: &super::rawheader::RawHeader<'_>) -> Result<Vec<FileInfo>, String> {
    let names = h.file_paths();
    let modes = h.u16s(1030);
    let users = h.strings(1039);
    let groups = h.strings(1040);
    let mtimes = h.u32s(1034);
    let flags = h.u32s(1037);
    let links = h.strings(1036);
    let digests = h.strings(1035);
    let inodes = h.u32s(1096);
    let sizes = h.u32s(1028);
    let colors = h.u32s(1140);
    let mut v = Vec::with_capacity(names.len());
    for (i, p) in names.into_iter().enumerate() {
        let rel = super::safepath::package_rel(&p)
            .ok_or_else(|| format!("unsafe file name '{p}' in the header; refusing the package"))?;
        v.push(FileInfo {
            rel,
            mode: u32::from(modes.get(i).copied().unwrap_or(0o100644)),
            user: users.get(i).cloned().unwrap_or_else(|| "root".into()),
            group: groups.get(i).cloned().unwrap_or_else(|| "root".into()),
            mtime: mtimes.get(i).copied().unwrap_or(0),
            flags: FileFlags::from_bits_retain(flags.get(i).copied().unwrap_or(0)),
            linkto: links.get(i).cloned().unwrap_or_default(),
            caps: None,
            digest: digests.get(i).cloned().unwrap_or_default(),
            inode: inodes.get(i).copied().unwrap_or(i as u32 + 1),
            color: colors.get(i).copied().unwrap_or(0),
            size: u64::from(sizes.get(i).copied().unwrap_or(0)),
            path: p,
        });
    }
    Ok(v)
}

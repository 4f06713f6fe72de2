//! Phase 2 (sequential, transaction order): move staged files into the root and apply the
//! header's metadata: owners (by name, against the image's passwd/group), mode after chown,
//! capabilities, mtimes (directories last, deepest first), hardlink sets, `%config` handling.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use rpm::FileFlags;

use super::InstallError;
use super::package::{FileInfo, Pkg, S_IFDIR, S_IFLNK, S_IFREG};
use super::safepath;
use super::stage::Staged;
use super::users::IdMaps;

/// Places files of one package into the root.
pub struct Placer<'a> {
    root: &'a Path,
    ids: &'a IdMaps,
    warnings: &'a mut Vec<String>,
    dirs: HashMap<String, PathBuf>,
    placed: Vec<(PathBuf, crate::hash::Hash)>,
    old: Option<&'a HashMap<String, String>>,
}

fn split(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

/// The digest of the file at `path` in the algorithm of a header digest of `hex_len` hex
/// characters (32: md5, else sha256).
pub(crate) fn file_digest(path: &Path, hex_len: usize) -> io::Result<String> {
    use sha2::Digest;
    let data = std::fs::read(path)?;
    Ok(match hex_len {
        32 => hex::encode(md5::Md5::digest(&data)),
        _ => hex::encode(sha2::Sha256::digest(&data)),
    })
}

impl<'a> Placer<'a> {
    /// A placer for `root` with the owner tables `ids`.
    pub fn new(root: &'a Path, ids: &'a IdMaps, warnings: &'a mut Vec<String>) -> Self {
        Placer {
            root,
            ids,
            warnings,
            dirs: HashMap::new(),
            placed: Vec::new(),
            old: None,
        }
    }

    /// An upgrade: `old` maps the paths of the packages being replaced to their header
    /// digests, for rpm's `%config` rules: an on-disk file unchanged from the old package is
    /// replaced; a modified one is kept as it is when the old and new digests are equal, else
    /// saved as `.rpmsave` (or, with `%config(noreplace)`, the new one is created as
    /// `.rpmnew`).
    pub fn replacing(mut self, old: &'a HashMap<String, String>) -> Self {
        self.old = Some(old);
        self
    }

    /// The regular files placed (real paths inside the root) with their content blobs, when
    /// staging knew them (installs with a store).
    pub fn into_placed(self) -> Vec<(PathBuf, crate::hash::Hash)> {
        self.placed
    }

    fn io(&self, rel: &str) -> impl Fn(io::Error) -> InstallError + '_ {
        let p = self.root.join(rel);
        move |source| InstallError::Io {
            path: p.clone(),
            source,
        }
    }

    fn parent(&mut self, rel_dir: &str) -> Result<PathBuf, InstallError> {
        if let Some(p) = self.dirs.get(rel_dir) {
            return Ok(p.clone());
        }
        let mut created = Vec::new();
        let p = safepath::ensure_dir(self.root, rel_dir, &mut created).map_err(|source| {
            InstallError::Io {
                path: self.root.join(rel_dir),
                source,
            }
        })?;
        self.dirs.insert(rel_dir.to_string(), p.clone());
        Ok(p)
    }

    /// Place every file of `pkg` (staged in `st`).
    pub fn place(
        &mut self,
        pkg: &Pkg,
        st: &Staged,
        skip: &std::collections::HashSet<usize>,
    ) -> Result<(), InstallError> {
        // Hardlink sets: regular, non-ghost files sharing an inode number.
        let mut first_of_inode: HashMap<u32, usize> = HashMap::new();
        let mut data_of_inode: HashMap<u32, usize> = HashMap::new();
        let mut inode_count: HashMap<u32, usize> = HashMap::new();
        for (i, f) in pkg.files.iter().enumerate() {
            if f.ftype() == S_IFREG && !f.is_ghost() {
                *inode_count.entry(f.inode).or_default() += 1;
                if st.has_data[i] {
                    data_of_inode.insert(f.inode, i);
                }
            }
        }
        let mut warned: Vec<String> = Vec::new();
        for (i, f) in pkg.files.iter().enumerate() {
            if f.is_ghost() {
                continue; // rpm creates nothing for %ghost, it only owns the path
            }
            let (pdir, base) = split(&f.rel);
            let parent = self.parent(pdir)?;
            let dest = parent.join(base);
            // Unknown owner/group: root, with a warning, and the matching setuid/setgid bit
            // dropped (rpm does the same).
            let mut mode = f.mode;
            let uid = match self.ids.uid(&f.user) {
                Some(u) => u,
                None => {
                    let w = format!("user {} does not exist - using root", f.user);
                    if !warned.contains(&w) {
                        warned.push(w);
                    }
                    mode &= !0o4000;
                    0
                }
            };
            let gid = match self.ids.gid(&f.group) {
                Some(g) => g,
                None => {
                    let w = format!("group {} does not exist - using root", f.group);
                    if !warned.contains(&w) {
                        warned.push(w);
                    }
                    mode &= !0o2000;
                    0
                }
            };
            if skip.contains(&i) {
                continue; // identical file already placed by an earlier package (rpm skips it)
            }
            let fm = FileInfo { mode, ..f.clone() };
            let f = &fm;
            match f.ftype() {
                S_IFDIR => {
                    match std::fs::symlink_metadata(&dest) {
                        Ok(md) if md.is_dir() => {}
                        Ok(md) if md.file_type().is_symlink() => {
                            // usrmerge: /lib -> usr/lib. Keep the link when it leads to a dir.
                            let real = safepath::resolve(self.root, &f.rel, true)
                                .map_err(self.io(&f.rel))?;
                            if std::fs::metadata(&real)
                                .map(|m| m.is_dir())
                                .unwrap_or(false)
                            {
                                continue;
                            }
                            return Err(self.conflict_on_disk(
                                pkg,
                                f,
                                "a symlink not leading to a directory",
                            ));
                        }
                        Ok(_) => {
                            return Err(self.conflict_on_disk(pkg, f, "a non-directory"));
                        }
                        Err(_) => std::fs::create_dir(&dest).map_err(self.io(&f.rel))?,
                    }
                    self.dirs.insert(f.rel.clone(), dest.clone());
                    self.meta(f, &dest, uid, gid)?;
                }
                S_IFREG => {
                    if let Ok(md) = std::fs::symlink_metadata(&dest)
                        && md.is_dir()
                    {
                        return Err(self.conflict_on_disk(pkg, f, "a directory"));
                    }
                    if let Some(&first) = first_of_inode.get(&f.inode) {
                        let first_dest = safepath::resolve(self.root, &pkg.files[first].rel, false)
                            .map_err(self.io(&f.rel))?;
                        let _ = std::fs::remove_file(&dest);
                        std::fs::hard_link(&first_dest, &dest).map_err(self.io(&f.rel))?;
                        if let Some(b) = self
                            .placed
                            .iter()
                            .rev()
                            .find(|(p, _)| *p == first_dest)
                            .map(|(_, b)| *b)
                        {
                            self.placed.push((dest.clone(), b));
                        }
                        continue;
                    }
                    if inode_count.get(&f.inode).copied().unwrap_or(0) > 1 {
                        first_of_inode.insert(f.inode, i);
                    }
                    let data_idx = data_of_inode.get(&f.inode).copied();
                    let mut target = dest.clone();
                    if f.flags.contains(FileFlags::CONFIG)
                        && !f.digest.is_empty()
                        && let Ok(md) = std::fs::symlink_metadata(&dest)
                        && md.is_file()
                    {
                        let disk = file_digest(&dest, f.digest.len()).ok();
                        let old = self.old.and_then(|o| o.get(&f.path));
                        if old == Some(&f.digest)
                            && disk.as_ref() != old
                            && inode_count.get(&f.inode) <= Some(&1)
                        {
                            // modified on disk but unchanged between versions: the file on
                            // disk stays as it is (an unmodified one is replaced, as rpm does)
                            continue;
                        }
                        if disk.as_deref() != Some(f.digest.as_str()) && disk.as_ref() != old {
                            let suffix = if old.is_some() { "rpmsave" } else { "rpmorig" };
                            if f.flags.contains(FileFlags::NOREPLACE) {
                                target = parent.join(format!("{base}.rpmnew"));
                                self.warnings
                                    .push(format!("{} created as {}.rpmnew", f.path, f.path));
                            } else {
                                let save = parent.join(format!("{base}.{suffix}"));
                                std::fs::rename(&dest, &save).map_err(self.io(&f.rel))?;
                                self.warnings
                                    .push(format!("{} saved as {}.{suffix}", f.path, f.path));
                            }
                        }
                    }
                    let blob = match data_idx {
                        Some(d) => {
                            std::fs::rename(st.data_path(d), &target).map_err(self.io(&f.rel))?;
                            st.blobs.get(d).copied().flatten()
                        }
                        None => {
                            let _ = std::fs::remove_file(&target);
                            std::fs::File::create(&target).map_err(self.io(&f.rel))?;
                            (!st.blobs.is_empty()).then(|| crate::hash::Hash::of(b""))
                        }
                    };
                    self.meta(f, &target, uid, gid)?;
                    if let Some(b) = blob {
                        self.placed.push((target.clone(), b));
                    }
                }
                S_IFLNK => {
                    if let Ok(md) = std::fs::symlink_metadata(&dest) {
                        if md.is_dir() {
                            return Err(self.conflict_on_disk(pkg, f, "a directory"));
                        }
                        std::fs::remove_file(&dest).map_err(self.io(&f.rel))?;
                    }
                    std::os::unix::fs::symlink(&f.linkto, &dest).map_err(self.io(&f.rel))?;
                    self.meta(f, &dest, uid, gid)?;
                }
                _ => {
                    if let Ok(md) = std::fs::symlink_metadata(&dest) {
                        if md.is_dir() {
                            return Err(self.conflict_on_disk(pkg, f, "a directory"));
                        }
                        std::fs::remove_file(&dest).map_err(self.io(&f.rel))?;
                    }
                    let (maj, min) = st.rdev[i];
                    let ft = rustix::fs::FileType::from_raw_mode(f.mode);
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        &dest,
                        ft,
                        rustix::fs::Mode::from_raw_mode(f.mode & 0o7777),
                        rustix::fs::makedev(maj, min),
                    )
                    .map_err(|e| InstallError::Io {
                        path: dest.clone(),
                        source: e.into(),
                    })?;
                    self.meta(f, &dest, uid, gid)?;
                }
            }
        }
        for w in warned {
            self.warnings.push(format!("{}: {w}", pkg.nevra));
        }
        Ok(())
    }

    fn conflict_on_disk(&self, pkg: &Pkg, f: &FileInfo, what: &str) -> InstallError {
        InstallError::Package {
            path: pkg.rpm.path.clone(),
            message: format!(
                "cannot install {}: {what} is in the way in the image",
                f.path
            ),
        }
    }

    fn meta(&self, f: &FileInfo, p: &Path, uid: u32, gid: u32) -> Result<(), InstallError> {
        let err = |source: io::Error| InstallError::Io {
            path: p.to_path_buf(),
            source,
        };
        // Unprivileged (ScriptletMode::Skip) installs cannot chown; the scan then records what
        // the building user owns as root's (see tree::walk).
        if rustix::process::geteuid().is_root() {
            lchown(p, Some(uid), Some(gid)).map_err(err)?;
        }
        let is_link = f.ftype() == S_IFLNK;
        if !is_link {
            // After chown: chown clears setuid/setgid.
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(f.mode & 0o7777))
                .map_err(err)?;
        }
        if let Some(text) = &f.caps
            && f.ftype() == S_IFREG
        {
            let v = super::caps::encode_caps(text).map_err(|m| InstallError::Package {
                path: PathBuf::from(&f.path),
                message: format!("file capabilities '{text}': {m}"),
            })?;
            if let Some(v) = v {
                if rustix::process::geteuid().is_root() {
                    xattr::set(p, "security.capability", &v).map_err(err)?;
                } else {
                    tracing::warn!(
                        "{}: file capabilities '{text}' need root; not set in this unprivileged build",
                        f.path
                    );
                }
            }
        }
        {
            // Directories too, right away, as rpm does: files created in them later bump
            // the directory mtime to the install time, exactly like with `rpm -i`.
            let ft = FileTime::from_unix_time(i64::from(f.mtime), 0);
            filetime::set_symlink_file_times(p, ft, ft).map_err(err)?;
        }
        Ok(())
    }
}

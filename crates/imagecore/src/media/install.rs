//! Staging directories and the atomic swap of a finished copy into place.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::MediaError;

/// Prefix of staging and retired directories beside a destination.
const STAGING_TAG: &str = ".osimage-staging-";

/// A staging directory next to the destination; removed on drop unless installed.
pub(crate) struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Staging {
    /// Creates `<parent>/.osimage-staging-<leaf>-<pid>-<n>` for `dest`, first removing stale
    /// staging dirs of `dest` left by killed runs (whose pid is gone).
    pub(crate) fn new(dest: &Path) -> Result<Staging, MediaError> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let leaf = dest
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::create_dir_all(parent).map_err(|e| MediaError::io(parent, e))?;
        clean_stale(parent, &leaf);
        let pid = std::process::id();
        for n in 0..1000u32 {
            let p = parent.join(format!("{STAGING_TAG}{leaf}-{pid}-{n}"));
            match std::fs::create_dir(&p) {
                Ok(()) => {
                    return Ok(Staging {
                        path: p,
                        keep: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(MediaError::io(&p, e)),
            }
        }
        Err(MediaError::io(
            parent,
            std::io::Error::other("cannot create a staging directory"),
        ))
    }

    /// The staging directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the staged tree to `dest`, atomically replacing an existing `dest` (the old tree is
    /// removed afterwards).
    pub(crate) fn install(mut self, dest: &Path) -> Result<(), MediaError> {
        let exists = std::fs::symlink_metadata(dest).is_ok();
        if !exists {
            std::fs::rename(&self.path, dest).map_err(|e| MediaError::io(dest, e))?;
            self.keep = true;
            return Ok(());
        }
        let is_dir = std::fs::symlink_metadata(dest)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_dir {
            // renameat2(RENAME_EXCHANGE): the destination is never missing or half-written.
            let swapped = rustix::fs::renameat_with(
                rustix::fs::CWD,
                &self.path,
                rustix::fs::CWD,
                dest,
                rustix::fs::RenameFlags::EXCHANGE,
            );
            if swapped.is_ok() {
                // self.path now holds the old tree, removed on drop.
                return Ok(());
            }
        }
        // Fallback: move the old one aside, then rename.
        let old = self.path.with_extension("old");
        std::fs::rename(dest, &old).map_err(|e| MediaError::io(dest, e))?;
        std::fs::rename(&self.path, dest).map_err(|e| MediaError::io(dest, e))?;
        remove_tree(&old);
        self.keep = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            remove_tree(&self.path);
        }
    }
}

/// Removes staging dirs of `leaf` in `parent` whose owning process is gone.
fn clean_stale(parent: &Path, leaf: &str) {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!("{STAGING_TAG}{leaf}-");
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            remove_tree(&e.path());
        }
    }
}

/// Removes a tree even when it holds read-only directories (media trees often do).
pub(crate) fn remove_tree(p: &Path) {
    if std::fs::remove_dir_all(p).is_ok() || std::fs::symlink_metadata(p).is_err() {
        return;
    }
    for e in walkdir::WalkDir::new(p)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_dir() {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
    let _ = std::fs::remove_dir_all(p);
}

/// Removes the directories in `created` (deepest first) if they are empty.
pub(crate) fn remove_empty(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Creates `dir` and its missing parents, returning those it created (outermost first).
pub(crate) fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, MediaError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    for d in &missing {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(MediaError::io(d, e)),
        }
    }
    Ok(missing)
}

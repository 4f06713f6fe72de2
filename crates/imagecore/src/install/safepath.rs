//! Path resolution confined to the image root. Symlinks met on the way are followed the way
//! the kernel would follow them *inside a chroot*: absolute targets restart at the root and
//! `..` cannot climb above it. Every write of the installer goes through these functions, so a
//! package cannot place anything outside the root (traversal names, absolute symlinks, or a
//! symlink planted by an earlier entry and written through later).

use std::io;
use std::path::{Path, PathBuf};

const MAX_LINKS: usize = 40;

/// Check a package path (absolute, as in the header) and return it root-relative. Refuses
/// `.` / `..` components and empty names.
pub fn package_rel(path: &str) -> Option<String> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_prefix("./").unwrap_or(p);
    let mut out = Vec::new();
    for c in p.split('/') {
        match c {
            "" => continue,
            "." | ".." => return None,
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out.join("/"))
}

/// Resolve root-relative `rel` inside `root`, following symlinks on intermediate components
/// (and on the last one when `follow_last`). The result has no symlink in any component that
/// existed at resolution time, and always lies inside `root`.
pub fn resolve(root: &Path, rel: &str, follow_last: bool) -> io::Result<PathBuf> {
    let mut cur: Vec<String> = Vec::new();
    let mut queue: std::collections::VecDeque<String> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    let mut links = 0;
    while let Some(comp) = queue.pop_front() {
        if comp == ".." {
            cur.pop();
            continue;
        }
        let is_last = queue.is_empty();
        let mut cand = root.to_path_buf();
        for c in &cur {
            cand.push(c);
        }
        cand.push(&comp);
        if is_last && !follow_last {
            cur.push(comp);
            break;
        }
        match std::fs::symlink_metadata(&cand) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving /{rel}"
                    )));
                }
                let target = std::fs::read_link(&cand)?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    cur.clear();
                }
                for c in t.split('/').rev() {
                    if !c.is_empty() && c != "." {
                        queue.push_front(c.to_string());
                    }
                }
            }
            _ => cur.push(comp),
        }
    }
    let mut out = root.to_path_buf();
    for c in cur {
        out.push(c);
    }
    Ok(out)
}

/// Make sure the directory `rel_dir` exists inside `root` (creating missing components with mode
/// 0755, like rpm does for unowned parents) and return its real path. Fails when a component
/// exists and is not a directory. `created` receives the directories this call made.
pub fn ensure_dir(root: &Path, rel_dir: &str, created: &mut Vec<PathBuf>) -> io::Result<PathBuf> {
    let mut prefix = String::new();
    let mut real = root.to_path_buf();
    for comp in rel_dir.split('/').filter(|c| !c.is_empty()) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(comp);
        real = resolve(root, &prefix, true)?;
        match std::fs::symlink_metadata(&real) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("/{prefix} exists and is not a directory"),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // `real` has no symlink in its existing prefix and lies inside the root (a
                // dangling in-root symlink may point at a not-yet-existing chain).
                use std::os::unix::fs::PermissionsExt;
                let mut missing = vec![real.clone()];
                let mut up = real.parent();
                while let Some(u) = up {
                    if u.exists() || !u.starts_with(root) {
                        break;
                    }
                    missing.push(u.to_path_buf());
                    up = u.parent();
                }
                for d in missing.into_iter().rev() {
                    std::fs::create_dir(&d)?;
                    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
                    created.push(d);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        assert_eq!(
            resolve(root, "lib/modules", true).unwrap(),
            root.join("usr/lib/modules")
        );
        assert_eq!(resolve(root, "abs/x", true).unwrap(), root.join("etc/x"));
        assert_eq!(
            resolve(root, "up/etc/passwd", true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(resolve(root, "lib", false).unwrap(), root.join("lib"));
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        assert!(resolve(root, "loop1/x", true).is_err());
        assert_eq!(package_rel("/usr/../etc"), None);
        assert_eq!(package_rel("./usr/bin/x").as_deref(), Some("usr/bin/x"));
    }
}

//! Owner and group names resolved against the image's own `/etc/passwd` and `/etc/group`.

use std::collections::HashMap;
use std::path::Path;

/// Name → id tables read from an image root.
#[derive(Default)]
pub struct IdMaps {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

fn parse(text: &str) -> HashMap<String, u32> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let mut it = line.split(':');
        let (Some(name), Some(_), Some(id)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if let Ok(id) = id.trim().parse::<u32>() {
            m.entry(name.to_string()).or_insert(id);
        }
    }
    m
}

impl IdMaps {
    /// Read `root/etc/passwd` and `root/etc/group` (missing files give empty tables).
    pub fn load(root: &Path) -> IdMaps {
        // These are read through the resolved path: /etc may be a symlink inside the root.
        let read = |rel: &str| {
            super::safepath::resolve(root, rel, true)
                .ok()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        };
        IdMaps {
            users: parse(&read("etc/passwd")),
            groups: parse(&read("etc/group")),
        }
    }

    /// uid for `name`; `root` is always 0. `None` when unknown.
    pub fn uid(&self, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.users.get(name).copied()
    }

    /// gid for `name`; `root` is always 0. `None` when unknown.
    pub fn gid(&self, name: &str) -> Option<u32> {
        if name == "root" {
            return Some(0);
        }
        self.groups.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let m = parse("root:x:0:0::/root:/bin/sh\nfoo:x:1001:1001::/:/sbin/nologin\nbad\n");
        assert_eq!(m.get("foo"), Some(&1001));
        assert_eq!(m.get("bad"), None);
    }
}

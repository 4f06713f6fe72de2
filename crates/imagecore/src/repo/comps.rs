//! comps (`group` / `group_gz` repodata): groups and environments for `@group` and
//! `@^environment` entries.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};

use super::RepoError;
use super::xml::{attr, xml_err};

/// How a package belongs to a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPkgKind {
    /// Always installed with the group.
    Mandatory,
    /// Installed by default (dnf's `group_package_types = mandatory, default`).
    Default,
    /// Only on request.
    Optional,
    /// Installed when its `requires` package is installed too.
    Conditional,
}

/// One `<packagereq>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPackage {
    /// Package name.
    pub name: String,
    /// Membership kind.
    pub kind: GroupPkgKind,
    /// For conditional packages: the package that triggers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
}

/// A comps group, or an environment (`is_environment`), whose `groups` are its mandatory group
/// ids and `options` its optional ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group id (`core`).
    pub id: String,
    /// Display name (untranslated).
    pub name: String,
    /// True for an `<environment>`.
    #[serde(default)]
    pub is_environment: bool,
    /// Packages (groups only).
    #[serde(default)]
    pub packages: Vec<GroupPackage>,
    /// Member group ids (environments only).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Optional group ids (environments only).
    #[serde(default)]
    pub options: Vec<String>,
}

/// Parse a comps XML document.
pub fn parse_comps(path: &Path, data: &[u8]) -> Result<Vec<Group>, RepoError> {
    let mut r = Reader::from_reader(data);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut cur: Option<Group> = None;
    let mut field: Option<&'static str> = None;
    let mut req_kind = GroupPkgKind::Default;
    let mut req_requires = None;
    let mut in_options = false;
    let mut text = String::new();
    let mut saw_root = false;
    let mut depth = 0usize;
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(path, r.buffer_position(), e))?;
        match ev {
            Event::Start(e) => {
                depth += 1;
                text.clear();
                match e.local_name().as_ref() {
                    "comps" => saw_root = true,
                    "group" => cur = Some(Group::default()),
                    "environment" => {
                        cur = Some(Group {
                            is_environment: true,
                            ..Default::default()
                        })
                    }
                    "id" if depth == 3 => field = Some("id"),
                    "name" if depth == 3 && attr(&e, "lang").is_none() => field = Some("name"),
                    "optionlist" => in_options = true,
                    "groupid" => field = Some("groupid"),
                    "packagereq" => {
                        field = Some("packagereq");
                        req_kind = match attr(&e, "type").as_deref() {
                            Some("mandatory") => GroupPkgKind::Mandatory,
                            Some("optional") => GroupPkgKind::Optional,
                            Some("conditional") => GroupPkgKind::Conditional,
                            _ => GroupPkgKind::Default,
                        };
                        req_requires = attr(&e, "requires");
                    }
                    _ => {}
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(g) => {
                let s = format!(
                    "&{};",
                    String::from_utf8_lossy(&g.into_inner().into_owned().into_bytes())
                );
                text.push_str(
                    &quick_xml::escape::unescape(&s)
                        .map(|c| c.into_owned())
                        .unwrap_or(s),
                );
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let t = text.trim().to_string();
                match (e.local_name().as_ref(), cur.as_mut(), field) {
                    ("group" | "environment", _, _) => out.extend(cur.take()),
                    ("optionlist", _, _) => in_options = false,
                    ("id", Some(g), Some("id")) => g.id = t,
                    ("name", Some(g), Some("name")) => g.name = t,
                    ("groupid", Some(g), Some("groupid")) => {
                        if in_options {
                            g.options.push(t)
                        } else {
                            g.groups.push(t)
                        }
                    }
                    ("packagereq", Some(g), Some("packagereq")) => g.packages.push(GroupPackage {
                        name: t,
                        kind: req_kind,
                        requires: req_requires.take(),
                    }),
                    _ => {}
                }
                field = None;
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root || cur.is_some() {
        return Err(RepoError::Xml {
            path: path.to_path_buf(),
            message: "no <comps> root or document ends inside a group (truncated?)".into(),
        });
    }
    Ok(out)
}

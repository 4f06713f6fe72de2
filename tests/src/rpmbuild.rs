//! Building test RPMs with the real `rpmbuild`: a general spec writer (deps of every kind,
//! files with content/modes/owners, scriptlets), reproducible with `SOURCE_DATE_EPOCH`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One packaged file.
#[derive(Clone, Debug)]
pub struct FileSpec {
    /// Absolute path in the package.
    pub path: String,
    /// Content (for regular files).
    pub content: String,
    /// Mode, e.g. `0644` (None = rpm default).
    pub mode: Option<String>,
    /// Owner user.
    pub user: Option<String>,
    /// Owner group.
    pub group: Option<String>,
    /// A directory instead of a file.
    pub dir: bool,
    /// A symlink to this target instead of a file.
    pub symlink: Option<String>,
}

impl FileSpec {
    /// A regular file with content.
    pub fn file(path: &str, content: &str) -> FileSpec {
        FileSpec {
            path: path.into(),
            content: content.into(),
            mode: None,
            user: None,
            group: None,
            dir: false,
            symlink: None,
        }
    }
    /// A directory.
    pub fn dir(path: &str) -> FileSpec {
        FileSpec {
            dir: true,
            ..FileSpec::file(path, "")
        }
    }
    /// A symlink.
    pub fn symlink(path: &str, target: &str) -> FileSpec {
        FileSpec {
            symlink: Some(target.into()),
            ..FileSpec::file(path, "")
        }
    }
    /// Set mode/owner.
    pub fn attr(mut self, mode: &str, user: &str, group: &str) -> FileSpec {
        self.mode = Some(mode.into());
        self.user = Some(user.into());
        self.group = Some(group.into());
        self
    }
}

/// A package to build. Dependency lines are written verbatim after their tag
/// (`requires: vec!["foo >= 1.0", "(a or b)"]`); `requires_pre` become `Requires(pre):`.
#[derive(Clone, Debug, Default)]
pub struct PkgSpec {
    /// Name.
    pub name: String,
    /// Epoch (None = no Epoch tag).
    pub epoch: Option<u32>,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// `noarch` or `x86_64` etc.
    pub arch: String,
    /// `Requires:`
    pub requires: Vec<String>,
    /// `Requires(pre):`
    pub requires_pre: Vec<String>,
    /// `Provides:`
    pub provides: Vec<String>,
    /// `Conflicts:`
    pub conflicts: Vec<String>,
    /// `Obsoletes:`
    pub obsoletes: Vec<String>,
    /// `Recommends:`
    pub recommends: Vec<String>,
    /// `Suggests:`
    pub suggests: Vec<String>,
    /// `Supplements:`
    pub supplements: Vec<String>,
    /// `Enhances:`
    pub enhances: Vec<String>,
    /// Files.
    pub files: Vec<FileSpec>,
    /// Scriptlets: (`pre`/`post`/`preun`/`postun`/`posttrans`, body).
    pub scripts: Vec<(String, String)>,
}

impl PkgSpec {
    /// A noarch package `name-version-1` with no deps or files.
    pub fn new(name: &str, version: &str) -> PkgSpec {
        PkgSpec {
            name: name.into(),
            version: version.into(),
            release: "1".into(),
            arch: "noarch".into(),
            ..Default::default()
        }
    }
    /// Set the arch.
    pub fn arch(mut self, a: &str) -> Self {
        self.arch = a.into();
        self
    }
    /// Set the release.
    pub fn release(mut self, r: &str) -> Self {
        self.release = r.into();
        self
    }
    /// Set the epoch.
    pub fn epoch(mut self, e: u32) -> Self {
        self.epoch = Some(e);
        self
    }
    /// Add Requires.
    pub fn req(mut self, r: &str) -> Self {
        self.requires.push(r.into());
        self
    }
    /// Add Requires(pre).
    pub fn req_pre(mut self, r: &str) -> Self {
        self.requires_pre.push(r.into());
        self
    }
    /// Add Provides.
    pub fn prov(mut self, r: &str) -> Self {
        self.provides.push(r.into());
        self
    }
    /// Add Conflicts.
    pub fn conflicts(mut self, r: &str) -> Self {
        self.conflicts.push(r.into());
        self
    }
    /// Add Obsoletes.
    pub fn obsoletes(mut self, r: &str) -> Self {
        self.obsoletes.push(r.into());
        self
    }
    /// Add Recommends.
    pub fn recommends(mut self, r: &str) -> Self {
        self.recommends.push(r.into());
        self
    }
    /// Add Supplements.
    pub fn supplements(mut self, r: &str) -> Self {
        self.supplements.push(r.into());
        self
    }
    /// Add a file.
    pub fn file(mut self, f: FileSpec) -> Self {
        self.files.push(f);
        self
    }
    /// Add a scriptlet.
    pub fn script(mut self, which: &str, body: &str) -> Self {
        self.scripts.push((which.into(), body.into()));
        self
    }

    /// The spec file text.
    pub fn spec_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "%define debug_package %{{nil}}\n%define __os_install_post %{{nil}}\n%define _build_id_links none"
        );
        let _ = writeln!(
            s,
            "Name: {}\nVersion: {}\nRelease: {}\nSummary: test package {}\nLicense: MIT",
            self.name, self.version, self.release, self.name
        );
        if let Some(e) = self.epoch {
            let _ = writeln!(s, "Epoch: {e}");
        }
        if self.arch == "noarch" {
            let _ = writeln!(s, "BuildArch: noarch");
        }
        let _ = writeln!(s, "AutoReqProv: no");
        for (tag, list) in [
            ("Requires", &self.requires),
            ("Requires(pre)", &self.requires_pre),
            ("Provides", &self.provides),
            ("Conflicts", &self.conflicts),
            ("Obsoletes", &self.obsoletes),
            ("Recommends", &self.recommends),
            ("Suggests", &self.suggests),
            ("Supplements", &self.supplements),
            ("Enhances", &self.enhances),
        ] {
            for v in list {
                let _ = writeln!(s, "{tag}: {v}");
            }
        }
        let _ = writeln!(
            s,
            "\n%description\ntest package {}\n\n%install\nmkdir -p %{{buildroot}}",
            self.name
        );
        for (i, f) in self.files.iter().enumerate() {
            let parent = Path::new(&f.path)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = writeln!(s, "mkdir -p \"%{{buildroot}}{parent}\"");
            if f.dir {
                let _ = writeln!(s, "mkdir -p \"%{{buildroot}}{}\"", f.path);
            } else if let Some(t) = &f.symlink {
                let _ = writeln!(s, "ln -s '{t}' \"%{{buildroot}}{}\"", f.path);
            } else {
                let _ = writeln!(
                    s,
                    "cat > \"%{{buildroot}}{}\" <<'OSIMAGE_EOF_{i}'\n{}\nOSIMAGE_EOF_{i}",
                    f.path, f.content
                );
            }
        }
        for (which, body) in &self.scripts {
            let _ = writeln!(s, "\n%{which}\n{body}");
        }
        let _ = writeln!(s, "\n%files");
        for f in &self.files {
            let attr = match (&f.mode, &f.user, &f.group) {
                (None, None, None) => String::new(),
                (m, u, g) => format!(
                    "%attr({}, {}, {}) ",
                    m.as_deref().unwrap_or("-"),
                    u.as_deref().unwrap_or("-"),
                    g.as_deref().unwrap_or("-")
                ),
            };
            let dir = if f.dir { "%dir " } else { "" };
            let _ = writeln!(s, "{attr}{dir}\"{}\"", f.path);
        }
        s
    }
}

/// Build `pkgs` into `out` (flat directory of `.rpm` files). One rpmbuild call per package.
pub fn build(pkgs: &[PkgSpec], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let top = tempfile::tempdir()?;
    let mut made = Vec::new();
    for p in pkgs {
        let spec = top
            .path()
            .join(format!("{}-{}-{}.spec", p.name, p.version, p.release));
        std::fs::write(&spec, p.spec_text())?;
        let mut cmd = Command::new("rpmbuild");
        cmd.env("SOURCE_DATE_EPOCH", "1700000000")
            .arg("--quiet")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", top.path().display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", out.display()))
            .arg("--define")
            .arg("_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm")
            .arg("--define")
            .arg("use_source_date_epoch_as_buildtime 1")
            .arg("--define")
            .arg("clamp_mtime_to_source_date_epoch 1");
        if p.arch != "noarch" {
            cmd.arg("--target").arg(&p.arch);
        }
        let o = cmd.arg(&spec).output()?;
        if !o.status.success() {
            anyhow::bail!(
                "rpmbuild {} failed: {}\n--- spec ---\n{}",
                p.name,
                String::from_utf8_lossy(&o.stderr),
                p.spec_text()
            );
        }
        made.push(out.join(format!(
            "{}-{}-{}.{}.rpm",
            p.name, p.version, p.release, p.arch
        )));
    }
    Ok(made)
}

/// Run `createrepo_c` on `dir` (with `-g comps` when given).
pub fn createrepo_c(dir: &Path, comps: Option<&Path>) -> anyhow::Result<()> {
    let mut cmd = Command::new("createrepo_c");
    cmd.arg("--quiet").arg("--no-database");
    if let Some(c) = comps {
        cmd.arg("-g").arg(c);
    }
    let o = cmd.arg(dir).output()?;
    anyhow::ensure!(
        o.status.success(),
        "createrepo_c failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

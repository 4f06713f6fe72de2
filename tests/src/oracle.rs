//! The real resolvers as oracles: `dnf --installroot ... install --assumeno` (transaction only,
//! nothing installed) or a real install, and libsolv's `testsolv` on `repo2solv -F` output.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Options for a dnf run.
#[derive(Clone, Debug, Default)]
pub struct DnfOpts {
    /// `install_weak_deps=True`.
    pub weak_deps: bool,
    /// dnf `excludepkgs`.
    pub excludes: Vec<String>,
}

/// The result of asking dnf: the NVRA set it would install, or its error text.
pub fn dnf_assumeno(
    repos: &[&Path],
    specs: &[&str],
    opts: &DnfOpts,
) -> Result<BTreeSet<String>, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = work.path().join("home");
    let root = work.path().join("root");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(work.path().join("repos.d")).map_err(|e| e.to_string())?;
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n")
        .map_err(|e| e.to_string())?;
    let conf = work.path().join("dnf.conf");
    std::fs::write(
        &conf,
        format!(
            "[main]\ngpgcheck=0\ninstall_weak_deps={}\nkeepcache=False\nbest=False\nskip_if_unavailable=False\nreposdir={}\n",
            if opts.weak_deps { "True" } else { "False" },
            work.path().join("repos.d").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = Command::new("dnf");
    cmd.env("HOME", &home)
        .arg("--assumeno")
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--installroot={}", root.display()))
        .arg("--releasever=9")
        .arg(format!(
            "--setopt=install_weak_deps={}",
            if opts.weak_deps { "True" } else { "False" }
        ));
    for (i, r) in repos.iter().enumerate() {
        let name = format!("r{i}");
        cmd.arg(format!("--repofrompath={name},file://{}", r.display()))
            .arg(format!("--repo={name}"))
            .arg(format!("--setopt={name}.gpgcheck=0"));
    }
    if !opts.excludes.is_empty() {
        cmd.arg(format!("--exclude={}", opts.excludes.join(",")));
    }
    cmd.arg("install").args(specs);
    let o = cmd.output().map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    // --assumeno exits 1 after printing the transaction; a resolution failure prints "Error:".
    if err.contains("Error:") || out.contains("Error:") || err.contains("No match for argument") {
        return Err(format!("{out}\n{err}"));
    }
    Ok(parse_transaction(&out))
}

/// Parse dnf's transaction table into `name-version-release.arch` strings.
pub fn parse_transaction(out: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let mut in_table = false;
    let mut pending: Option<String> = None;
    for line in out.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            // Section headers: only Installing/Upgrading sections are part of the result;
            // "Skipping packages with broken dependencies" and the like are not.
            in_table = line.starts_with("Installing") || line.starts_with("Upgrading");
            pending = None;
            continue;
        }
        if line.starts_with("Transaction Summary") {
            break;
        }
        if !in_table || !line.starts_with(' ') {
            continue;
        }
        let mut f: Vec<String> = line.split_whitespace().map(String::from).collect();
        if let Some(name) = pending.take() {
            f.insert(0, name);
        }
        if f.len() == 1 {
            // dnf wraps long names onto their own line.
            pending = f.pop();
            continue;
        }
        if f.len() >= 3 {
            let (name, arch, evr) = (&f[0], &f[1], &f[2]);
            let vr = evr.split_once(':').map(|(_, r)| r).unwrap_or(evr);
            set.insert(format!("{name}-{vr}.{arch}"));
        }
    }
    set
}

/// libsolv's answer via `testsolv` (`-r` result lines), as NVRAs; `Err` holds the problem text.
pub fn testsolv(
    repos: &[&Path],
    specs: &[&str],
    weak_deps: bool,
) -> Result<BTreeSet<String>, String> {
    let w = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut case = String::from("repo system 0 empty\n");
    for (i, r) in repos.iter().enumerate() {
        let solv = w.path().join(format!("r{i}.solv"));
        let o = Command::new("repo2solv")
            .arg("-F")
            .arg("-o")
            .arg(&solv)
            .arg(r)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("repo2solv: {}", String::from_utf8_lossy(&o.stderr)));
        }
        case.push_str(&format!("repo r{i} 0 solv r{i}.solv\n"));
    }
    case.push_str("system x86_64 rpm system\n");
    if !weak_deps {
        case.push_str("solverflags ignorerecommended\n");
    }
    case.push_str("job multiversion provides installonlypkg(kernel)\n");
    for s in specs {
        case.push_str(&format!("job install provides {s}\n"));
    }
    std::fs::write(w.path().join("case.t"), case).map_err(|e| e.to_string())?;
    let o = Command::new("testsolv")
        .arg("-r")
        .arg("case.t")
        .current_dir(w.path())
        .output()
        .map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut set = BTreeSet::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"problem") || line.contains("nothing provides") {
            return Err(out.clone());
        }
        if f.len() >= 3 && f[0] == "result" && f[1] == "transaction," {
            continue;
        }
        // "install NEVRA@repo" (or "result transaction,problems <inline>" header lines).
        if let Some(i) = f.iter().position(|x| *x == "install")
            && let Some(nevra) = f.get(i + 1)
        {
            let nevra = nevra.split('@').next().unwrap_or("");
            set.insert(strip_epoch(nevra));
        }
    }
    Ok(set)
}

fn strip_epoch(nevra: &str) -> String {
    // name-E:V-R.A → name-V-R.A
    if let Some(colon) = nevra.find(':') {
        let dash = nevra[..colon].rfind('-').unwrap_or(0);
        format!("{}{}", &nevra[..=dash], &nevra[colon + 1..])
    } else {
        nevra.to_string()
    }
}

/// A private HOME (rpm macros: `%_dbpath /var/lib/rpm`) and dnf.conf for oracle runs; the
/// returned `dnf` command already has `-y`, the config, the installroot and `--releasever`.
fn dnf_command(work: &Path, root: &Path, main_conf: &str) -> Result<Command, String> {
    let home = work.join("home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(work.join("repos.d")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n")
        .map_err(|e| e.to_string())?;
    let conf = work.join("dnf.conf");
    std::fs::write(
        &conf,
        format!(
            "[main]\ngpgcheck=0\n{main_conf}reposdir={}\n",
            work.join("repos.d").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = Command::new("dnf");
    cmd.env("HOME", &home)
        .arg("-y")
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--installroot={}", root.display()))
        .arg("--releasever=9");
    Ok(cmd)
}

/// Run a prepared dnf command, then `rpm -qa` of the root (NVRAs).
fn run_then_qa(mut cmd: Command, root: &Path) -> Result<BTreeSet<String>, String> {
    let o = cmd.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let q = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .arg("--dbpath")
        .arg("/var/lib/rpm")
        .arg("-qa")
        .arg("--qf")
        .arg("%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n")
        .output()
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(String::from)
        .collect())
}

/// A real `dnf install` into `root`; returns `rpm -qa` of the root (NVRAs).
pub fn dnf_install(
    repos: &[&Path],
    root: &Path,
    specs: &[&str],
    opts: &DnfOpts,
) -> Result<BTreeSet<String>, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let weak = if opts.weak_deps { "True" } else { "False" };
    let mut cmd = dnf_command(
        work.path(),
        root,
        &format!("install_weak_deps={weak}\nkeepcache=False\nbest=False\n"),
    )?;
    for (i, r) in repos.iter().enumerate() {
        cmd.arg(format!("--repofrompath=r{i},file://{}", r.display()))
            .arg(format!("--repo=r{i}"))
            .arg(format!("--setopt=r{i}.gpgcheck=0"));
    }
    cmd.arg("install").args(specs);
    run_then_qa(cmd, root)
}

/// A real `dnf remove` in `root` (after [`dnf_install`]); returns `rpm -qa` of the root.
pub fn dnf_remove(root: &Path, names: &[&str]) -> Result<BTreeSet<String>, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut cmd = dnf_command(work.path(), root, "")?;
    cmd.arg("--disablerepo=*").arg("remove").args(names);
    run_then_qa(cmd, root)
}

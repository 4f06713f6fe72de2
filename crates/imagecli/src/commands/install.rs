//! `osimage install`: install RPM files into a directory (like `rpm -i --root`), or erase
//! installed packages from it.

use std::path::PathBuf;

use imagecore::install::{InstallOptions, ScriptletMode, erase_packages, install_packages};

/// Arguments of `osimage install`.
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Image root directory (created if missing).
    #[arg(long)]
    pub root: PathBuf,
    /// Repository directory to resolve package names from (repeatable).
    #[arg(long = "repo")]
    pub repos: Vec<PathBuf>,
    /// Do not check dependencies.
    #[arg(long)]
    pub nodeps: bool,
    /// Skip scriptlets (warns per package that has any).
    #[arg(long)]
    pub noscripts: bool,
    /// rpmdb directory inside the image (default: detected).
    #[arg(long)]
    pub dbpath: Option<String>,
    /// Unpack threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Check every package's OpenPGP signature against this ASCII-armored public key file
    /// (repeatable; like `gpgcheck = true` with `gpgkeys`): unsigned or wrongly signed
    /// packages are refused before anything is unpacked.
    #[arg(long = "gpgkey", value_name = "FILE")]
    pub gpgkeys: Vec<PathBuf>,
    /// Erase the named packages instead of installing.
    #[arg(long)]
    pub erase: bool,
    /// RPM files in transaction order (or package names with --erase / --repo).
    #[arg(required = true)]
    pub packages: Vec<String>,
}

/// Run `osimage install`.
pub fn run(args: InstallArgs) -> anyhow::Result<i32> {
    let opts = InstallOptions {
        scriptlets: if args.noscripts {
            ScriptletMode::Skip
        } else {
            ScriptletMode::Run
        },
        dbpath: args.dbpath.clone(),
        nodeps: args.nodeps,
        jobs: args.jobs,
        gpgkeys: (!args.gpgkeys.is_empty()).then(|| args.gpgkeys.clone()),
    };
    if args.erase {
        erase_packages(&args.root, &args.packages, &opts)?;
        println!("erased: {}", args.packages.join(" "));
        return Ok(0);
    }
    let (files, names): (Vec<String>, Vec<String>) =
        args.packages.into_iter().partition(|p| p.ends_with(".rpm"));
    if !names.is_empty() || !args.repos.is_empty() {
        anyhow::bail!(
            "not implemented: installing package names ({}) from --repo needs the repository solver; pass .rpm files",
            names.join(" ")
        );
    }
    let files: Vec<PathBuf> = files.into_iter().map(PathBuf::from).collect();
    let report = install_packages(&args.root, &files, &opts)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for p in &report.packages {
        println!("installed: {p}");
    }
    println!(
        "{} packages, {} scriptlets run",
        report.packages.len(),
        report.scriptlets_run
    );
    Ok(0)
}

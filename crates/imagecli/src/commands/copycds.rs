//! `osimage copycds`: import distro media (ISO, block device, extracted directory).

use std::path::PathBuf;

use imagecore::media::{CopyOptions, copycds};

/// Import install media into the media store, as xCAT's copycds does (without mounting).
#[derive(Debug, clap::Args)]
pub struct CopycdsArgs {
    /// ISO files, block devices (e.g. /dev/cdrom) or extracted directories.
    #[arg(required = true, value_name = "MEDIA")]
    pub media: Vec<PathBuf>,
    /// Distro name to use instead of the detected one (e.g. rhels9.4-supp).
    #[arg(
        short = 'n',
        long = "name",
        visible_alias = "osver",
        value_name = "DISTNAME"
    )]
    pub name: Option<String>,
    /// Architecture; must match the media.
    #[arg(short = 'a', long = "arch")]
    pub arch: Option<String>,
    /// Destination directory instead of STORE/DISTNAME/ARCH.
    #[arg(short = 'p', long = "path", value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The media store (xCAT users: /install).
    #[arg(
        long,
        env = "OSIMAGE_STORE",
        default_value = "install",
        value_name = "DIR"
    )]
    pub store: PathBuf,
    /// Only print DISTNAME, ARCH and DISCNO; copy nothing.
    #[arg(short = 'i', long = "inspection")]
    pub inspection: bool,
    /// Refuse to overwrite a destination that holds different media.
    #[arg(short = 'w', long = "nonoverwrite")]
    pub nonoverwrite: bool,
    /// Do not write a starter spec.
    #[arg(short = 'o', long = "noosimage")]
    pub noosimage: bool,
    /// Directory for the starter spec DISTNAME-ARCH-netboot-compute.toml.
    #[arg(long, default_value = "specs", value_name = "DIR")]
    pub spec_dir: PathBuf,
    /// No progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: CopycdsArgs) -> anyhow::Result<i32> {
    let opts = CopyOptions {
        name: args.name,
        arch: args.arch,
        path: args.path,
        store: args.store,
        inspection: args.inspection,
        nonoverwrite: args.nonoverwrite,
        noosimage: args.noosimage,
        spec_dir: Some(args.spec_dir),
    };
    let bar = if args.quiet || args.inspection {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "copying {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let reports = copycds(&args.media, &opts, &progress)?;
    bar.finish_and_clear();
    for r in &reports {
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        if r.inspected {
            println!("DISTNAME:{}", r.distname);
            println!("ARCH:{}", r.arch);
            println!("DISCNO:{}", r.discno);
            continue;
        }
        if r.skipped_same {
            println!(
                "{}: already holds this media (fingerprint {}), nothing to do",
                r.dest.display(),
                &r.fingerprint[..12.min(r.fingerprint.len())]
            );
        } else {
            println!(
                "copied {} ({} {}): {} files, {} bytes to {} (fingerprint {})",
                r.media
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                r.distname,
                r.arch,
                r.files,
                r.bytes,
                r.dest.display(),
                &r.fingerprint[..12.min(r.fingerprint.len())]
            );
        }
        for repo in &r.repos {
            println!("repo: {}", repo.display());
        }
        for k in &r.gpgkeys {
            println!("gpgkey: {}", k.display());
        }
        if let Some(s) = &r.starter_spec {
            println!("starter spec: {}", s.display());
        }
    }
    Ok(0)
}

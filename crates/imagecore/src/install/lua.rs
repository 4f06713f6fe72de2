//! Lua scriptlets (`-p <lua>`): rpm runs them in its own embedded interpreter, so osimage runs
//! them through the image's own rpm, chrooted like every scriptlet: the body goes to a file in
//! the scratch directory and a driver file sets `arg` as rpm 4.18 does (`arg[1] = "<lua>"`,
//! then the scriptlet's numeric arguments as Lua numbers; the chunk also receives
//! `(options, arg)` as `...`), provides `rpm.next_file()` for file triggers, and is run with
//! `rpm --eval '%{lua: dofile(driver)}'`. A Lua error makes rpm exit non-zero: the scriptlet
//! failed. Without an rpm in the image, the scriptlet cannot run: that is an error naming the
//! package and the scriptlet, never a silent skip.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::InstallError;
use super::package::Pkg;
use super::scriptlet::Script;

/// Where an image's rpm binary may be.
const RPM_PATHS: [&str; 2] = ["/usr/bin/rpm", "/bin/rpm"];

/// The image's rpm binary (absolute path inside the image), if it has one.
pub(crate) fn image_rpm(root: &Path) -> Option<&'static str> {
    RPM_PATHS.into_iter().find(|p| {
        super::safepath::resolve(root, p.trim_start_matches('/'), true)
            .and_then(std::fs::metadata)
            .is_ok_and(|m| m.is_file())
    })
}

/// Can Lua scriptlets of this transaction run: the image has an rpm, or the transaction
/// installs one (it is then in place once its package has been placed).
pub(crate) fn runnable(root: &Path, pkgs: &[Pkg]) -> bool {
    image_rpm(root).is_some()
        || pkgs
            .iter()
            .any(|p| RPM_PATHS.iter().any(|r| p.index.contains_key(*r)))
}

/// The error for a Lua scriptlet when the image has no rpm to run it.
pub(crate) fn no_rpm(nevra: &str, which: &str) -> InstallError {
    InstallError::Scriptlet {
        package: nevra.to_string(),
        which: which.to_string(),
        message: "is a Lua (<lua>) scriptlet, which only rpm's embedded interpreter runs, and \
                  the image has no /usr/bin/rpm (yet) to run it with; install rpm in an \
                  earlier pass, or set scriptlets = \"skip\" to install without scriptlets"
            .into(),
    }
}

/// A Lua long-bracket literal holding `s` verbatim.
fn long_string(s: &str) -> String {
    let mut level = 0;
    while s.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let eq = "=".repeat(level);
    // a newline right after the opening bracket is dropped by Lua: add one so a leading
    // newline of `s` survives
    format!("[{eq}[\n{s}]{eq}]")
}

/// Write the body and driver files into `<root>/<scratch_rel>` and return the command line to
/// run in the chroot and the files written (host paths, to remove afterwards).
pub(crate) fn prepare(
    root: &Path,
    scratch_rel: &str,
    rpm: &str,
    script: &Script,
    args: &[String],
    stdin: Option<&str>,
    name: &str,
) -> Result<(Vec<String>, Vec<PathBuf>), InstallError> {
    let dir = root.join(scratch_rel);
    let body_host = dir.join(format!("{name}.lua"));
    let driver_host = dir.join(format!("{name}-driver.lua"));
    let write = |p: &Path, text: &str| {
        std::fs::write(p, text).map_err(|source| InstallError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    write(&body_host, &script.body)?;
    let mut d = String::from("arg = { \"<lua>\"");
    for a in args {
        match a.parse::<i64>() {
            Ok(n) => {
                let _ = write!(d, ", {n}");
            }
            Err(_) => {
                let _ = write!(d, ", {}", long_string(a));
            }
        }
    }
    d.push_str(" }\n");
    if let Some(text) = stdin {
        d.push_str("local files = {");
        for p in text.lines().filter(|l| !l.is_empty()) {
            let _ = write!(d, " {},", long_string(p));
        }
        d.push_str(" }\nlocal i = 0\nrpm.next_file = function() i = i + 1; return files[i] end\n");
    }
    let _ = writeln!(
        d,
        "local chunk = assert(loadfile({}))\nchunk({{}}, arg)",
        long_string(&format!("/{scratch_rel}/{name}.lua"))
    );
    write(&driver_host, &d)?;
    let argv = vec![
        rpm.to_string(),
        "--eval".to_string(),
        format!("%{{lua: dofile(\"/{scratch_rel}/{name}-driver.lua\")}}"),
    ];
    Ok((argv, vec![body_host, driver_host]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_survive_closing_brackets() {
        assert_eq!(long_string("a"), "[[\na]]");
        assert_eq!(long_string("x]]y"), "[=[\nx]]y]=]");
        assert_eq!(long_string("x]]y]=]"), "[==[\nx]]y]=]]==]");
    }

    #[test]
    fn driver_sets_numeric_args_and_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("s")).unwrap();
        let sc = Script {
            tag: "%post".into(),
            prog: vec!["<lua>".into()],
            body: "print(arg[2])".into(),
        };
        let (argv, files) = prepare(
            t.path(),
            "s",
            "/usr/bin/rpm",
            &sc,
            &["1".into(), "2".into()],
            Some("/a\n/b\n"),
            "n",
        )
        .unwrap();
        assert_eq!(argv[0], "/usr/bin/rpm");
        assert!(argv[2].contains("/s/n-driver.lua"), "{argv:?}");
        let d = std::fs::read_to_string(&files[1]).unwrap();
        assert!(d.starts_with("arg = { \"<lua>\", 1, 2 }\n"), "{d}");
        assert!(d.contains("[[\n/a]]") && d.contains("[[\n/b]]"), "{d}");
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "print(arg[2])");
    }
}

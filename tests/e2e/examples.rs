//! The library embedding examples compile (cargo builds them with the test targets) and run.

use std::path::PathBuf;
use std::process::Command;

use osimage_e2e::require;

fn example(name: &str) -> PathBuf {
    let mut p = osimage_e2e::tools::osimage_bin();
    p.pop();
    p.join("examples").join(name)
}

#[test]
fn capture_example_runs() {
    let bin = example("capture");
    require!(
        bin.is_file(),
        format!("{} not built (run cargo test --workspace)", bin.display())
    );
    let t = tempfile::tempdir().unwrap();
    let o = Command::new(&bin).arg(t.path()).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("plan after the build:"), "{out}");
    assert!(
        t.path()
            .join("build/demo-capture/rootimg.cpio.zst")
            .is_file()
    );
}

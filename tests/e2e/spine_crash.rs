//! Crash safety: SIGKILL a build at random points (≥ 10 times) on one cache; the next build must
//! succeed and produce the same bytes as a clean build, and `cache verify` must pass.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use osimage_e2e::spine::{self, osimage};
use osimage_e2e::{tools, trees};

#[test]
fn killed_builds_never_poison_the_cache() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let spec = spine::project(dir);
    // more content so that a build takes long enough to be killed in every stage
    for i in 0..400u64 {
        let p = dir.join(format!("tree/usr/lib/data/d{}/f{i}.bin", i % 20));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, trees::bytes(i + 100, 20_000 + (i as usize % 7) * 9_000)).unwrap();
    }
    let spec_s = spec.to_str().unwrap();

    // reference: a clean build in its own cache
    let t0 = Instant::now();
    let o = osimage(&["build", spec_s, "--cache-dir", "clean"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let clean_time = t0.elapsed();
    let archive = dir.join("out/rootimg.cpio.zst");
    let reference = std::fs::read(&archive).unwrap();
    std::fs::remove_dir_all(dir.join("out")).unwrap();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}, clean build {clean_time:?}");
    let mut x = seed | 1;
    let mut span = (clean_time.as_millis() as u64 * 6 / 10).max(50);
    let script = dir.join("compute.postinstall");
    let original_script = std::fs::read(&script).unwrap();
    let mut killed = 0;
    let mut rounds = 0;
    for round in 0..40 {
        if killed >= 12 {
            break;
        }
        rounds = round + 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(x % span);
        // make every round a real (partial) rebuild: new postinstall text each round, and a
        // new source file every third round so that capture runs again too
        let mut s = original_script.clone();
        s.extend_from_slice(format!("# round {round}\n").as_bytes());
        std::fs::write(&script, s).unwrap();
        if round % 3 == 0 {
            std::fs::write(
                dir.join(format!("tree/etc/round-{round}")),
                round.to_string(),
            )
            .unwrap();
        }
        let mut child = Command::new(tools::osimage_bin())
            .args(["build", spec_s, "--cache-dir", "crashy"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        } else {
            // finished before the kill: aim earlier next time
            span = (span * 2 / 3).max(20);
        }
        let st = child.wait().unwrap();
        eprintln!("round {round}: delay {delay:?}, status {st}");
        // a new build may delete postinstall scratch dirs left on tmpfs; nothing else to do
    }
    assert!(
        killed >= 10,
        "too few builds were actually killed ({killed})"
    );
    std::fs::write(&script, &original_script).unwrap();
    for round in (0..rounds).step_by(3) {
        std::fs::remove_file(dir.join(format!("tree/etc/round-{round}"))).unwrap();
    }
    let o = osimage(&["build", spec_s, "--cache-dir", "crashy"], dir);
    assert!(
        o.status.success(),
        "build after crashes failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        reference,
        "archive differs from a clean build"
    );
    let o = osimage(&["cache", "verify", "--cache-dir", "crashy"], dir);
    assert!(
        o.status.success(),
        "cache verify failed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

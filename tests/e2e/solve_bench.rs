//! Benchmark (not a timed test; run with `--ignored --nocapture`): resolve on a generated
//! 10,000-package repository, ours (cold: parse metadata; warm: index from a serialised blob)
//! against `dnf install --assumeno` on the same repository in the same run.

use std::time::Instant;

use imagecore::repo::{RepoIndex, blob, load_repo};
use imagecore::solve::{PassRequest, SolveRequest, solve};
use osimage_e2e::oracle::{DnfOpts, dnf_assumeno};
use osimage_e2e::universe::{Rng, generate, name, write};

#[test]
#[ignore = "benchmark: cargo test -p imagecli --test e2e solve_bench -- --ignored --nocapture"]
fn bench_10k() {
    let n = 10_000;
    let t = tempfile::tempdir().unwrap();
    let pkgs = generate(n, 42, true);
    write(t.path(), &pkgs).unwrap();
    let mut rng = Rng(4242);
    let specs: Vec<String> = (0..20)
        .map(|_| name(n - 1 - rng.below(n as u64 / 4) as usize))
        .collect();

    let t0 = Instant::now();
    let repo = load_repo(t.path(), "gen").unwrap();
    let cold_parse = t0.elapsed();
    let json = serde_json::to_vec(&repo).unwrap();
    let tj = Instant::now();
    let from_json: RepoIndex = serde_json::from_slice(&json).unwrap();
    let json_load = tj.elapsed();
    drop(from_json);
    // what the repo step caches and a warm resolve loads
    let bin = blob::encode(std::slice::from_ref(&repo));
    let t1 = Instant::now();
    let warm: RepoIndex = blob::decode(&bin).unwrap().remove(0);
    let warm_load = t1.elapsed();
    assert_eq!(warm, repo);
    let req = SolveRequest {
        repos: std::slice::from_ref(&warm),
        arch: "x86_64".into(),
        passes: vec![PassRequest {
            install: specs.clone(),
            remove: vec![],
        }],
        weak_deps: false,
        multilib: false,
        excludes: vec![],
    };
    let t2 = Instant::now();
    let res = solve(&req);
    let solve_time = t2.elapsed();
    let ours_set: Option<std::collections::BTreeSet<String>> = res
        .as_ref()
        .ok()
        .map(|l| l.all_packages().map(|p| p.nvra()).collect());
    let ours = res.as_ref().map(|l| l.all_packages().count());
    let spec_refs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let t3 = Instant::now();
    let dnf = dnf_assumeno(&[t.path()], &spec_refs, &DnfOpts::default());
    let dnf_time = t3.elapsed();
    let warm_total = warm_load + solve_time;
    let same_set = ours_set.as_ref() == dnf.as_ref().ok();
    eprintln!(
        "(the JSON form of the same index: {:.1} MB, loads in {:.3}s)",
        json.len() as f64 / 1e6,
        json_load.as_secs_f64()
    );
    eprintln!(
        "10k packages ({} versions): cold parse {:.3}s; warm index load {:.3}s + solve {:.3}s = {:.3}s; ours -> {:?} pkgs; dnf --assumeno {:.3}s -> {:?} pkgs; dnf/ours(warm) = {:.1}x; blob {:.1} MB; same set as dnf: {same_set}",
        pkgs.len(),
        cold_parse.as_secs_f64(),
        warm_load.as_secs_f64(),
        solve_time.as_secs_f64(),
        warm_total.as_secs_f64(),
        ours,
        dnf_time.as_secs_f64(),
        dnf.as_ref()
            .map(|s| s.len())
            .map_err(|e| e.lines().last().unwrap_or("").to_string()),
        dnf_time.as_secs_f64() / warm_total.as_secs_f64(),
        bin.len() as f64 / 1e6
    );
    assert!(same_set, "our package set differs from dnf's");
}

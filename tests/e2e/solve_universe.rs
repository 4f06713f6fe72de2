//! Generated universes of hundreds of packages: our package set against dnf's on each.
//!
//! Two classes: "plain" universes (`>=` and unversioned requires, file requires, conflicts), as
//! real distributions mostly are, must give identical sets. "Hard" universes add upper bounds
//! (`<=`), conflicts and virtual capabilities with several providers: there, several valid answers exist and
//! libsolv's pick depends on its decision order and heuristics we do not reproduce exactly, so we
//! require a valid solution and report (and bound) how often the sets are identical.

use std::collections::BTreeSet;

use imagecore::repo::{RepoIndex, load_repo};
use imagecore::rpm::PackageMeta;
use imagecore::rpm::evr::overlaps;
use imagecore::solve::{PassRequest, SolveRequest, solve};
use osimage_e2e::oracle::{DnfOpts, dnf_assumeno};
use osimage_e2e::require;
use osimage_e2e::tools::have;
use osimage_e2e::universe::{Rng, generate, name, write};

/// Every Requires of every chosen package is provided by a chosen package, no Conflicts hit.
fn valid(repo: &RepoIndex, chosen: &BTreeSet<String>) -> Result<(), String> {
    let pk: Vec<&PackageMeta> = repo
        .packages
        .iter()
        .filter(|p| chosen.contains(&p.nvra()))
        .collect();
    let provides = |name: &str, d: &imagecore::rpm::Dep| {
        pk.iter().any(|p| {
            p.files.iter().any(|f| f == name)
                || p.provides.iter().any(|pr| {
                    pr.name == name && overlaps(pr.flags, pr.evr.as_ref(), d.flags, d.evr.as_ref())
                })
        })
    };
    for p in &pk {
        for d in &p.requires {
            if !provides(&d.name, d) {
                return Err(format!("{} needs {d}", p.nvra()));
            }
        }
        for d in &p.conflicts {
            if pk.iter().any(|o| {
                o.name == d.name
                    && overlaps(
                        imagecore::rpm::DepFlags::EQUAL,
                        Some(&o.evr()),
                        d.flags,
                        d.evr.as_ref(),
                    )
            }) {
                return Err(format!("{} conflicts with {d}", p.nvra()));
            }
        }
    }
    Ok(())
}

fn run(caps: bool, seeds: std::ops::RangeInclusive<u64>) -> (usize, usize, usize, Vec<String>) {
    let (mut same, mut both_unsat, mut total, mut diffs) = (0, 0, 0, Vec::new());
    for seed in seeds {
        let n = 300;
        let t = tempfile::tempdir().unwrap();
        let pkgs = generate(n, seed, caps);
        write(t.path(), &pkgs).unwrap();
        let repo = load_repo(t.path(), "gen").unwrap();
        assert_eq!(repo.packages.len(), pkgs.len());
        let mut rng = Rng(seed * 7919);
        let specs: Vec<String> = (0..4)
            .map(|_| name(n / 2 + rng.below(n as u64 / 2) as usize))
            .collect();
        let req = SolveRequest {
            repos: std::slice::from_ref(&repo),
            arch: "x86_64".into(),
            passes: vec![PassRequest {
                install: specs.clone(),
                remove: vec![],
            }],
            weak_deps: false,
            multilib: false,
            excludes: vec![],
        };
        let ours = solve(&req).map(|l| l.all_packages().map(|p| p.nvra()).collect::<BTreeSet<_>>());
        let spec_refs: Vec<&str> = specs.iter().map(String::as_str).collect();
        let dnf = dnf_assumeno(&[t.path()], &spec_refs, &DnfOpts::default());
        total += 1;
        match (&ours, &dnf) {
            (Ok(a), Ok(b)) => {
                valid(&repo, a)
                    .unwrap_or_else(|e| panic!("seed {seed}: our solution is invalid: {e}"));
                valid(&repo, b)
                    .unwrap_or_else(|e| panic!("seed {seed}: dnf's solution is invalid?: {e}"));
                if a == b {
                    same += 1;
                } else {
                    let only_ours: Vec<_> = a.difference(b).collect();
                    let only_dnf: Vec<_> = b.difference(a).collect();
                    diffs.push(format!(
                        "seed {seed}: only ours {only_ours:?}, only dnf {only_dnf:?}"
                    ));
                }
            }
            (Err(_), Err(_)) => both_unsat += 1,
            _ => panic!("seed {seed} specs {specs:?}: ours {ours:?}\ndnf {dnf:?}"),
        }
    }
    (same, both_unsat, total, diffs)
}

#[test]
fn generated_universes_without_virtual_caps_match_dnf_exactly() {
    require!(have("dnf"), "dnf missing");
    let (same, unsat, total, diffs) = run(false, 1..=6);
    eprintln!("plain universes: {same}/{total} identical, {unsat} unsat in both");
    assert!(diffs.is_empty(), "{diffs:#?}");
    assert!(same >= 3, "too few solvable cases to be meaningful");
}

#[test]
fn generated_universes_with_virtual_caps_are_valid_and_mostly_match_dnf() {
    require!(have("dnf"), "dnf missing");
    let (same, unsat, total, diffs) = run(true, 1..=8);
    eprintln!(
        "cap universes: {same}/{total} identical, {unsat} unsat in both; differences: {diffs:#?}"
    );
    assert!(
        same * 2 >= total - unsat,
        "fewer than half identical: {diffs:#?}"
    );
}

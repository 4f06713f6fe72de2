//! Minimal metadata-only universes that pin down libsolv's choice rules (what
//! `solve::libsolv` replays), each checked against `dnf --assumeno` and `testsolv`. They are the
//! shapes the divergences on generated universes reduced to.

use std::collections::BTreeSet;

use imagecore::repo::load_repo;
use imagecore::rpm::{Dep, DepFlags, Evr, PackageMeta};
use imagecore::solve::{PassRequest, SolveRequest, solve};
use osimage_e2e::oracle::{DnfOpts, dnf_assumeno, testsolv};
use osimage_e2e::require;
use osimage_e2e::tools::have;
use osimage_e2e::universe::write;

/// `name-ver-1.noarch` with `provides` / `requires` written like spec-file deps.
fn pkg(name: &str, ver: &str, provides: &[&str], requires: &[&str]) -> PackageMeta {
    let evr = Evr::new(0, ver, "1");
    let mut p = PackageMeta {
        name: name.into(),
        version: ver.into(),
        release: "1".into(),
        arch: "noarch".into(),
        ..Default::default()
    };
    p.provides
        .push(Dep::new(name, DepFlags::EQUAL, Some(evr), false));
    p.provides.extend(provides.iter().map(|d| Dep::parse(d)));
    p.requires.extend(requires.iter().map(|d| Dep::parse(d)));
    p.location = format!("Packages/{name}-{ver}-1.noarch.rpm");
    p.sha256 = format!("{:064x}", p.location.len());
    p.size = 1000;
    p
}

/// Our set, dnf's and testsolv's for installing `specs` from `pkgs` (in this pool order).
fn check(pkgs: &[PackageMeta], specs: &[&str], expect: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), pkgs).unwrap();
    let repo = load_repo(t.path(), "min").unwrap();
    let req = SolveRequest {
        repos: std::slice::from_ref(&repo),
        arch: "x86_64".into(),
        passes: vec![PassRequest {
            install: specs.iter().map(|s| s.to_string()).collect(),
            remove: vec![],
        }],
        weak_deps: false,
        multilib: false,
        excludes: vec![],
    };
    let ours: BTreeSet<String> = solve(&req)
        .unwrap()
        .all_packages()
        .map(|p| p.nvra())
        .collect();
    let dnf = dnf_assumeno(&[t.path()], specs, &DnfOpts::default()).unwrap();
    let ts = testsolv(&[t.path()], specs, false).unwrap();
    let expect: BTreeSet<String> = expect.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        dnf, expect,
        "dnf's answer (the oracle) is not the documented one"
    );
    assert_eq!(ts, dnf, "testsolv and dnf differ");
    assert_eq!(ours, dnf, "ours differs from dnf");
}

/// `sort_by_common_dep`: among providers of `cap`, the one providing the highest version of
/// it wins over the name that sorts first.
#[test]
fn provider_with_highest_cap_version_wins() {
    require!(have("dnf") && have("testsolv"), "dnf or testsolv missing");
    check(
        &[
            pkg("app", "1.0", &[], &["cap"]),
            pkg("prov-a", "1.0", &["cap = 1.0"], &[]),
            pkg("prov-b", "1.0", &["cap = 2.0"], &[]),
        ],
        &["app"],
        &["app-1.0-1.noarch", "prov-b-1.0-1.noarch"],
    );
}

/// `dislike_old_versions`: a provider whose matching package is not the newest of its name
/// goes behind the others.
#[test]
fn provider_that_is_an_old_version_goes_last() {
    require!(have("dnf") && have("testsolv"), "dnf or testsolv missing");
    check(
        &[
            pkg("app", "1.0", &[], &["cap"]),
            pkg("prov-a", "1.0", &["cap"], &[]),
            pkg("prov-a", "2.0", &[], &[]),
            pkg("prov-b", "1.0", &["cap"], &[]),
        ],
        &["app"],
        &["app-1.0-1.noarch", "prov-b-1.0-1.noarch"],
    );
}

/// Minimisation: a choice among names is taken again once a later decision installed one of
/// the other candidates anyway (`prov-a` was picked for `capx`, then `y-a` pulled in
/// `prov-b`: dnf's answer has no `prov-a`).
#[test]
fn choice_is_minimised_when_an_alternative_gets_installed() {
    require!(have("dnf") && have("testsolv"), "dnf or testsolv missing");
    check(
        &[
            pkg("prov-a", "1.0", &["capx"], &[]),
            pkg("prov-b", "1.0", &["capx"], &[]),
            pkg("y-a", "1.0", &["capy"], &["prov-b"]),
            pkg("y-b", "1.0", &["capy"], &[]),
            pkg("app", "1.0", &[], &["capx", "capy"]),
        ],
        &["app"],
        &[
            "app-1.0-1.noarch",
            "prov-b-1.0-1.noarch",
            "y-a-1.0-1.noarch",
        ],
    );
}

/// Rule order and versions: requirements of the package last in the repository are decided
/// first, each taking the best version; an upper bound met later makes libsolv learn and
/// backjump rather than pick the lower version up front.
#[test]
fn upper_bound_after_best_version_choice() {
    require!(have("dnf") && have("testsolv"), "dnf or testsolv missing");
    check(
        &[
            pkg("lib", "1.0", &[], &[]),
            pkg("lib", "2.0", &[], &[]),
            pkg("tool-a", "1.0", &["captool"], &["lib <= 1.0"]),
            pkg("tool-b", "1.0", &["captool"], &[]),
            pkg("mid", "1.0", &[], &["lib"]),
            pkg("app", "1.0", &[], &["mid", "captool"]),
        ],
        &["app"],
        &[
            "app-1.0-1.noarch",
            "lib-2.0-1.noarch",
            "mid-1.0-1.noarch",
            "tool-b-1.0-1.noarch",
        ],
    );
}

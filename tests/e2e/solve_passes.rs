//! Solver semantics on the oracle universe that dnf cannot check in one `--assumeno` call:
//! successive passes, removals, install-only and multilib, and the unsat explanations.

use std::collections::BTreeSet;

use imagecore::solve::{PassRequest, SolveRequest, solve};
use osimage_e2e::require;
use osimage_e2e::solve::{ours, repo};
use osimage_e2e::tools::have;

#[test]
fn unsat_explains_itself() {
    require!(
        have("rpmbuild") && have("createrepo_c"),
        "rpmbuild/createrepo_c missing"
    );
    let r = repo().unwrap();
    let err = ours(
        r,
        vec![PassRequest {
            install: vec!["broken".into()],
            remove: vec![],
        }],
        false,
    )
    .unwrap_err();
    assert!(
        err.contains("nothing provides does-not-exist >= 2 needed by broken-1.0-1.noarch"),
        "{err}"
    );
    let err = ours(
        r,
        vec![PassRequest {
            install: vec!["@nope".into()],
            remove: vec![],
        }],
        false,
    )
    .unwrap_err();
    assert!(
        err.contains("unknown group @nope") && err.contains("core"),
        "{err}"
    );
    let err = ours(
        r,
        vec![PassRequest {
            install: vec!["no-such-pkg".into()],
            remove: vec![],
        }],
        false,
    )
    .unwrap_err();
    assert!(err.contains("No match for argument: no-such-pkg"), "{err}");
    let err = ours(
        r,
        vec![PassRequest {
            install: vec!["conflicter".into(), "old < 3".into()],
            remove: vec![],
        }],
        false,
    )
    .unwrap_err();
    assert!(err.contains("conflicts with old < 3"), "{err}");
}

#[test]
fn passes_are_successive_transactions() {
    require!(
        have("rpmbuild") && have("createrepo_c"),
        "rpmbuild/createrepo_c missing"
    );
    let r = repo().unwrap();
    let repos = std::slice::from_ref(&r.index);
    let req = SolveRequest {
        repos,
        arch: "x86_64".into(),
        passes: vec![
            PassRequest {
                install: vec!["lib-1.0".into()],
                remove: vec![],
            },
            PassRequest {
                install: vec!["versioned".into()],
                remove: vec![],
            },
        ],
        weak_deps: false,
        multilib: false,
        excludes: vec![],
    };
    // pass 1 installs lib-1.0; pass 2 upgrades it to what versioned needs (as dnf does)
    let lock = solve(&req).unwrap();
    let p2: Vec<String> = lock.passes[1].packages.iter().map(|p| p.nvra()).collect();
    assert_eq!(p2, ["lib-2.1-1.x86_64", "versioned-1.0-1.noarch"]);
    assert_eq!(lock.passes[1].upgraded, ["lib-1.0-1.x86_64"]);
    let req = SolveRequest {
        passes: vec![
            PassRequest {
                install: vec!["shell".into()],
                remove: vec![],
            },
            PassRequest {
                install: vec!["needs-files".into()],
                remove: vec!["docs".into()],
            },
        ],
        ..req
    };
    let lock = solve(&req).unwrap();
    assert_eq!(
        lock.passes[0]
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["shell"]
    );
    let p2: Vec<&str> = lock.passes[1]
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(p2, ["docs", "needs-files"], "deps before dependents");
    assert_eq!(lock.passes[1].removed, ["docs", "needs-files"]);
}

#[test]
fn multilib_and_installonly_passes() {
    require!(
        have("rpmbuild") && have("createrepo_c"),
        "rpmbuild/createrepo_c missing"
    );
    let r = repo().unwrap();
    let repos = std::slice::from_ref(&r.index);
    let mut req = SolveRequest {
        repos,
        arch: "x86_64".into(),
        passes: vec![PassRequest {
            install: vec!["multi.i686".into(), "multi".into()],
            remove: vec![],
        }],
        weak_deps: false,
        multilib: true,
        excludes: vec![],
    };
    let lock = solve(&req).unwrap();
    let got: BTreeSet<String> = lock.all_packages().map(|p| p.nvra()).collect();
    assert!(
        got.contains("multi-1.0-1.i686") && got.contains("multi-1.0-1.x86_64"),
        "{got:?}"
    );
    // installonly: a later pass may add a second kernel next to the first
    req.passes = vec![
        PassRequest {
            install: vec!["kernel-6.1.0".into()],
            remove: vec![],
        },
        PassRequest {
            install: vec!["kernel-6.2.0".into()],
            remove: vec![],
        },
    ];
    let lock = solve(&req).unwrap();
    let k: Vec<String> = lock.all_packages().map(|p| p.nvra()).collect();
    assert_eq!(k, ["kernel-6.1.0-1.x86_64", "kernel-6.2.0-1.x86_64"]);
    // a later pass may upgrade a non-installonly package, never keep two versions
    req.passes = vec![
        PassRequest {
            install: vec!["old-2.0".into()],
            remove: vec![],
        },
        PassRequest {
            install: vec!["old-4.0".into()],
            remove: vec![],
        },
    ];
    let lock = solve(&req).unwrap();
    assert_eq!(lock.passes[1].upgraded, ["old-2.0-1.noarch"]);
    // ... and never downgrades it: that is unsatisfiable, and says so
    req.passes.swap(0, 1);
    let err = solve(&req).unwrap_err().to_string();
    assert!(err.contains("old >= 4.0-1 (installed)"), "{err}");
}

/// Successive passes against real successive `dnf install` runs into one root.
#[test]
fn passes_match_successive_dnf_installs() {
    require!(
        have("rpmbuild") && have("createrepo_c") && have("dnf"),
        "rpmbuild/createrepo_c/dnf missing"
    );
    require!(
        osimage_e2e::tools::is_root(),
        "needs root for dnf --installroot"
    );
    let r = repo().unwrap();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let opts = osimage_e2e::oracle::DnfOpts::default();
    let dir = r.dir.as_path();
    osimage_e2e::oracle::dnf_install(&[dir], &root, &["lib-1.0", "shell"], &opts).unwrap();
    let dnf = osimage_e2e::oracle::dnf_install(&[dir], &root, &["versioned", "needs-files"], &opts)
        .unwrap();
    let req = SolveRequest {
        repos: std::slice::from_ref(&r.index),
        arch: "x86_64".into(),
        passes: vec![
            PassRequest {
                install: vec!["lib-1.0".into(), "shell".into()],
                remove: vec![],
            },
            PassRequest {
                install: vec!["versioned".into(), "needs-files".into()],
                remove: vec![],
            },
        ],
        weak_deps: false,
        multilib: false,
        excludes: vec![],
    };
    let lock = solve(&req).unwrap();
    let upgraded: BTreeSet<String> = lock
        .passes
        .iter()
        .flat_map(|p| p.upgraded.iter().cloned())
        .collect();
    let ours: BTreeSet<String> = lock
        .all_packages()
        .filter(|p| {
            !upgraded.contains(&format!(
                "{}-{}-{}.{}",
                p.name, p.version, p.release, p.arch
            ))
        })
        .map(|p| p.nvra())
        .collect();
    assert_eq!(ours, dnf);
}

/// `-pkg` removal against a real `dnf remove` (with its default clean_requirements_on_remove).
#[test]
fn removal_matches_dnf_remove() {
    require!(
        have("rpmbuild") && have("createrepo_c") && have("dnf"),
        "rpmbuild/createrepo_c/dnf missing"
    );
    require!(
        osimage_e2e::tools::is_root(),
        "needs root for dnf --installroot"
    );
    let r = repo().unwrap();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let opts = osimage_e2e::oracle::DnfOpts::default();
    let dir = r.dir.as_path();
    osimage_e2e::oracle::dnf_install(&[dir], &root, &["needs-files", "versioned"], &opts).unwrap();
    let dnf = osimage_e2e::oracle::dnf_remove(&root, &["docs"]).unwrap();
    let req = SolveRequest {
        repos: std::slice::from_ref(&r.index),
        arch: "x86_64".into(),
        passes: vec![PassRequest {
            install: vec!["needs-files".into(), "versioned".into()],
            remove: vec!["docs".into()],
        }],
        weak_deps: false,
        multilib: false,
        excludes: vec![],
    };
    let lock = solve(&req).unwrap();
    let removed: BTreeSet<&str> = lock.passes[0].removed.iter().map(String::as_str).collect();
    let ours: BTreeSet<String> = lock
        .all_packages()
        .filter(|p| !removed.contains(p.name.as_str()))
        .map(|p| p.nvra())
        .collect();
    assert_eq!(ours, dnf, "removed by us: {removed:?}");
}

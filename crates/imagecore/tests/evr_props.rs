//! EVR ordering against rpm itself: generated pairs are compared by `rpm.vercmp` (rpm's Lua
//! binding of rpmvercmp/rpmverCmp), many pairs per rpm call.

use std::cmp::Ordering;
use std::process::Command;

use imagecore::rpm::evr::{Evr, vercmp};
use proptest::prelude::*;

fn have_rpm() -> bool {
    Command::new("rpm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// rpm's answers for all pairs, in one `rpm --eval` call.
fn rpm_vercmp(pairs: &[(String, String)]) -> Vec<i32> {
    let mut lua = String::from("%{lua: ");
    for (a, b) in pairs {
        lua.push_str(&format!("print(rpm.vercmp(\"{a}\", \"{b}\") .. \" \") "));
    }
    lua.push('}');
    let o = Command::new("rpm")
        .arg("--eval")
        .arg(&lua)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Vec<i32> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(v.len(), pairs.len(), "rpm output: {out}");
    v
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0"),
        Just("1"),
        Just("2"),
        Just("9"),
        Just("10"),
        Just("01"),
        Just("007"),
        Just("a"),
        Just("b"),
        Just("z"),
        Just("A"),
        Just("rc"),
        Just("~"),
        Just("^"),
        Just("."),
        Just("_"),
        Just("+"),
        Just("~rc1"),
        Just("^git"),
    ]
    .prop_map(String::from)
}

fn version() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 1..6).prop_map(|v| v.concat())
}

fn evr() -> impl Strategy<Value = String> {
    (
        proptest::option::of(0u32..3),
        version(),
        proptest::option::of(version()),
    )
        .prop_map(|(e, v, r)| {
            let mut s = String::new();
            if let Some(e) = e {
                s.push_str(&format!("{e}:"));
            }
            s.push_str(&v);
            if let Some(r) = r {
                s.push('-');
                s.push_str(&r);
            }
            s
        })
}

fn ord(i: i32) -> Ordering {
    i.cmp(&0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn version_order_matches_rpm(pairs in proptest::collection::vec((version(), version()), 300)) {
        if !have_rpm() { eprintln!("SKIPPED: rpm not installed"); return Ok(()); }
        let want = rpm_vercmp(&pairs);
        for ((a, b), w) in pairs.iter().zip(want) {
            prop_assert_eq!(vercmp(a, b), ord(w), "vercmp({:?}, {:?})", a, b);
        }
    }

    #[test]
    fn evr_order_matches_rpm(pairs in proptest::collection::vec((evr(), evr()), 300)) {
        if !have_rpm() { eprintln!("SKIPPED: rpm not installed"); return Ok(()); }
        let want = rpm_vercmp(&pairs);
        for ((a, b), w) in pairs.iter().zip(want) {
            prop_assert_eq!(Evr::parse(a).cmp(&Evr::parse(b)), ord(w), "evr {:?} vs {:?}", a, b);
        }
    }
}

#[test]
fn known_edge_cases_match_rpm() {
    if !have_rpm() {
        eprintln!("SKIPPED: rpm not installed");
        return;
    }
    let pairs: Vec<(String, String)> = [
        ("1.0", "1.0"),
        ("1.0~rc1", "1.0"),
        ("1.0~rc1", "1.0~rc2"),
        ("1.0^", "1.0"),
        ("1.0^git1", "1.0.1"),
        ("1.0^git1", "1.0~rc1"),
        ("1.01", "1.1"),
        ("1.a", "1.1"),
        ("a", "1"),
        ("1.0", "1.0.0"),
        ("1_0", "1.0"),
        ("1:1.0", "2.0"),
        ("0:1.0", "1.0"),
        ("1.0-1", "1.0"),
        ("2.0-1", "2.0-10"),
        ("~~", "~"),
        ("^^", "^"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let want = rpm_vercmp(&pairs);
    for ((a, b), w) in pairs.iter().zip(want) {
        assert_eq!(Evr::parse(a).cmp(&Evr::parse(b)), ord(w), "{a} vs {b}");
    }
}

//! End-to-end tests: the `osimage` binary and the library against real tools (rpm, dnf,
//! createrepo_c, GNU cpio, zstd, xorriso, qemu). One module per area; fixtures live in the
//! `osimage-e2e` library (`tests/src/`). These run as integration tests of `imagecli`, so cargo
//! builds the `osimage` binary they call before running them.

mod boot_bench;
mod boot_e2e;
mod boot_fixture;
mod boot_kerneldir;
mod boot_modules;
mod boot_spec;
mod build_from_iso;
mod build_otherpkgs;
mod build_packages;
mod copycds_e2e;
mod copycds_robust;
mod demo;
mod examples;
mod install_cache;
mod install_cli;
mod install_conformance;
mod install_dnf;
mod install_gpg;
mod install_gpg_build;
mod install_hostile;
mod install_lua;
mod install_scriptlets;
mod install_scriptlets_erase;
mod install_upgrade;
mod lock_cli;
mod pack_rpm;
mod repo_read;
mod solve_bench;
mod solve_oracle;
mod solve_passes;
mod solve_policy;
mod solve_universe;
mod spine_capture;
mod spine_crash;
mod store_cli;

//! imagecore integration tests, one binary (one link) for all areas.

#[macro_use]
mod archive_common;
#[macro_use]
mod common;

mod archive_frames;
mod archive_pack;
mod archive_pack_dir;
mod archive_reader;
mod boot_elf;
mod evr_props;
mod lists_exlist;
mod lists_pkglist;
mod lists_synclist;
mod media_reader;
mod rpm_header_corpus;
mod spec_errors;
mod spec_load;
mod store_crash;
mod store_roundtrip;
mod tree_bench;
mod tree_roundtrip;

//! `osimage`: the command-line driver over imagecore.
fn main() {}

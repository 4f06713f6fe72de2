# Sourced by the bench scripts: bench_spec DIR NAME writes DIR/NAME.toml, the spec both benches
# build (repo/, NAME.pkglist, NAME.postinstall, zstd -3 into out/).
bench_spec() {
  cat > "$1/$2.toml" <<TOML
[osimage]
name = "$2"
osvers = "rocky9.4"
arch = "x86_64"
profile = "compute"

[repos]
pkgdir = ["repo"]

[packages]
pkglist = ["$2.pkglist"]

[image]
rootimgdir = "out"
postinstall = ["$2.postinstall"]

[pack]
compress = "zstd"
level = 3
TOML
}

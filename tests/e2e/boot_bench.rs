//! Benchmark (report only, printed with --nocapture): our initrd build (kernel choice, module
//! closure, staging, newc + zstd -19) against the same job done with the real tools in the same
//! run (`modprobe --show-depends` per module, cp, `depmod -b`, GNU cpio | zstd -19), on the
//! `.ko.xz` kernel (modules.dep present, so modprobe works). Both must carry the same modules.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use imagecore::boot::{self, InitrdOptions};
use osimage_e2e::minidistro::{self, KernelVariant};
use osimage_e2e::{require, tools};

#[test]
#[ignore = "benchmark: cargo test -p imagecli --test e2e boot_bench -- --ignored --nocapture"]
fn initrd_build_vs_modprobe_cpio_zstd() {
    require!(
        tools::is_root()
            && minidistro::TOOLS.iter().all(|t| tools::have(t))
            && tools::have("modprobe"),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, modprobe"
    );
    let md = minidistro::build().unwrap();
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    minidistro::install(&md, &root, KernelVariant::Xz, true, true).unwrap();
    let drivers: Vec<String> = boot::default_netdrivers("x86_64")
        .iter()
        .map(|s| s.to_string())
        .chain(["virtio_blk".to_string(), "virtio_pci".to_string()])
        .collect();

    // ours
    let t0 = Instant::now();
    let k = boot::select_kernel(&root, None, None).unwrap();
    let set = boot::module_closure(&k.modules_dir, &[], &drivers).unwrap();
    let t_closure = t0.elapsed().as_secs_f64();
    let staging = t.path().join("ours");
    let opts = InitrdOptions {
        drivers: set,
        ..Default::default()
    };
    boot::stage_initrd(&root, &k, &opts, &staging).unwrap();
    let t_stage = t0.elapsed().as_secs_f64();
    let ours = t.path().join("ours.zst");
    boot::pack_initrd(&staging, &ours, 19).unwrap();
    let t_ours = t0.elapsed().as_secs_f64();
    let ours_size = std::fs::metadata(&ours).unwrap().len();

    // the real tools, same job (busybox + zstd closure by ldd-equivalent copy, modules by modprobe)
    let script = format!(
        r#"set -eo pipefail
R={root}; K={kver}; S={st}; O={out}
mkdir -p $S/usr/bin $S/usr/lib $S/usr/lib64 $S/etc; ln -s usr/bin $S/bin; ln -s usr/lib $S/lib; ln -s usr/lib64 $S/lib64
cp $R/usr/bin/busybox $R/usr/bin/zstd $S/usr/bin/
cp -a $R/usr/lib/x86_64-linux-gnu $S/usr/lib/; cp $R/usr/lib64/ld-linux-x86-64.so.2 $S/usr/lib64/
for m in {mods}; do modprobe -d $R -S $K --show-depends $m | awk '$1=="insmod"{{print $2}}'; done | sort -u | while read -r ko; do
  rel=${{ko#$R/lib/modules/$K/}}; mkdir -p $S/lib/modules/$K/$(dirname $rel); xz -dc $ko > $S/lib/modules/$K/${{rel%.xz}}
done
cp $R/lib/modules/$K/modules.builtin* $R/lib/modules/$K/modules.order $S/lib/modules/$K/
depmod -b $S $K
(cd $S && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) | zstd -q -19 -T0 -f -o $O
"#,
        root = root.display(),
        kver = md.kver,
        st = t.path().join("theirs").display(),
        out = t.path().join("theirs.zst").display(),
        mods = drivers.join(" ")
    );
    let t1 = Instant::now();
    let st = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert!(st.success());
    let t_theirs = t1.elapsed().as_secs_f64();
    let theirs_size = std::fs::metadata(t.path().join("theirs.zst"))
        .unwrap()
        .len();

    let kos = |dir: &std::path::Path| -> BTreeSet<String> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ko"))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let a = kos(&staging.join("usr/lib/modules"));
    let b = kos(&t.path().join("theirs/usr/lib/modules"));
    // we add every softdep= entry; modprobe only the last one (see boot_modules.rs)
    let extra: BTreeSet<&String> = a.difference(&b).collect();
    assert!(
        b.is_subset(&a),
        "modprobe has modules we lack: {:?}",
        b.difference(&a).collect::<Vec<_>>()
    );
    eprintln!(
        "BENCH initrd ({} modules{}): osimage {:.2} s (closure {:.2} s, staged {:.2} s), {} bytes; \
         modprobe+cp+depmod+cpio+zstd -19 {:.2} s, {} bytes",
        a.len(),
        if extra.is_empty() {
            String::new()
        } else {
            format!(", +{extra:?}")
        },
        t_ours,
        t_closure,
        t_stage,
        ours_size,
        t_theirs,
        theirs_size
    );
}

//! The boot fixture: a mini distribution of real RPMs built with `rpmbuild` from Debian
//! packages, cached between test runs.
//!
//! - `filesystem`: the usrmerged skeleton (`/bin -> usr/bin`, `/sbin`, `/lib`, `/lib64`).
//! - `busybox`: Debian's `busybox-static` plus its applet links (no `/sbin/init`).
//! - `kernel` (release `1.mini`): Debian's `linux-image-<abi>-amd64`, modules uncompressed and
//!   **no `modules.dep`** (Debian runs depmod in postinst), so our own dependency scan is used.
//! - `kernel` (release `1.minixz`): the same with every module compressed to `.ko.xz` and
//!   `depmod` output, like RHEL's kernel-core.
//! - `zstd`: the build host's dynamically linked `/usr/bin/zstd` with its libraries and
//!   `ld-linux`, so the initrd's ELF closure is exercised (Debian's busybox has no zstd).
//! - `stateless-init`: `/usr/sbin/init` prints facts, the postinstall stamp
//!   `/etc/osimage-postinstall.stamp`, the marker [`MARKER`], and powers off.
//!
//! Built once into `$OSIMAGE_FIXTURES/minidistro-v1` (default `target/osimage-fixtures/`), in a
//! temporary directory renamed into place, so parallel test processes never see half a build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, bail};

/// The line the fixture's `/sbin/init` prints when the root image booted.
pub const MARKER: &str = "STATELESS-BOOT-OK";

/// The built fixture.
#[derive(Clone, Debug)]
pub struct MiniDistro {
    /// The cache directory.
    pub dir: PathBuf,
    /// The kernel's `uname -r`.
    pub kver: String,
    /// `filesystem` RPM.
    pub filesystem: PathBuf,
    /// `busybox` RPM.
    pub busybox: PathBuf,
    /// `kernel` RPM, plain `.ko`, no modules.dep.
    pub kernel: PathBuf,
    /// `kernel` RPM, `.ko.xz` with depmod output.
    pub kernel_xz: PathBuf,
    /// `zstd` RPM (dynamic binary + libs).
    pub zstd: PathBuf,
    /// `stateless-init` RPM.
    pub stateless_init: PathBuf,
}

static LOCK: Mutex<()> = Mutex::new(());

/// The fixture cache root.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("OSIMAGE_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/osimage-fixtures"),
    }
}

/// The tools the fixture needs (besides root for `rpm -i`).
pub const TOOLS: [&str; 6] = ["rpmbuild", "rpm", "apt-get", "dpkg-deb", "depmod", "xz"];

/// Build (or reuse) the mini distro.
pub fn build() -> anyhow::Result<MiniDistro> {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_root().join("minidistro-v1");
    if !dir.join("done").exists() {
        std::fs::create_dir_all(cache_root())?;
        let tmp = cache_root().join(format!("minidistro-v1.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        write_specs(&tmp.join("specs"))?;
        let t0 = std::time::Instant::now();
        let out = Command::new("bash")
            .arg("-c")
            .arg(BUILD_SCRIPT)
            .arg("build-minidistro")
            .arg(&tmp)
            .output()
            .context("running bash")?;
        std::fs::write(
            tmp.join("build.log"),
            [&out.stdout[..], &out.stderr[..]].concat(),
        )?;
        if !out.status.success() {
            bail!(
                "building the mini distro failed (log in {}):\n{}",
                tmp.join("build.log").display(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        eprintln!("mini distro built in {:.1} s", t0.elapsed().as_secs_f64());
        std::fs::write(tmp.join("done"), b"")?;
        if std::fs::rename(&tmp, &dir).is_err() {
            // another process won the race
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let kver = std::fs::read_to_string(dir.join("kver"))?
        .trim()
        .to_string();
    let rpm = |glob: &str| -> anyhow::Result<PathBuf> {
        let rpms = dir.join("rpms");
        for e in std::fs::read_dir(&rpms)? {
            let p = e?.path();
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if n.starts_with(glob) {
                return Ok(p);
            }
        }
        bail!("no {glob}* in {}", rpms.display())
    };
    Ok(MiniDistro {
        kver,
        filesystem: rpm("filesystem-")?,
        busybox: rpm("busybox-")?,
        kernel: dir
            .join("rpms-kernel/plain")
            .read_dir()?
            .next()
            .context("no plain kernel rpm")??
            .path(),
        kernel_xz: dir
            .join("rpms-kernel/xz")
            .read_dir()?
            .next()
            .context("no xz kernel rpm")??
            .path(),
        zstd: rpm("zstd-")?,
        stateless_init: rpm("stateless-init-")?,
        dir,
    })
}

/// Which kernel package to install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelVariant {
    /// `.ko`, no modules.dep.
    Plain,
    /// `.ko.xz` with modules.dep.
    Xz,
    /// No kernel package at all.
    None,
}

/// Install the fixture into `root` with real rpm (`--nodeps`; filesystem first so the usrmerge
/// links exist), with or without `zstd` and `busybox`.
pub fn install(
    md: &MiniDistro,
    root: &Path,
    kernel: KernelVariant,
    with_zstd: bool,
    with_busybox: bool,
) -> anyhow::Result<()> {
    rpm_i(root, &[&md.filesystem])?;
    let mut rest: Vec<&Path> = vec![&md.stateless_init];
    if with_busybox {
        rest.push(&md.busybox);
    }
    if with_zstd {
        rest.push(&md.zstd);
    }
    match kernel {
        KernelVariant::Plain => rest.push(&md.kernel),
        KernelVariant::Xz => rest.push(&md.kernel_xz),
        KernelVariant::None => {}
    }
    rpm_i(root, &rest)
}

fn rpm_i(root: &Path, rpms: &[&Path]) -> anyhow::Result<()> {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts"])
        .args(rpms)
        .output()
        .context("running rpm")?;
    if !out.status.success() {
        bail!("rpm -i failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Pack `root` as a zstd newc archive with GNU cpio (sorted, owner 0:0), leaving out `boot/`,
/// the kernel's module tree (the initrd carries what the boot needs) and `prune` paths (find
/// `-path` patterns relative to `.`), as the fixture step of a boot test.
pub fn pack_root(root: &Path, out: &Path, prune: &[&str]) -> anyhow::Result<()> {
    let mut expr = String::from("-path './boot/*' -o -path './usr/lib/modules/*'");
    for p in prune {
        expr.push_str(&format!(" -o -path '{p}'"));
    }
    let script = format!(
        "set -eo pipefail; cd '{root}' && find . -mindepth 1 \\( {expr} \\) -prune -o -print0 | LC_ALL=C sort -z | \
         cpio --null --create --format=newc --owner=0:0 --reproducible --quiet | zstd -q -3 -T0 -f -o '{out}'",
        root = root.display(),
        out = out.display()
    );
    let st = Command::new("bash").arg("-c").arg(&script).status()?;
    if !st.success() {
        bail!("packing {} failed", root.display());
    }
    Ok(())
}

fn write_specs(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in SPECS {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

const SPECS: [(&str, &str); 5] = [
    (
        "filesystem.spec",
        r#"Name: filesystem
Version: 3.16
Release: 1.mini
Summary: usrmerged directory skeleton (osimage test fixture)
License: Public Domain
BuildArch: noarch
%description
Directory skeleton; /bin /sbin /lib /lib64 are links into /usr as on RHEL 9.
%install
cd %{buildroot}
mkdir -p boot dev etc home mnt opt proc root run srv sys tmp var usr/bin usr/sbin usr/lib usr/lib64 usr/lib/modules usr/lib/firmware usr/share var/lib var/log var/tmp
ln -s usr/bin bin
ln -s usr/sbin sbin
ln -s usr/lib lib
ln -s usr/lib64 lib64
%files
%defattr(-,root,root,-)
/bin
/sbin
/lib
/lib64
%dir /boot
%dir /dev
%dir /etc
%dir /home
%dir /mnt
%dir /opt
%attr(0555,root,root) %dir /proc
%attr(0550,root,root) %dir /root
%dir /run
%dir /srv
%attr(0555,root,root) %dir /sys
%attr(1777,root,root) %dir /tmp
%dir /usr
%dir /usr/bin
%dir /usr/sbin
%dir /usr/lib
%dir /usr/lib/modules
%dir /usr/lib/firmware
%dir /usr/lib64
%dir /usr/share
%dir /var
%dir /var/lib
%dir /var/log
%attr(1777,root,root) %dir /var/tmp
"#,
    ),
    (
        "busybox.spec",
        r#"%global debug_package %{nil}
%global __os_install_post %{nil}
%global _build_id_links none
Name: busybox
Version: %{bbver}
Release: 1.mini
Summary: static busybox with applet links (osimage test fixture)
License: GPL-2.0-only
Provides: /bin/sh
%description
Debian's busybox-static, repackaged.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/sbin
install -m 0755 %{bbbin} %{buildroot}/usr/bin/busybox
: > %{_builddir}/applets.list
for p in $(%{bbbin} --list-full); do
  case "$p" in
    linuxrc|sbin/init|usr/bin/busybox) continue ;;
    bin/*) dst=/usr/bin/${p#bin/} ;;
    sbin/*) dst=/usr/sbin/${p#sbin/} ;;
    usr/*) dst=/$p ;;
    *) continue ;;
  esac
  [ -e %{buildroot}$dst ] && continue
  ln -s /usr/bin/busybox %{buildroot}$dst
  echo "$dst" >> %{_builddir}/applets.list
done
%files -f %{_builddir}/applets.list
/usr/bin/busybox
"#,
    ),
    (
        "kernel.spec",
        r#"%global debug_package %{nil}
%global __os_install_post %{nil}
%global _build_id_links none
Name: kernel
Version: %{kpkgver}
Release: %{krel}
Summary: Debian kernel %{kver} repackaged (osimage test fixture)
License: GPL-2.0-only
AutoReqProv: no
Provides: kernel-uname-r(%{kver})
Provides: installonlypkg(kernel)
%description
vmlinuz and the modules tree of linux-image-%{kver}.
%install
mkdir -p %{buildroot}/boot %{buildroot}/lib/modules
cp -a %{kroot}/boot/vmlinuz-%{kver} %{kroot}/boot/config-%{kver} %{buildroot}/boot/
cp -a %{kroot}/lib/modules/%{kver} %{buildroot}/lib/modules/
cp -a %{kroot}/boot/vmlinuz-%{kver} %{buildroot}/lib/modules/%{kver}/vmlinuz
%files
%defattr(-,root,root,-)
/boot/vmlinuz-%{kver}
/boot/config-%{kver}
/lib/modules/%{kver}
"#,
    ),
    (
        "zstd.spec",
        r#"%global debug_package %{nil}
%global __os_install_post %{nil}
%global _build_id_links none
Name: zstd
Version: 1.5
Release: 1.mini
Summary: dynamically linked zstd with its libraries (osimage test fixture)
License: BSD
AutoReqProv: no
%description
The build host's zstd and the shared libraries it links, at Debian's multiarch paths, and
ld-linux under /usr/lib64 (reached through the /lib64 link).
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/x86_64-linux-gnu %{buildroot}/usr/lib64
install -m 0755 /usr/bin/zstd %{buildroot}/usr/bin/zstd
for lib in $(ldd /usr/bin/zstd | awk '$2=="=>"{print $3}'); do
  real=$(readlink -f "$lib")
  install -m 0755 "$real" %{buildroot}/usr/lib/x86_64-linux-gnu/
  if [ "$(basename "$real")" != "$(basename "$lib")" ]; then
    ln -s "$(basename "$real")" %{buildroot}/usr/lib/x86_64-linux-gnu/$(basename "$lib")
  fi
done
install -m 0755 "$(readlink -f /lib64/ld-linux-x86-64.so.2)" %{buildroot}/usr/lib64/ld-linux-x86-64.so.2
%files
/usr/bin/zstd
/usr/lib/x86_64-linux-gnu
/usr/lib64/ld-linux-x86-64.so.2
"#,
    ),
    (
        "stateless-init.spec",
        r#"Name: stateless-init
Version: 1.0
Release: 1.mini
Summary: /sbin/init of the boot test (osimage test fixture)
License: MIT
BuildArch: noarch
%description
PID 1 of the booted root image: prints facts, the postinstall stamp and the marker, powers off.
%install
mkdir -p %{buildroot}/usr/sbin
cat > %{buildroot}/usr/sbin/init <<'EOI'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
rootfs=$(awk '$2=="/"{print $3}' /proc/mounts | tail -n1)
echo "stateless-init: kernel $(uname -r), / is $rootfs, $(grep -c . /proc/modules) modules loaded"
if [ -f /etc/osimage-postinstall.stamp ]; then
  echo "stateless-init: postinstall stamp: $(cat /etc/osimage-postinstall.stamp)"
fi
echo "STATELESS-BOOT-OK"
sync
poweroff -f
EOI
chmod 0755 %{buildroot}/usr/sbin/init
%files
/usr/sbin/init
"#,
    ),
];

/// Downloads the Debian packages and runs rpmbuild. `$1` = output dir (holds `specs/`).
const BUILD_SCRIPT: &str = r#"
set -euo pipefail
OUT=$1
export SOURCE_DATE_EPOCH=1700000000
mkdir -p "$OUT/debs" "$OUT/rpms" "$OUT/rpms-kernel/plain" "$OUT/rpms-kernel/xz"
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}' || true)
if [ -z "$KPKG" ]; then
  apt-get update -qq
  KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
[ -n "$KPKG" ] || { echo "cannot resolve linux-image-amd64" >&2; exit 1; }
KVER=${KPKG#linux-image-}
cd "$OUT/debs"
apt-get download -q "$KPKG" busybox-static 2>&1 | grep -v unsandboxed || true
KDEB=$(ls "$OUT"/debs/${KPKG}_*.deb | head -n1)
BBDEB=$(ls "$OUT"/debs/busybox-static_*.deb | head -n1)
KDEBVER=$(dpkg-deb -f "$KDEB" Version)
KPKGVER=${KDEBVER%%-*}
BBDEBVER=$(dpkg-deb -f "$BBDEB" Version); BBVER=${BBDEBVER#*:}; BBVER=${BBVER%%-*}
dpkg-deb -x "$KDEB" "$OUT/kroot"
dpkg-deb -x "$BBDEB" "$OUT/bbroot"
BB=$OUT/bbroot/bin/busybox; [ -x "$BB" ] || BB=$OUT/bbroot/usr/bin/busybox
[ -f "$OUT/kroot/lib/modules/$KVER/modules.dep" ] && { echo "unexpected: the .deb ships modules.dep" >&2; exit 1; }
echo "$KVER" > "$OUT/kver"

TOP=$OUT/rpmbuild
mkdir -p "$TOP"/{BUILD,BUILDROOT,SOURCES,SPECS,SRPMS}
rb() { # rb SPEC RPMDIR PAYLOAD [defines...]
  local spec=$1 dir=$2 payload=$3; shift 3
  rpmbuild -bb --define "_topdir $TOP" --define "_rpmdir $dir" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_buildhost fixture.osimage" --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" --define "debug_package %{nil}" \
    --define "_binary_payload $payload" "$@" "$OUT/specs/$spec" > "$TOP/$spec.log" 2>&1 \
    || { tail -n 30 "$TOP/$spec.log" >&2; return 1; }
}
rb filesystem.spec "$OUT/rpms" w6.zstdio
rb busybox.spec "$OUT/rpms" w6.zstdio --define "bbbin $BB" --define "bbver $BBVER"
rb zstd.spec "$OUT/rpms" w6.zstdio
rb stateless-init.spec "$OUT/rpms" w6.zstdio
rb kernel.spec "$OUT/rpms-kernel/plain" w3T0.zstdio --define "kroot $OUT/kroot" --define "kver $KVER" \
   --define "kpkgver $KPKGVER" --define "krel 1.mini"
# .ko.xz variant with depmod output (RHEL style)
find "$OUT/kroot/lib/modules/$KVER" -name '*.ko' -print0 | xargs -0 -P "$(nproc)" -n 64 xz -1 --check=crc32 -T1
depmod -b "$OUT/kroot" "$KVER"
rb kernel.spec "$OUT/rpms-kernel/xz" w3T0.zstdio --define "kroot $OUT/kroot" --define "kver $KVER" \
   --define "kpkgver $KPKGVER" --define "krel 1.minixz"
rm -rf "$OUT/kroot" "$OUT/bbroot" "$TOP/BUILDROOT" "$TOP/BUILD"
find "$OUT/rpms" "$OUT/rpms-kernel" -name '*.rpm' -printf '%s %p\n' >&2
"#;

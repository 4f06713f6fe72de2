//! The boot test: kernel + initrd + root image under `qemu-system-x86_64` (TCG: nested KVM is
//! unreliable), the root image attached as a raw read-only virtio disk, the serial console
//! polled for a marker line.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::BootError;
use crate::archive::{Compress, pad_stream};

/// One boot to run.
#[derive(Clone, Debug)]
pub struct BootTest {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initrd.
    pub initrd: PathBuf,
    /// The root image archive, attached as `/dev/vda` (pad it with [`pad_to_sector`]).
    pub rootimg: PathBuf,
    /// Give up after this long.
    pub timeout: Duration,
    /// The console line that means success.
    pub marker: String,
    /// Extra kernel command line (after `console=ttyS0 panic=-1`).
    pub append: String,
}

/// A boot that printed the marker.
#[derive(Clone, Debug)]
pub struct BootOutcome {
    /// Seconds from qemu start to the marker on the console.
    pub seconds_to_marker: f64,
    /// Seconds until qemu ended (or was stopped 15 s after the marker).
    pub seconds_total: f64,
    /// The whole serial log (ANSI escapes and `\r` kept as qemu wrote them).
    pub log: String,
    /// The last 30 lines of the log, `\r` removed.
    pub log_tail: String,
    /// Guest memory given, MiB.
    pub memory_mib: u64,
}

/// Boot and wait for the marker. `Ok` only when the marker was seen.
pub fn boot_test(t: &BootTest) -> Result<BootOutcome, BootError> {
    boot_test_with(t, &[])
}

/// [`boot_test`] with extra qemu arguments, e.g. a restricted user-mode network for `imgurl=`
/// (`-netdev user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:… -device virtio-net-pci,netdev=n0`).
pub fn boot_test_with(t: &BootTest, extra_qemu_args: &[String]) -> Result<BootOutcome, BootError> {
    for p in [&t.kernel, &t.initrd, &t.rootimg] {
        std::fs::metadata(p).map_err(|e| BootError::io(p, e))?;
    }
    let img_mib = std::fs::metadata(&t.rootimg)
        .map_err(|e| BootError::io(&t.rootimg, e))?
        .len()
        / (1 << 20);
    // the unpacked root lives in RAM: leave room for ~6x the compressed size
    let memory_mib = (512 + img_mib * 6).clamp(1024, 16384);
    let dir = tempfile::tempdir().map_err(|e| BootError::io(std::env::temp_dir(), e))?;
    let log_path = dir.path().join("serial.log");
    let log_file = std::fs::File::create(&log_path).map_err(|e| BootError::io(&log_path, e))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| BootError::io(&log_path, e))?;
    let program = "qemu-system-x86_64";
    let mut cmd = Command::new(program);
    cmd.args([
        "-nographic",
        "-no-reboot",
        "-accel",
        "tcg",
        "-nic",
        "none",
        "-m",
    ])
    .arg(memory_mib.to_string())
    .arg("-kernel")
    .arg(&t.kernel)
    .arg("-initrd")
    .arg(&t.initrd)
    .arg("-append")
    .arg(format!("console=ttyS0 panic=-1 {}", t.append).trim_end())
    .arg("-drive")
    .arg(format!(
        "file={},format=raw,if=virtio,readonly=on",
        t.rootimg.display().to_string().replace(',', ",,")
    ))
    .args(extra_qemu_args)
    .stdin(Stdio::null())
    .stdout(log_file)
    .stderr(log_err);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| BootError::QemuStart {
        program: program.into(),
        source,
    })?;
    let marker = t.marker.as_bytes();
    let mut seen: Option<f64> = None;
    let read_log = || std::fs::read(&log_path).unwrap_or_default();
    let status = loop {
        if seen.is_none() && contains(&read_log(), marker) {
            seen = Some(start.elapsed().as_secs_f64());
        }
        match child.try_wait() {
            Ok(Some(st)) => break st.to_string(),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BootError::io(&log_path, e));
            }
        }
        let el = start.elapsed().as_secs_f64();
        if let Some(s) = seen
            && el > s + 15.0
        {
            let _ = child.kill();
            let _ = child.wait();
            break "stopped 15 s after the marker".to_string();
        }
        if seen.is_none() && start.elapsed() > t.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BootError::Timeout {
                seconds: t.timeout.as_secs(),
                marker: t.marker.clone(),
                log_tail: tail(&read_log(), 30),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = read_log();
    if seen.is_none() && contains(&log, marker) {
        seen = Some(start.elapsed().as_secs_f64());
    }
    let log_tail = tail(&log, 30);
    match seen {
        Some(s) => Ok(BootOutcome {
            seconds_to_marker: s,
            seconds_total: start.elapsed().as_secs_f64(),
            log: String::from_utf8_lossy(&log).into_owned(),
            log_tail,
            memory_mib,
        }),
        None => Err(BootError::MarkerNotSeen {
            status,
            marker: t.marker.clone(),
            log_tail,
        }),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn tail(log: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(log).replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Pad an archive file in place to a multiple of 512 bytes in a form its decompressor accepts
/// (a zstd *skippable frame*, an empty gzip member, xz stream padding, zeros after plain cpio;
/// see [`crate::archive::pad_stream`]), so that a raw disk made of it decompresses without
/// trailing garbage: a disk is whole sectors and qemu zero-fills the last one, which `zstd -d`
/// rejects. For archives that [`crate::archive::pack_dir`] writes, prefer its `pad_to` option.
pub fn pad_to_sector(path: &Path) -> Result<(), BootError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| BootError::io(path, e))?;
    let size = f.metadata().map_err(|e| BootError::io(path, e))?.len();
    let mut head = [0u8; 6];
    f.seek(SeekFrom::Start(0))
        .map_err(|e| BootError::io(path, e))?;
    f.read_exact(&mut head)
        .map_err(|e| BootError::io(path, e))?;
    let codec = if head[..4] == [0x28, 0xb5, 0x2f, 0xfd] {
        Compress::Zstd {
            level: 3,
            threads: 0,
        }
    } else if head[..2] == [0x1f, 0x8b] {
        Compress::Gzip { level: 6 }
    } else if head == [0xfd, b'7', b'z', b'X', b'Z', 0] {
        Compress::Xz { level: 6 }
    } else if &head == b"070701" || &head == b"070702" {
        Compress::None
    } else {
        return Err(BootError::BadOption {
            option: "pad_to_sector".into(),
            value: path.display().to_string(),
            why: "not a cpio, zstd, gzip or xz archive".into(),
        });
    };
    let pad = pad_stream(size, 512, &codec)?;
    f.write_all(&pad).map_err(|e| BootError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_a_skippable_frame() {
        let t = tempfile::tempdir().unwrap();
        for n in [1usize, 1000, 5000, 20000] {
            let p = t.path().join(format!("x{n}.zst"));
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(&p, zstd::stream::encode_all(&data[..], 3).unwrap()).unwrap();
            pad_to_sector(&p).unwrap();
            let bytes = std::fs::read(&p).unwrap();
            assert_eq!(bytes.len() % 512, 0);
            assert_eq!(zstd::stream::decode_all(&bytes[..]).unwrap(), data);
            pad_to_sector(&p).unwrap();
            assert_eq!(std::fs::read(&p).unwrap().len(), bytes.len());
        }
        let p = t.path().join("junk");
        std::fs::write(&p, b"not an archive").unwrap();
        assert!(pad_to_sector(&p).is_err());
    }
}

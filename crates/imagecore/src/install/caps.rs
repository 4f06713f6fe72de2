//! File capabilities: the header's text form (`cap_net_raw=ep`, as `cap_to_text` writes it)
//! encoded into the `security.capability` xattr as `vfs_cap_data` revision 2, like libcap's
//! `cap_set_file` does for a non-namespaced root.

const CAP_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

fn cap_bit(name: &str) -> Result<u64, String> {
    let n = name.trim().to_ascii_lowercase();
    let n = n.strip_prefix("cap_").unwrap_or(&n);
    if let Some(i) = CAP_NAMES.iter().position(|c| *c == n) {
        return Ok(1u64 << i);
    }
    n.parse::<u32>()
        .ok()
        .filter(|i| *i < 64)
        .map(|i| 1u64 << i)
        .ok_or_else(|| format!("unknown capability '{name}'"))
}

/// Encode capability text (libcap's `cap_from_text` grammar: clauses `caps[=+-]flags…`
/// separated by spaces) into a `vfs_cap_data` v2 xattr value (20 bytes). An empty text yields
/// `None` (no xattr); a text that sets nothing (`=`) still yields an all-zero value, as rpm
/// writes one.
pub fn encode_caps(text: &str) -> Result<Option<Vec<u8>>, String> {
    let all: u64 = (1u64 << CAP_NAMES.len()) - 1;
    let (mut eff, mut perm, mut inh) = (0u64, 0u64, 0u64);
    for clause in text.split_whitespace() {
        let Some(op_pos) = clause.find(['=', '+', '-']) else {
            return Err(format!("capability clause '{clause}' has no operator"));
        };
        let (names, mut rest) = clause.split_at(op_pos);
        let mut set = 0u64;
        if names.is_empty() || names.eq_ignore_ascii_case("all") {
            set = all;
        } else {
            for n in names.split(',') {
                set |= cap_bit(n)?;
            }
        }
        while !rest.is_empty() {
            let op = rest.as_bytes()[0];
            rest = &rest[1..];
            let end = rest.find(['=', '+', '-']).unwrap_or(rest.len());
            let flags = &rest[..end];
            rest = &rest[end..];
            if op == b'=' {
                eff &= !set;
                perm &= !set;
                inh &= !set;
            }
            for f in flags.chars() {
                let target = match f.to_ascii_lowercase() {
                    'e' => &mut eff,
                    'p' => &mut perm,
                    'i' => &mut inh,
                    _ => return Err(format!("bad capability flag '{f}' in '{clause}'")),
                };
                if op == b'-' {
                    *target &= !set;
                } else {
                    *target |= set;
                }
            }
        }
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut magic = VFS_CAP_REVISION_2;
    if eff != 0 {
        magic |= VFS_CAP_FLAGS_EFFECTIVE;
    }
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&(perm as u32).to_le_bytes());
    out.extend_from_slice(&(inh as u32).to_le_bytes());
    out.extend_from_slice(&((perm >> 32) as u32).to_le_bytes());
    out.extend_from_slice(&((inh >> 32) as u32).to_le_bytes());
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_raw_ep() {
        let v = encode_caps("cap_net_raw=ep").unwrap().unwrap();
        assert_eq!(
            v,
            [
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn multi_and_high_caps() {
        let v = encode_caps("cap_chown,cap_bpf+p cap_setuid+i")
            .unwrap()
            .unwrap();
        assert_eq!(u32::from_le_bytes(v[0..4].try_into().unwrap()), 0x0200_0000);
        assert_eq!(u32::from_le_bytes(v[4..8].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(v[8..12].try_into().unwrap()), 1 << 7);
        assert_eq!(
            u32::from_le_bytes(v[12..16].try_into().unwrap()),
            1 << (39 - 32)
        );
        assert_eq!(encode_caps("").unwrap(), None);
        assert_eq!(encode_caps("=").unwrap().unwrap()[..4], [0, 0, 0, 2]);
        assert!(encode_caps("cap_bogus=ep").is_err());
    }
}

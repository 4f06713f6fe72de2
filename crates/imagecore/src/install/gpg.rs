//! OpenPGP signature checks (`gpgcheck = true`): every package must carry a v4+ header
//! signature (`RSAHEADER` / `DSAHEADER` tags, or rpm 6's `OPENPGP`) made by one of the given
//! public keys, checked over the raw main header before anything of the package is unpacked.
//!
//! The signed header holds the payload's SHA256 (`PAYLOADSHA256`), which the payload reader
//! checks while streaming, so header signature + payload digest cover the whole package.
//! Packages signed only with legacy header+payload signatures (`PGP`/`GPG` tags, rpm < 4.14
//! without a header signature) and packages whose signed header has no payload digest are
//! refused: their signature would not cover what is unpacked.
//!
//! Keys: ASCII-armored OpenPGP public keys (`gpg --armor --export`, the usual
//! `RPM-GPG-KEY-*` files), RSA, EdDSA (Ed25519) and ECDSA, through the `rpm` crate's
//! `signature-pgp` verifier.

use std::path::{Path, PathBuf};

use rpm::signature::Verifying;
use rpm::signature::pgp::Verifier;
use rpm::{IndexSignatureTag, IndexTag};

use super::InstallError;
use crate::rpm::payload::RpmFile;

/// Public keys that packages must be signed with.
pub struct Keyring {
    keys: Vec<(PathBuf, Verifier)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(p, _)| p))
            .finish()
    }
}

fn key_err(path: &Path, message: impl Into<String>) -> InstallError {
    InstallError::Package {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl Keyring {
    /// Load the public keys in `files` (each may hold several certificates).
    pub fn load(files: &[PathBuf]) -> Result<Keyring, InstallError> {
        if files.is_empty() {
            return Err(key_err(
                Path::new("gpgkeys"),
                "gpgcheck is on but no public key file is given; list the vendor's RPM-GPG-KEY \
                 files in gpgkeys (or pass --gpgkey FILE)",
            ));
        }
        let mut keys = Vec::with_capacity(files.len());
        for f in files {
            let bytes = std::fs::read(f).map_err(|source| InstallError::Io {
                path: f.clone(),
                source,
            })?;
            if !String::from_utf8_lossy(&bytes).contains("-----BEGIN PGP PUBLIC KEY BLOCK") {
                return Err(key_err(
                    f,
                    "not an ASCII-armored OpenPGP public key; export it with \
                     `gpg --armor --export KEYID > FILE`",
                ));
            }
            let v = Verifier::from_asc_bytes(&bytes).map_err(|e| {
                key_err(
                    f,
                    format!(
                        "unusable OpenPGP public key ({e}); give an RSA, Ed25519 or ECDSA \
                         public key exported with `gpg --armor --export`"
                    ),
                )
            })?;
            keys.push((f.clone(), v));
        }
        Ok(Keyring { keys })
    }

    /// The key files, for messages.
    fn names(&self) -> String {
        self.keys
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Check the header signatures of `rpm` against the keys: Ok only if the package has at
    /// least one header signature and every header signature verifies with one of the keys.
    pub fn check(&self, rpm: &RpmFile) -> Result<(), InstallError> {
        let refuse = |message: String| InstallError::Package {
            path: rpm.path.clone(),
            message: format!("{message}; refusing it (gpgcheck = true)"),
        };
        let meta = &rpm.meta;
        let sigs = meta
            .raw_signatures()
            .map_err(|e| refuse(format!("unreadable signature header ({e})")))?;
        if sigs.is_empty() {
            let legacy = [
                IndexSignatureTag::RPMSIGTAG_PGP,
                IndexSignatureTag::RPMSIGTAG_GPG,
            ]
            .iter()
            .any(|t| meta.signature.entry_is_present(*t));
            return Err(refuse(if legacy {
                "has only a legacy header+payload (v3) signature and no header signature; \
                 re-sign it with `rpmsign --addsign` (rpm >= 4.14)"
                    .to_string()
            } else {
                format!(
                    "is not signed (expected a signature by a key in {})",
                    self.names()
                )
            }));
        }
        let has_payload_digest = meta.header.entry_is_present(IndexTag::RPMTAG_PAYLOADSHA256);
        if !has_payload_digest {
            return Err(refuse(
                "has no payload SHA256 in its signed header, so the signature does not cover \
                 the payload; rebuild it with rpm >= 4.14"
                    .to_string(),
            ));
        }
        let infos = meta.signatures().map_err(|e| {
            refuse(format!(
                "carries a signature osimage cannot check ({e}); RSA, EdDSA and ECDSA \
                 signatures are supported"
            ))
        })?;
        for (sig, info) in sigs.iter().zip(&infos) {
            let who = signer(info);
            let mut tampered = None;
            let mut ok = false;
            for (file, v) in &self.keys {
                match v.verify(rpm.header_blob.as_slice(), sig) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(rpm::Error::KeyNotFoundError { .. }) => {}
                    Err(e) => tampered = Some((file, e)),
                }
            }
            if ok {
                continue;
            }
            return Err(refuse(match tampered {
                Some((file, e)) => format!(
                    "signature by {who} does not verify with the key in {} ({e}): the \
                     package was modified after signing or is corrupted",
                    file.display()
                ),
                None => format!(
                    "is signed by {who}, which is not in the given keys ({}); add that \
                     key's file to gpgkeys if you trust it",
                    self.names()
                ),
            }));
        }
        Ok(())
    }
}

/// "key 0x… (RSA/SHA256)" for messages.
fn signer(info: &rpm::signature::SignatureInfo) -> String {
    let id = info
        .fingerprint()
        .or(info.key_id())
        .map(|k| format!("key {}", k.to_uppercase()))
        .unwrap_or_else(|| "an unidentified key".to_string());
    match (info.algorithm(), info.hash_algorithm()) {
        (Some(a), Some(h)) => format!("{id} ({a:?}/{h:?})"),
        (Some(a), None) => format!("{id} ({a:?})"),
        _ => id,
    }
}

/// The `gpgkeys` of a spec's `[repos]` when `gpgcheck = true` (None: no signature check).
pub fn spec_keys(spec: &crate::spec::Spec) -> Option<Vec<PathBuf>> {
    let r = spec.repos.as_ref()?;
    r.gpgcheck
        .then(|| r.gpgkeys.iter().map(|k| k.value.clone()).collect())
}

/// Put `gpgcheck` and the key files' contents into a node's key.
pub fn key_inputs(i: &mut crate::graph::step::Inputs, keys: Option<&[PathBuf]>) {
    i.option("gpgcheck", keys.is_some());
    for k in keys.unwrap_or_default() {
        i.file(format!("gpgkey {}", k.display()), k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpgcheck_and_key_contents_enter_the_node_key() {
        let t = tempfile::tempdir().unwrap();
        let k = t.path().join("RPM-GPG-KEY-test");
        std::fs::write(&k, "key").unwrap();
        let mut on = crate::graph::step::Inputs::default();
        key_inputs(&mut on, Some(std::slice::from_ref(&k)));
        let mut off = crate::graph::step::Inputs::default();
        key_inputs(&mut off, None);
        assert_eq!(on.options.get("gpgcheck").map(String::as_str), Some("true"));
        assert_eq!(
            off.options.get("gpgcheck").map(String::as_str),
            Some("false")
        );
        assert_eq!(on.files.len(), 1);
        assert_eq!(on.files[0].path, k);
        assert!(off.files.is_empty());
    }

    #[test]
    fn keys_must_be_armored_and_present() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("key.gpg");
        std::fs::write(&bin, [0x99u8, 0x01, 0x0d]).unwrap();
        let e = Keyring::load(std::slice::from_ref(&bin))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key.gpg") && e.contains("ASCII-armored"), "{e}");
        let e = Keyring::load(&[]).unwrap_err().to_string();
        assert!(e.contains("gpgkeys"), "{e}");
        let e = Keyring::load(&[t.path().join("missing.asc")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.asc"), "{e}");
    }
}

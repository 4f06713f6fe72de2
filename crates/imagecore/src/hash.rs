//! The 32-byte blake3 digest used for blob ids, manifest ids and node keys.

use std::fmt;

/// A blake3 digest. Displayed and serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Hash a byte slice.
    pub fn of(data: &[u8]) -> Hash {
        Hash(*blake3::hash(data).as_bytes())
    }

    /// Lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash(out))
    }

    /// The first 12 hex digits, for display.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }

    /// Hash everything `r` yields; returns the hash and the length. Reads [`READ_CHUNK`] bytes
    /// at a time, each chunk hashed on all cores: memory stays bounded whatever the size (a
    /// memory map of the whole file, as `update_mmap_rayon` makes, puts every page of it in
    /// the process's resident set).
    pub fn of_reader(r: &mut impl std::io::Read) -> std::io::Result<(Hash, u64)> {
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut total = 0u64;
        loop {
            let n = crate::ioutil::read_full(r, &mut buf)?;
            if n == 0 {
                break;
            }
            h.update_rayon(&buf[..n]);
            total += n as u64;
        }
        Ok((Hash::from(h.finalize()), total))
    }
}

/// Chunk size of [`Hash::of_reader`].
pub const READ_CHUNK: usize = 4 << 20;

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = Hash::of(b"abc");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(h.to_hex(), blake3::hash(b"abc").to_hex().to_string());
        assert!(Hash::from_hex("zz").is_none());
    }

    #[test]
    fn of_reader_matches_of() {
        let mut data = vec![0u8; READ_CHUNK * 2 + 12345];
        blake3::Hasher::new()
            .update(b"seed")
            .finalize_xof()
            .fill(&mut data);
        let (h, n) = Hash::of_reader(&mut &data[..]).unwrap();
        assert_eq!((h, n), (Hash::of(&data), data.len() as u64));
        assert_eq!(Hash::of_reader(&mut &b""[..]).unwrap(), (Hash::of(b""), 0));
    }
}

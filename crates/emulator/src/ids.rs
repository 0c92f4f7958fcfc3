//! Random identifiers: UUIDs (AWS's thing, thing type and group ids, lifecycle
//! session ids) and the access keys the HTTPS API issues.

/// A random (version 4) UUID, e.g. `0b7c6e4e-3f0a-4f7e-9d43-2a1b5c6d7e8f`.
pub(crate) fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `len` random characters from `alphabet`.
pub(crate) fn random_string(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, new_uuid());
    }

    #[test]
    fn random_strings_use_the_alphabet() {
        let s = random_string(b"AB", 40);
        assert_eq!(s.len(), 40);
        assert!(s.bytes().all(|b| b == b'A' || b == b'B'));
    }
}

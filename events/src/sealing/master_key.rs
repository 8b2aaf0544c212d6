//! The master key: it wraps every participant's data key, so the key store
//! alone (a database row, a backup) opens nothing. It lives outside the
//! databases — a file only its owner can read, or an environment variable —
//! and is never written anywhere by utfall except when it creates the
//! embedded default.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Generate, Key};

use super::SealingError;
use super::cipher::{open, seal};

/// Length of a key, in bytes (256 bits).
const KEY_BYTES: usize = 32;

/// A 256-bit key, written as 64 hexadecimal digits.
#[derive(Clone)]
pub struct MasterKey(Key<XChaCha20Poly1305>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        Self(Key::<XChaCha20Poly1305>::generate())
    }

    /// Reads a key written as 64 hexadecimal digits (surrounding
    /// whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, SealingError> {
        let bytes = hex_bytes(text.trim()).ok_or(SealingError::MasterKeyFormat)?;
        Ok(Self(Key::<XChaCha20Poly1305>::from(bytes)))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_file(path: &Path) -> Result<Self, SealingError> {
        let text = std::fs::read_to_string(path).map_err(|source| SealingError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_hex(&text).map_err(|_| SealingError::MasterKeyFileFormat(path.display().to_string()))
    }

    /// The key in `path`; when there is no such file, a new key written
    /// there readable by its owner only (the embedded default).
    pub fn from_file_or_create(path: &Path) -> Result<Self, SealingError> {
        if path.exists() {
            return Self::from_file(path);
        }
        let key = Self::generate();
        let io = |source| SealingError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(format!("{}\n", key.to_hex()).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(key)
    }

    /// Seals `secret` so that only this key opens it, and only for `context`
    /// (a wrapped key copied to another participant's row does not open).
    pub(crate) fn wrap(&self, secret: &[u8], context: &str) -> Result<Vec<u8>, SealingError> {
        seal(&self.0, secret, context.as_bytes())
    }

    pub(crate) fn unwrap(&self, wrapped: &[u8], context: &str) -> Option<Vec<u8>> {
        open(&self.0, wrapped, context.as_bytes())
    }
}

fn hex_bytes(text: &str) -> Option<[u8; KEY_BYTES]> {
    if text.len() != 2 * KEY_BYTES || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0; KEY_BYTES];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_secret_opens_only_with_its_key_and_context() {
        let key = MasterKey::generate();
        let wrapped = key.wrap(b"secret", "p/x").expect("wrap");
        assert_eq!(key.unwrap(&wrapped, "p/x").as_deref(), Some(&b"secret"[..]));
        assert_eq!(key.unwrap(&wrapped, "p/y"), None);
        assert_eq!(MasterKey::generate().unwrap(&wrapped, "p/x"), None);
        let mut altered = wrapped.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(key.unwrap(&altered, "p/x"), None);
    }

    #[test]
    fn a_key_reads_back_from_its_hex_form_and_bad_text_is_refused() {
        let key = MasterKey::generate();
        let again = MasterKey::from_hex(&format!(" {}\n", key.to_hex())).expect("hex");
        assert_eq!(again.to_hex(), key.to_hex());
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(MasterKey::from_hex(&"zz".repeat(KEY_BYTES)).is_err());
    }

    #[test]
    fn the_created_default_is_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("master.key");
        let created = MasterKey::from_file_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(MasterKey::from_file_or_create(&path).expect("read").to_hex(), created.to_hex());
    }
}

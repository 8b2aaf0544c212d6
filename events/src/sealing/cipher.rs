//! The one authenticated cipher every seal uses, XChaCha20-Poly1305: its
//! 192-bit nonces are drawn at random, with no counter to keep across
//! processes. A sealed message is `nonce || ciphertext`.

use chacha20poly1305::aead::{Aead, AeadInOut, Generate, Key, KeyInit, Payload, Tag};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::SealingError;

const NONCE_BYTES: usize = 24;

/// `nonce || ciphertext` of `message` under `key`, bound to `aad`.
pub(super) fn seal(key: &Key<XChaCha20Poly1305>, message: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealingError> {
    let nonce = XNonce::generate();
    let mut out = nonce.to_vec();
    // Fails only for a message beyond the cipher's limit (256 GiB).
    let sealed = XChaCha20Poly1305::new(key)
        .encrypt(&nonce, Payload { msg: message, aad })
        .map_err(|_| SealingError::TooLong)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The message [`seal`] sealed, or none when `sealed` is not such a
/// message under this key and `aad` (wrong key, altered bytes).
pub(super) fn open(key: &Key<XChaCha20Poly1305>, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let mut buffer = sealed.to_vec();
    Some(open_in_place(key, &mut buffer, aad)?.to_vec())
}

/// [`open`], decrypting within `sealed` (no copy: events are opened by
/// the million in a rebuild); the message is the slice returned.
pub(super) fn open_in_place<'a>(key: &Key<XChaCha20Poly1305>, sealed: &'a mut [u8], aad: &[u8]) -> Option<&'a [u8]> {
    const TAG_BYTES: usize = 16;
    let message_len = sealed.len().checked_sub(NONCE_BYTES + TAG_BYTES)?;
    let (nonce, rest) = sealed.split_at_mut(NONCE_BYTES);
    let (message, tag) = rest.split_at_mut(message_len);
    let nonce = XNonce::try_from(&*nonce).ok()?;
    let tag = Tag::<XChaCha20Poly1305>::try_from(&*tag).ok()?;
    XChaCha20Poly1305::new(key)
        .decrypt_inout_detached(&nonce, aad, (&mut *message).into(), &tag)
        .ok()?;
    Some(message)
}


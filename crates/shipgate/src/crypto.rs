//! Envelope for secrets at rest: XChaCha20-Poly1305 (RustCrypto) under a versioned
//! master key. The associated data binds each ciphertext to its tenant, connection and
//! purpose, so a ciphertext copied into another row does not decrypt.
//!
//! Layout: `[key_id: u8][nonce: 24 bytes][ciphertext + tag]`. Random 192-bit nonces
//! are safe to draw at random (no counter to coordinate between instances). Rotation:
//! set a new `SHIPGATE_MASTER_KEY`/`master_key_id` and keep the old key in
//! `SHIPGATE_PREVIOUS_MASTER_KEYS`; rows written from then on use the new key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;

/// Install the ring crypto provider for rustls once: with sqlx on ring and reqwest able to
/// pick aws-lc-rs, rustls refuses to choose on its own (docs/architecture.md, toolchain
/// trap 3: one provider).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext was written with master key {0}, which is not configured")]
    UnknownKey(u8),
    #[error("ciphertext does not decrypt for this row (tampered, moved, or wrong key)")]
    Invalid,
}

pub struct Crypto {
    current: (u8, XChaCha20Poly1305),
    all: Vec<(u8, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto").field("current_key_id", &self.current.0).finish_non_exhaustive()
    }
}

/// What a ciphertext is for; part of the associated data.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Credentials,
    Token,
    /// A webhook endpoint's signing secret (the "connection" id is the endpoint id).
    WebhookSecret,
    /// A response kept for Idempotency-Key replays (the "connection" id is the key).
    IdempotentResponse,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Credentials => "credentials",
            Purpose::Token => "token",
            Purpose::WebhookSecret => "webhook_secret",
            Purpose::IdempotentResponse => "idempotent_response",
        }
    }
}

fn aad(tenant_id: &str, connection_id: &str, purpose: Purpose) -> Vec<u8> {
    format!("shipgate:v1:{}:{tenant_id}:{connection_id}", purpose.as_str()).into_bytes()
}

impl Crypto {
    /// `keys[0]` is the current key. Panics never: an empty list is refused by config.
    pub fn new(keys: &[(u8, [u8; 32])]) -> Option<Crypto> {
        let all: Vec<_> = keys.iter().map(|(id, k)| (*id, XChaCha20Poly1305::new(k.into()))).collect();
        let current = all.first()?.clone();
        Some(Crypto { current, all })
    }

    pub fn encrypt(&self, tenant_id: &str, connection_id: &str, purpose: Purpose, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad(tenant_id, connection_id, purpose);
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ct = self
            .current
            .1
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + 24 + ct.len());
        out.push(self.current.0);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn decrypt(
        &self,
        tenant_id: &str,
        connection_id: &str,
        purpose: Purpose,
        blob: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if blob.len() < 1 + 24 + 16 {
            return Err(CryptoError::Invalid);
        }
        let key_id = blob[0];
        let cipher =
            self.all.iter().find(|(id, _)| *id == key_id).map(|(_, c)| c).ok_or(CryptoError::UnknownKey(key_id))?;
        let aad = aad(tenant_id, connection_id, purpose);
        cipher
            .decrypt(XNonce::from_slice(&blob[1..25]), Payload { msg: &blob[25..], aad: &aad })
            .map_err(|_| CryptoError::Invalid)
    }

    /// Whether a ciphertext was written with an older key (re-encrypt on next write).
    /// The id of the key new ciphertexts are written with.
    pub fn current_id(&self) -> u8 {
        self.current.0
    }

    pub fn is_current(&self, blob: &[u8]) -> bool {
        blob.first() == Some(&self.current.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crypto() -> Crypto {
        Crypto::new(&[(2, [7u8; 32]), (1, [9u8; 32])]).expect("keys")
    }

    #[test]
    fn round_trips_and_binds_the_row() {
        let c = crypto();
        let blob = c.encrypt("ten_a", "con_1", Purpose::Credentials, b"{\"password\":\"x\"}");
        assert_eq!(
            c.decrypt("ten_a", "con_1", Purpose::Credentials, &blob).expect("decrypts"),
            b"{\"password\":\"x\"}"
        );
        assert!(c.decrypt("ten_b", "con_1", Purpose::Credentials, &blob).is_err(), "other tenant");
        assert!(c.decrypt("ten_a", "con_2", Purpose::Credentials, &blob).is_err(), "other connection");
        assert!(c.decrypt("ten_a", "con_1", Purpose::Token, &blob).is_err(), "other purpose");
    }

    #[test]
    fn old_keys_still_decrypt_after_rotation() {
        let old = Crypto::new(&[(1, [9u8; 32])]).expect("keys");
        let blob = old.encrypt("t", "c", Purpose::Token, b"guid");
        let rotated = crypto();
        assert!(!rotated.is_current(&blob));
        assert_eq!(rotated.decrypt("t", "c", Purpose::Token, &blob).expect("decrypts"), b"guid");
        let only_new = Crypto::new(&[(2, [7u8; 32])]).expect("keys");
        assert!(matches!(only_new.decrypt("t", "c", Purpose::Token, &blob), Err(CryptoError::UnknownKey(1))));
    }
}

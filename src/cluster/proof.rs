//! Proof that a peer's answer comes from a holder of the shared token: every request to a peer
//! carries a fresh random nonce, and the peer signs its answer — the nonce, the status and the
//! body — with HMAC-SHA256 keyed by the token. A peer that lacks the token (misconfigured, or
//! anything else answering at its address) cannot make the proof, so its drains and views are
//! never taken; an answer recorded earlier cannot be replayed, since its nonce is not the one
//! asked with. The token itself is never sent back.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::fingerprint::hex;
use crate::config::AdminToken;

/// The request header with the nonce.
pub const NONCE_HEADER: &str = "x-smarthostd-nonce";
/// The response header with the proof.
pub const PROOF_HEADER: &str = "x-smarthostd-proof";
/// Bytes of randomness in a nonce.
const NONCE_BYTES: usize = 16;

/// A fresh nonce: 32 hex digits from the system's random source.
pub fn nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    // The system source does not fail on Linux once booted; fall back to less, never to none.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    hex(&bytes)
}

/// Whether `text` is a nonce as [`nonce`] makes them.
pub fn valid_nonce(text: &str) -> bool {
    text.len() == 2 * NONCE_BYTES && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn message(nonce: &str, status: u16, body: &[u8]) -> Vec<u8> {
    let mut m = format!("smarthostd-cluster-1\n{nonce}\n{status}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// The proof of an answer with `status` and `body` to a request with `nonce`.
pub fn sign(token: &AdminToken, nonce: &str, status: u16, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.expose().as_bytes());
    hex(hmac::sign(&key, &message(nonce, status, body)).as_ref())
}

/// Whether `proof` proves the answer, in constant time.
pub fn verify(token: &AdminToken, nonce: &str, status: u16, body: &[u8], proof: &str) -> bool {
    let Some(tag) = unhex(proof) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.expose().as_bytes());
    hmac::verify(&key, &message(nonce, status, body), &tag).is_ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_for_its_answer_only_and_only_under_the_token() {
        let token = AdminToken::new("shared-secret");
        let n = nonce();
        assert!(valid_nonce(&n));
        let proof = sign(&token, &n, 200, b"body");
        assert!(verify(&token, &n, 200, b"body", &proof));
        assert!(!verify(&token, &n, 200, b"bodY", &proof));
        assert!(!verify(&token, &n, 422, b"body", &proof));
        assert!(!verify(&token, &nonce(), 200, b"body", &proof), "a replay");
        assert!(!verify(&AdminToken::new("other"), &n, 200, b"body", &proof));
        assert!(!verify(&token, &n, 200, b"body", "zz"));
        assert!(!verify(&token, &n, 200, b"body", ""));
        assert!(!proof.contains("shared-secret"));
    }

    #[test]
    fn nonces_are_fresh_hex() {
        assert_ne!(nonce(), nonce());
        assert!(!valid_nonce("xyz"));
        assert!(!valid_nonce(&"g".repeat(32)));
    }
}

//! Stream capabilities: random bearer tokens handed out once, kept only as hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A freshly minted token and the hash that is stored instead of it.
pub struct Minted {
    pub token: String,
    pub hash: String,
}

/// 128 random bits, hex, behind a prefix that says what the token is for (`rt_`, `wt_`).
pub fn mint(prefix: &str) -> Minted {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", hex(&bytes));
    let hash = hash(&token);
    Minted { token, hash }
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_only_their_hash_matches() {
        let a = mint("rt_");
        let b = mint("rt_");
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 3 + 32);
        assert_eq!(hash(&a.token), a.hash);
        assert_ne!(hash(&b.token), a.hash);
    }
}

//! The keys a tenant lends its handlers without handing them over: the
//! pseudonymisation secret and the token vault behind the `vault` import.
//! A token is computed here, from a key derived from the tenant secret, so
//! the guest never sees the key; the vault (the broker's metadata store)
//! only remembers what each token stands for, so that an admin can reverse
//! it. Tokens are deterministic, so a retried message gets the tokens it got
//! the first time and joins keep working.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

/// Where the host keeps what each token stands for. Called on the
/// handler's worker thread, during a call; the implementation must make the
/// mapping durable before any output of that call leaves the node (the
/// broker flushes the vault before it publishes a batch).
pub trait TokenVault: Send + Sync {
    /// Remembers that `token` stands for (`domain`, `value`). Remembering
    /// the same token twice is not an error.
    fn remember(&self, token: &str, domain: &str, value: &str) -> Result<(), VaultError>;
}

/// Why a token could not be issued; the guest sees the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the vault is full: {0} tokens (tokens_max)")]
    Full(u64),
    #[error("the vault cannot be written: {0}")]
    Storage(String),
}

/// A tenant's keys as the runtime holds them.
#[derive(Clone)]
pub struct TenantKeys {
    /// The pseudonymisation secret (HMAC key of `pseudonymize`).
    pub(crate) secret: Arc<[u8]>,
    /// HMAC key of `tokenize`, derived from the secret, so a token and a
    /// pseudonym of the same value are unrelated.
    pub(crate) token_key: Arc<[u8]>,
    /// `None`: `tokenize` fails with "no vault".
    pub(crate) vault: Option<Arc<dyn TokenVault>>,
}

impl TenantKeys {
    /// Keys with no vault: `tokenize` is refused.
    pub fn new(secret: Arc<[u8]>) -> Self {
        let token_key = hmac(&secret, &[b"sluice:token-key"]);
        TenantKeys {
            secret,
            token_key: token_key.as_slice().into(),
            vault: None,
        }
    }

    /// Keys whose tokens are remembered by `vault`.
    pub fn with_vault(secret: Arc<[u8]>, vault: Arc<dyn TokenVault>) -> Self {
        TenantKeys {
            vault: Some(vault),
            ..TenantKeys::new(secret)
        }
    }

    /// The token of (`domain`, `value`): `tok_` and 32 hex characters.
    pub fn token_of(&self, domain: &str, value: &str) -> String {
        let tag = hmac(
            &self.token_key,
            &[
                &(domain.len() as u64).to_be_bytes(),
                domain.as_bytes(),
                value.as_bytes(),
            ],
        );
        let mut out = String::with_capacity(36);
        out.push_str("tok_");
        push_hex(&mut out, &tag[..16]);
        out
    }
}

impl From<Arc<[u8]>> for TenantKeys {
    fn from(secret: Arc<[u8]>) -> Self {
        TenantKeys::new(secret)
    }
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.debug_struct("TenantKeys")
            .field("vault", &self.vault.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_per_secret_and_unrelated_to_pseudonyms() {
        let a = TenantKeys::new(b"secret a".as_slice().into());
        let b = TenantKeys::new(b"secret b".as_slice().into());
        let t = a.token_of("EMAIL", "x@y.z");
        assert_eq!(t, a.token_of("EMAIL", "x@y.z"));
        assert!(t.starts_with("tok_") && t.len() == 36, "{t}");
        assert_ne!(t, b.token_of("EMAIL", "x@y.z"));
        assert_ne!(t, a.token_of("EMAILx", "@y.z"));
        assert_ne!(t, a.token_of("EMAIL", "x@y.zz"));
        assert_ne!(
            &t[4..],
            crate::pseudonymize(b"secret a", "EMAIL", "x@y.z"),
            "a token must not be the pseudonym"
        );
        assert!(!format!("{a:?}").contains("secret"));
    }
}

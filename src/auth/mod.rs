//! Who is calling: client API keys (kept as hashes, compared in constant time), the caller
//! of a request, which models a key may use, and its limits.

mod config;
mod limits;

pub use config::{KeyConfig, MIN_KEY_LEN, Secret, validate_keys};
pub use limits::StreamPermit;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use limits::RateLimit;

/// The owner of streams made while no keys are configured.
pub const ANONYMOUS: &str = "anonymous";

/// One configured client key. The key itself is not kept, only its SHA-256.
pub struct ClientKey {
    pub name: String,
    hash: [u8; 32],
    models: Vec<String>,
    rate: RateLimit,
    max_streams: usize,
    active: AtomicUsize,
}

impl ClientKey {
    /// Whether the key may use `model`: listed exactly, or under a `prefix*` pattern.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty()
            || self
                .models
                .iter()
                .any(|allowed| match allowed.strip_suffix('*') {
                    Some(prefix) => model.starts_with(prefix),
                    None => allowed == model,
                })
    }

    /// Counts one request; `Err` with how long to wait when the key is over its rate.
    pub fn check_rate(&self) -> Result<(), Duration> {
        self.rate.check()
    }

    pub fn per_minute(&self) -> u32 {
        self.rate.per_minute
    }
}

/// The configured keys; empty when the server runs without keys.
#[derive(Default)]
pub struct Keys {
    keys: Vec<Arc<ClientKey>>,
}

impl Keys {
    /// `defaults` are `(streams, requests per minute)` for keys that set none.
    pub fn new(config: &[KeyConfig], defaults: (usize, u32)) -> Self {
        let keys = config
            .iter()
            .filter_map(|k| {
                let secret = k.key.as_ref()?;
                Some(Arc::new(ClientKey {
                    name: k.name.clone(),
                    hash: Sha256::digest(secret.0.as_bytes()).into(),
                    models: k.models.clone(),
                    rate: RateLimit::per_minute(k.requests_per_minute.unwrap_or(defaults.1)),
                    max_streams: k.max_concurrent_streams.unwrap_or(defaults.0),
                    active: AtomicUsize::new(0),
                }))
            })
            .collect();
        Self { keys }
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The key `shown` is. Every key is compared, in constant time, whatever matches.
    pub fn find(&self, shown: &str) -> Option<Arc<ClientKey>> {
        let digest: [u8; 32] = Sha256::digest(shown.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&digest)) {
                found = Some(Arc::clone(key));
            }
        }
        found
    }
}

/// Who made a request.
#[derive(Clone)]
pub enum Caller {
    /// No keys are configured: every caller is the same anonymous owner.
    Open,
    /// Authenticated by a client key.
    Key(Arc<ClientKey>),
    /// Keys are configured and the request showed none (it may still show a stream token).
    Nobody,
}

impl Caller {
    /// The owner recorded on streams this caller creates.
    pub fn owner(&self) -> &str {
        match self {
            Self::Key(key) => &key.name,
            Self::Open | Self::Nobody => ANONYMOUS,
        }
    }

    /// Whether the caller may use `model` (anyone may when no keys are configured).
    pub fn allows_model(&self, model: &str) -> bool {
        match self {
            Self::Open => true,
            Self::Key(key) => key.allows_model(model),
            Self::Nobody => false,
        }
    }

    /// A slot among the key's concurrent streams; `Ok(None)` when keys are off, `Err(max)`
    /// when the key already runs its maximum.
    pub fn stream_permit(&self) -> Result<Option<StreamPermit>, usize> {
        match self {
            Self::Key(key) => StreamPermit::take(key).map(Some).ok_or(key.max_streams),
            Self::Open | Self::Nobody => Ok(None),
        }
    }
}

/// The client key a request shows: `x-api-key` (Anthropic's SDKs), or a bearer value that is
/// not a stream token (OpenAI's SDKs).
pub fn shown_key(headers: &HeaderMap) -> Option<&str> {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) {
        return Some(key);
    }
    let bearer = bearer(headers)?;
    (!is_stream_token(bearer) && !bearer.is_empty()).then_some(bearer)
}

/// The value of `Authorization: Bearer …` (the scheme in any case), trimmed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}

/// Stream tokens are told apart from client keys by their prefix.
pub fn is_stream_token(value: &str) -> bool {
    value.starts_with("rt_") || value.starts_with("wt_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        let mut config = KeyConfig::parse_list("web=sk-web-0123456789abcdef,sk-other-0123456789");
        config[0].models = vec!["mock/*".into(), "gpt-4o".into()];
        Keys::new(&config, (2, 60))
    }

    #[test]
    fn keys_are_found_by_value_and_named() {
        let keys = keys();
        assert_eq!(keys.find("sk-web-0123456789abcdef").unwrap().name, "web");
        assert_eq!(keys.find("sk-other-0123456789").unwrap().name, "key2");
        assert!(keys.find("sk-web-0123456789abcde").is_none());
        assert!(keys.find("").is_none());
    }

    #[test]
    fn a_model_allowlist_takes_names_and_prefixes() {
        let web = keys().find("sk-web-0123456789abcdef").unwrap();
        assert!(web.allows_model("mock/default"));
        assert!(web.allows_model("gpt-4o"));
        assert!(!web.allows_model("gpt-4o-mini"));
        assert!(!web.allows_model("openai/gpt-4o"));
    }

    #[test]
    fn a_base64_key_with_padding_stays_a_key_and_never_a_name() {
        let parsed =
            KeyConfig::parse_list("c2VjcmV0LWtleS0xMjM0NTY3OA==,abcdefgh=ijklmnopqrstuvwxyz");
        assert_eq!(parsed[0].name, "key1");
        assert_eq!(
            parsed[0].key.as_ref().unwrap().0,
            "c2VjcmV0LWtleS0xMjM0NTY3OA=="
        );
        assert_eq!(parsed[1].name, "abcdefgh");
        let short = KeyConfig::parse_list("web=short=0123456789abcdefgh");
        assert_eq!(short[0].name, "web");
        assert_eq!(short[0].key.as_ref().unwrap().0, "short=0123456789abcdefgh");
    }

    #[test]
    fn stream_tokens_are_not_taken_for_keys() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer rt_abc".parse().unwrap());
        assert_eq!(shown_key(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer sk-1".parse().unwrap());
        assert_eq!(shown_key(&headers), Some("sk-1"));
        headers.insert(header::AUTHORIZATION, "bearer sk-3".parse().unwrap());
        assert_eq!(shown_key(&headers), Some("sk-3"), "the scheme in any case");
        headers.insert("x-api-key", "".parse().unwrap());
        assert_eq!(
            shown_key(&headers),
            Some("sk-3"),
            "an empty x-api-key hides nothing"
        );
        headers.insert("x-api-key", "sk-2".parse().unwrap());
        assert_eq!(shown_key(&headers), Some("sk-2"));
    }

    #[test]
    fn concurrent_streams_are_counted_until_their_permits_drop() {
        let caller = Caller::Key(keys().find("sk-web-0123456789abcdef").unwrap());
        let first = caller.stream_permit().unwrap();
        let second = caller.stream_permit().unwrap();
        assert_eq!(caller.stream_permit().err(), Some(2));
        drop(first);
        assert!(caller.stream_permit().is_ok());
        drop(second);
    }
}

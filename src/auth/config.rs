//! Client API keys as the config file and the environment spell them, and their checks.

use std::fmt;

use serde::Deserialize;

use crate::config::{ConfigError, Env};

/// A secret from the config: shown as `***` by `Debug`, so printing the configuration
/// (`check-config`, logs) never prints it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// One `[[keys]]` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Who the key is: streams it creates are owned by this name; metrics and logs show it.
    pub name: String,
    /// The key itself, or
    #[serde(default)]
    pub key: Option<Secret>,
    /// the environment variable that holds it (keeps the secret out of the file).
    #[serde(default)]
    pub key_env: Option<String>,
    /// Model names (or `prefix*` patterns) the key may use; empty means every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Overrides `limits.max_streams_per_key` for this key.
    #[serde(default)]
    pub max_concurrent_streams: Option<usize>,
    /// Overrides `limits.requests_per_minute_per_key` for this key.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
}

/// Shortest key accepted: anything shorter is guessable.
pub const MIN_KEY_LEN: usize = 16;
const MAX_NAME_LEN: usize = 64;

impl KeyConfig {
    /// `TOKENRELAY_API_KEYS` / `--api-keys`: comma-separated `name=key` or bare keys (named
    /// `key1`, `key2`, … by position).
    pub fn parse_list(list: &str) -> Vec<KeyConfig> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .enumerate()
            .map(|(i, item)| {
                // `name=key` only when the left side is a name and the right a whole key: a
                // base64 key ends in `=` and may hold one, and must not become a name.
                let named = item.split_once('=').filter(|(name, key)| {
                    valid_name(name.trim()) && key.trim().len() >= MIN_KEY_LEN
                });
                let (name, key) = match named {
                    Some((name, key)) => (name.trim().to_owned(), key.trim().to_owned()),
                    None => (format!("key{}", i + 1), item.to_owned()),
                };
                KeyConfig {
                    name,
                    key: Some(Secret(key)),
                    ..KeyConfig::default()
                }
            })
            .collect()
    }

    /// Fills `key` from `key_env`.
    pub fn resolve(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        if let Some(var) = &self.key_env {
            let value = env.var(var).ok_or_else(|| {
                ConfigError::invalid(
                    "keys.key_env",
                    format!("key `{}`: environment variable {var} is not set", self.name),
                )
            })?;
            self.key = Some(Secret(value));
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Checks every key and that names and keys are unique. Messages name a key by its entry and
/// name, never by its value.
pub fn validate_keys(keys: &[KeyConfig]) -> Result<(), ConfigError> {
    for (i, k) in keys.iter().enumerate() {
        if !valid_name(&k.name) {
            return Err(ConfigError::invalid(
                format!("keys[{i}].name"),
                format!(
                    "key #{}: `name` must be 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 - _ .",
                    i + 1
                ),
            ));
        }
        // Streams made without keys are owned by this name: no key may take them over.
        if k.name == super::ANONYMOUS {
            return Err(ConfigError::invalid(
                format!("keys[{i}].name"),
                format!(
                    "`{}` is reserved for streams made without keys",
                    super::ANONYMOUS
                ),
            ));
        }
        let Some(Secret(key)) = &k.key else {
            return Err(ConfigError::invalid(
                format!("keys[{i}].key"),
                format!("key `{}` needs `key` or `key_env`", k.name),
            ));
        };
        if key.len() < MIN_KEY_LEN || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::invalid(
                format!("keys[{i}].key"),
                format!(
                    "key `{}` must be at least {MIN_KEY_LEN} characters without spaces",
                    k.name
                ),
            ));
        }
        // Stream tokens are told apart from keys by these prefixes.
        if super::is_stream_token(key) {
            return Err(ConfigError::invalid(
                format!("keys[{i}].key"),
                format!("key `{}` must not start with rt_ or wt_", k.name),
            ));
        }
        if k.requests_per_minute == Some(0) || k.max_concurrent_streams == Some(0) {
            return Err(ConfigError::invalid(
                format!("keys[{i}]"),
                format!("key `{}`: limits must be at least 1", k.name),
            ));
        }
        for other in &keys[..i] {
            if other.name == k.name {
                return Err(ConfigError::invalid(
                    format!("keys[{i}].name"),
                    format!("two keys are named `{}`", k.name),
                ));
            }
            if other.key == k.key {
                return Err(ConfigError::invalid(
                    format!("keys[{i}].key"),
                    format!("keys `{}` and `{}` are the same key", other.name, k.name),
                ));
            }
        }
    }
    Ok(())
}

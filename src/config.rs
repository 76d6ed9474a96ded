//! Configuration: defaults, then `tokenrelay.toml`, then environment and flags (clap merges
//! those two). Upstream credentials come only from the environment, read through [`Env`] so
//! tests never touch the real one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod sections;
mod validate;

pub use sections::{Agents, Limits, Redis, Routing, Transcription, Upstream};
pub use validate::line_of;

use crate::auth::KeyConfig;
use crate::providers::ModelAlias;

/// The whole configuration, as the TOML file spells it. Every field has a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    /// A second address that serves only `/metrics`, `/healthz` and `/readyz`; when set,
    /// `listen` stops serving `/metrics`, so it can stay off the public port.
    pub metrics_listen: Option<SocketAddr>,
    /// `memory`, or a `redis://` URL (several instances share streams through it).
    pub store: String,
    /// Seconds between keepalive comment lines on idle SSE connections.
    pub keepalive_secs: u64,
    /// Seconds an abandoned `/v1/chat/completions` generation keeps running for a resume.
    pub detach_grace_secs: u64,
    /// The SSE `retry:` hint, in milliseconds, sent in the first frame.
    pub retry_ms: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Seconds running producers get to finish at shutdown before they end `interrupted`.
    pub shutdown_drain_secs: u64,
    /// Seconds a producer retries its appends while the store is unreachable.
    pub store_retry_secs: u64,
    /// Provider for model names without a `provider/` prefix (e.g. `openai`); none by default.
    pub default_provider: Option<String>,
    /// Folder of prompt templates, read at startup and on SIGHUP.
    pub prompts_dir: std::path::PathBuf,
    pub limits: Limits,
    pub upstream: Upstream,
    pub redis: Redis,
    pub routing: Routing,
    pub agents: Agents,
    pub transcription: Transcription,
    /// `[[models]]`: aliases with their upstream and ordered fallbacks.
    pub models: Vec<ModelAlias>,
    /// `[[keys]]`: client API keys. None: the server listens on loopback only.
    pub keys: Vec<KeyConfig>,
    /// Serve without API keys on a non-loopback address (behind your own auth proxy).
    pub allow_unauthenticated: bool,
    /// Origins browsers may call from (`Access-Control-Allow-Origin`); `["*"]` for any.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            store: "memory".to_owned(),
            keepalive_secs: 15,
            detach_grace_secs: 30,
            retry_ms: 2000,
            max_body_bytes: 1024 * 1024,
            shutdown_drain_secs: 30,
            store_retry_secs: 30,
            default_provider: None,
            prompts_dir: "prompts".into(),
            limits: Limits::default(),
            upstream: Upstream::default(),
            redis: Redis::default(),
            routing: Routing::default(),
            agents: Agents::default(),
            transcription: Transcription::default(),
            models: Vec::new(),
            keys: Vec::new(),
            allow_unauthenticated: false,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Seconds as a `Duration`, refusing what `Duration` cannot hold.
pub fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::MAX)
}

/// Where environment values come from: the process environment, or a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Secrets that only the environment provides. `Debug` shows which are set, never them.
#[derive(Clone, Default)]
pub struct Secrets {
    pub openai_api_key: Option<String>,
    pub anthropic_api_key: Option<String>,
    pub gemini_api_key: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &Option<String>| if s.is_some() { "***" } else { "unset" };
        f.debug_struct("Secrets")
            .field("openai_api_key", &shown(&self.openai_api_key))
            .field("anthropic_api_key", &shown(&self.anthropic_api_key))
            .field("gemini_api_key", &shown(&self.gemini_api_key))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("{path}:{line}: {source}")]
    At {
        path: PathBuf,
        line: usize,
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads `path`, or `tokenrelay.toml` in the working directory if it exists, else defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = Self::file(path) else {
            return Ok(Self::default());
        };
        let path = path.as_path();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// The file settings come from: `path`, or `tokenrelay.toml` here if it exists.
    pub fn file(path: Option<&Path>) -> Option<PathBuf> {
        let default = Path::new("tokenrelay.toml");
        match path {
            Some(path) => Some(path.to_owned()),
            None if default.exists() => Some(default.to_owned()),
            None => None,
        }
    }

    /// `error` with the file and line of the setting it names, when the file has it.
    pub fn locate(error: ConfigError, file: Option<&Path>) -> ConfigError {
        let ConfigError::Invalid { key, .. } = &error else {
            return error;
        };
        let Some(path) = file else { return error };
        let line = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| line_of(&text, key));
        match line {
            Some(line) => ConfigError::At {
                path: path.to_owned(),
                line,
                source: Box::new(error),
            },
            None => error,
        }
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Applies environment-only settings (upstream URLs, keys held in variables) and returns
    /// the secrets.
    pub fn apply_env(&mut self, env: &dyn Env) -> Result<Secrets, ConfigError> {
        for key in &mut self.keys {
            key.resolve(env)?;
        }
        let upstream = &mut self.upstream;
        let urls = [
            ("OPENAI_BASE_URL", &mut upstream.openai_base_url),
            ("ANTHROPIC_BASE_URL", &mut upstream.anthropic_base_url),
            ("GEMINI_BASE_URL", &mut upstream.gemini_base_url),
        ];
        for (name, url) in urls {
            if let Some(value) = env.var(name) {
                *url = value;
            }
        }
        Ok(Secrets {
            openai_api_key: env.var("OPENAI_API_KEY"),
            anthropic_api_key: env.var("ANTHROPIC_API_KEY"),
            gemini_api_key: env.var("GEMINI_API_KEY"),
        })
    }

    /// The configuration as it may be shown: the store URL without its password.
    pub fn redacted(&self) -> Self {
        let mut shown = self.clone();
        if let Some((scheme, rest)) = self.store.split_once("://") {
            if let Some((userinfo, host)) = rest.rsplit_once('@') {
                let user = userinfo.split(':').next().unwrap_or("");
                shown.store = format!("{scheme}://{user}:***@{host}");
            }
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_valid_and_matches_the_defaults() {
        let text = include_str!("../tokenrelay.example.toml");
        let parsed = Config::parse(text).unwrap();
        let default = Config::default();
        assert_eq!(parsed.listen, default.listen);
        assert_eq!(parsed.keepalive_secs, default.keepalive_secs);
        assert_eq!(parsed.detach_grace_secs, default.detach_grace_secs);
        assert_eq!(
            parsed.limits.max_stream_bytes,
            default.limits.max_stream_bytes
        );
        assert_eq!(
            parsed.upstream.openai_base_url,
            default.upstream.openai_base_url
        );
        assert_eq!(
            parsed.agents.idle_timeout_secs,
            default.agents.idle_timeout_secs
        );
        assert_eq!(parsed.agents.window_events, default.agents.window_events);
        parsed.validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_refused_before_they_can_overflow_a_timer() {
        let huge = Config::parse("keepalive_secs = 9223372036854775807").unwrap();
        assert!(huge.validate().is_err());
        let mut config = Config::default();
        config.limits.log_retention_secs = u64::MAX;
        assert!(config.validate().is_err());
        config = Config::default();
        config.upstream.idle_timeout_secs = f64::INFINITY;
        assert!(config.validate().is_err());
    }

    #[test]
    fn shown_configuration_hides_the_redis_password() {
        let config = Config {
            store: "redis://app:s3cret@redis.internal:6379/0".into(),
            ..Config::default()
        };
        let shown = format!("{:?}", config.redacted());
        assert!(!shown.contains("s3cret"));
        assert!(shown.contains("redis://app:***@redis.internal:6379/0"));
    }

    #[test]
    fn unknown_keys_are_errors_not_silently_ignored() {
        let err = Config::parse("keepalive_sec = 3").unwrap_err();
        assert!(err.to_string().contains("keepalive_sec"));
    }

    #[test]
    fn environment_sets_the_upstream_and_its_key() {
        struct Fake;
        impl Env for Fake {
            fn var(&self, name: &str) -> Option<String> {
                match name {
                    "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1".into()),
                    "OPENAI_API_KEY" => Some("sk-test".into()),
                    _ => None,
                }
            }
        }
        let mut config = Config::default();
        let secrets = config.apply_env(&Fake).unwrap();
        assert_eq!(config.upstream.openai_base_url, "http://127.0.0.1:9/v1");
        assert_eq!(secrets.openai_api_key.as_deref(), Some("sk-test"));
    }
}

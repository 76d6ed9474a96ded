//! Checks of the configuration that serde cannot make, and where in the file a refused
//! setting is, so `check-config` can name its line.

use toml::de::{DeTable, DeValue};

use super::{Config, ConfigError};
use crate::auth::validate_keys;

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_keys(&self.keys)?;
        if self.keys.is_empty() && !self.listen.ip().is_loopback() && !self.allow_unauthenticated {
            return Err(ConfigError::invalid(
                "listen",
                format!(
                    "{} is not a loopback address and no API keys are configured: anyone who \
                     can reach it could spend your upstream credits. Configure keys ([[keys]] \
                     or TOKENRELAY_API_KEYS), listen on 127.0.0.1, or set \
                     allow_unauthenticated = true",
                    self.listen
                ),
            ));
        }
        if self.store != "memory" && !self.store.starts_with("redis://") {
            return Err(ConfigError::invalid(
                "store",
                format!(
                    "`{}` is not supported; use `memory` or a `redis://` URL",
                    self.redacted().store
                ),
            ));
        }
        let day = 86_400;
        let ranges = [
            ("keepalive_secs", self.keepalive_secs, 1, 3600),
            ("detach_grace_secs", self.detach_grace_secs, 0, day),
            ("shutdown_drain_secs", self.shutdown_drain_secs, 0, 3600),
            ("store_retry_secs", self.store_retry_secs, 0, 3600),
            (
                "limits.log_retention_secs",
                self.limits.log_retention_secs,
                1,
                30 * day,
            ),
            (
                "limits.status_retention_secs",
                self.limits.status_retention_secs,
                1,
                30 * day,
            ),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::invalid(
                    name,
                    format!("must be between {min} and {max}"),
                ));
            }
        }
        let timeouts = [
            (
                "upstream.connect_timeout_secs",
                self.upstream.connect_timeout_secs,
            ),
            (
                "upstream.first_event_timeout_secs",
                self.upstream.first_event_timeout_secs,
            ),
            (
                "upstream.idle_timeout_secs",
                self.upstream.idle_timeout_secs,
            ),
            ("redis.lease_secs", self.redis.lease_secs),
            ("agents.idle_timeout_secs", self.agents.idle_timeout_secs),
            (
                "transcription.mock_speedup",
                self.transcription.mock_speedup,
            ),
            (
                "transcription.idle_timeout_secs",
                self.transcription.idle_timeout_secs,
            ),
            (
                "transcription.segment_wait_secs",
                self.transcription.segment_wait_secs,
            ),
        ];
        for (name, value) in timeouts {
            if !(0.05..=86_400.0).contains(&value) {
                return Err(ConfigError::invalid(name, "must be between 0.05 and 86400"));
            }
        }
        if self.agents.window_events == 0 || self.agents.window_secs == 0 {
            return Err(ConfigError::invalid(
                "agents.window_events",
                "agents.window_events and agents.window_secs must be at least 1",
            ));
        }
        let t = &self.transcription;
        if t.window_events == 0 || t.window_secs == 0 || t.max_segment_bytes == 0 {
            return Err(ConfigError::invalid(
                "transcription.window_events",
                "transcription.window_events, window_secs and max_segment_bytes must be at least 1",
            ));
        }
        if t.recent_transcript_chars > crate::event::TRANSCRIPT_KEPT {
            return Err(ConfigError::invalid(
                "transcription.recent_transcript_chars",
                format!("must be at most {}", crate::event::TRANSCRIPT_KEPT),
            ));
        }
        // Zero would refuse every stream, request or subscriber; a key's own limits are
        // checked the same way (`validate_keys`).
        let limits = [
            (
                "limits.max_streams_per_key",
                self.limits.max_streams_per_key,
            ),
            (
                "limits.requests_per_minute_per_key",
                self.limits.requests_per_minute_per_key as usize,
            ),
            (
                "limits.max_subscribers_per_stream",
                self.limits.max_subscribers_per_stream,
            ),
        ];
        for (name, value) in limits {
            if value == 0 {
                return Err(ConfigError::invalid(name, "must be at least 1"));
            }
        }
        if self.agents.max_batch_events == 0 {
            return Err(ConfigError::invalid(
                "agents.max_batch_events",
                "must be at least 1",
            ));
        }
        if self.limits.max_stream_events < 2 {
            return Err(ConfigError::invalid(
                "limits.max_stream_events",
                "must be at least 2",
            ));
        }
        Ok(())
    }
}

/// The 1-based line of the dotted `key` (`upstream.idle_timeout_secs`, `keys[1].name`) in
/// `text`, or of the nearest table that holds it when the key itself is not written there.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut found = None;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        found = Some(k.span().start);
        match (v.get_ref(), index) {
            (DeValue::Table(inner), None) => table = inner,
            (DeValue::Array(items), index) => {
                let Some(item) = items.get(index.unwrap_or(0)) else {
                    break;
                };
                found = Some(item.span().start);
                match item.get_ref() {
                    DeValue::Table(inner) => table = inner,
                    _ => break,
                }
            }
            _ => break,
        }
    }
    found.map(|at| text[..at.min(text.len())].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_setting_is_found_on_its_line() {
        let text = "listen = \"127.0.0.1:8080\"\n\n[upstream]\nconnect_timeout_secs = 1\nidle_timeout_secs = 0\n\n[[keys]]\nname = \"a\"\n\n[[keys]]\nname = \"b b\"\n";
        assert_eq!(line_of(text, "upstream.idle_timeout_secs"), Some(5));
        assert_eq!(line_of(text, "listen"), Some(1));
        assert_eq!(line_of(text, "keys[1].name"), Some(11));
        assert_eq!(line_of(text, "keys[0].name"), Some(8));
        assert_eq!(line_of(text, "transcription.mock_speedup"), None);
    }
}

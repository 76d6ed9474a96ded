//! Model addressing: `provider/model` names resolved to a provider and its upstream model.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Provider;

/// The providers configured at startup, by name.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<&'static str, Arc<dyn Provider>>,
    /// Provider for model names without a `provider/` prefix (e.g. SDK apps sending `gpt-4o`).
    default: Option<&'static str>,
}

/// A model name resolved to where it is served.
#[derive(Clone)]
pub struct Resolved {
    pub provider: Arc<dyn Provider>,
    /// The model name the upstream gets (without our prefix).
    pub upstream_model: String,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "model `{0}` is not served here; use `provider/model`, e.g. `mock/default` or `openai/gpt-4o-mini`"
)]
pub struct ModelNotFound(pub String);

impl Providers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, provider: Arc<dyn Provider>) -> Self {
        self.by_name.insert(provider.name(), provider);
        self
    }

    /// Routes unprefixed model names to `name`, if such a provider is configured.
    pub fn with_default(mut self, name: &str) -> Self {
        self.default = self.by_name.keys().copied().find(|n| *n == name);
        self
    }

    pub fn resolve(&self, model: &str) -> Result<Resolved, ModelNotFound> {
        let not_found = || ModelNotFound(model.chars().take(200).collect());
        let (provider, upstream_model) = match model.split_once('/') {
            Some((prefix, rest)) if self.by_name.contains_key(prefix) => {
                (self.by_name[prefix].clone(), rest)
            }
            _ => (
                self.by_name
                    .get(self.default.ok_or_else(not_found)?)
                    .cloned()
                    .ok_or_else(not_found)?,
                model,
            ),
        };
        if !provider.accepts(upstream_model) {
            return Err(not_found());
        }
        Ok(Resolved {
            provider,
            upstream_model: upstream_model.to_owned(),
        })
    }

    /// Every concrete model name to list in `/v1/models`, with its provider.
    pub fn listed_models(&self) -> Vec<(String, &'static str)> {
        self.by_name
            .values()
            .flat_map(|p| p.listed_models().into_iter().map(|m| (m, p.name())))
            .collect()
    }
}

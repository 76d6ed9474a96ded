//! Model addressing: `provider/model` names and configured aliases, each resolved to an
//! ordered route (the primary, then its fallbacks).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::Provider;

/// A `[[models]]` entry: a name clients use, where it is served, and what to try instead.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelAlias {
    pub name: String,
    pub provider: String,
    /// The model the upstream gets.
    pub model: String,
    /// Tried in order when the primary fails before its first event: other aliases, or
    /// `provider/model` names.
    #[serde(default)]
    pub fallbacks: Vec<String>,
}

/// The providers configured at startup, by name, and the model aliases.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<&'static str, Arc<dyn Provider>>,
    aliases: BTreeMap<String, ModelAlias>,
    /// Provider for model names without a `provider/` prefix (e.g. SDK apps sending `gpt-4o`).
    default: Option<&'static str>,
}

/// One place a model is served.
#[derive(Clone)]
pub struct Resolved {
    pub provider: Arc<dyn Provider>,
    /// The model name the upstream gets (without our prefix).
    pub upstream_model: String,
}

/// Where a request goes: the first candidate, then the others in order.
#[derive(Clone)]
pub struct Route {
    pub candidates: Vec<Resolved>,
}

impl Route {
    pub fn primary(&self) -> &Resolved {
        // A route is never built empty.
        &self.candidates[0]
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "model `{0}` is not served here; use an alias from /v1/models or `provider/model`, e.g. `mock/default` or `openai/gpt-4o-mini`"
)]
pub struct ModelNotFound(pub String);

#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    #[error("model alias `{0}`: unknown provider `{1}`")]
    UnknownProvider(String, String),
    #[error("model alias `{0}` is defined twice")]
    Duplicate(String),
    #[error("model alias `{0}`: fallback `{1}` is neither an alias nor a `provider/model` name")]
    UnknownFallback(String, String),
}

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

    /// Adds `[[models]]` aliases, checking that everything they name exists.
    pub fn with_aliases(mut self, aliases: &[ModelAlias]) -> Result<Self, AliasError> {
        for alias in aliases {
            if !self.by_name.contains_key(alias.provider.as_str()) {
                return Err(AliasError::UnknownProvider(
                    alias.name.clone(),
                    alias.provider.clone(),
                ));
            }
            if self
                .aliases
                .insert(alias.name.clone(), alias.clone())
                .is_some()
            {
                return Err(AliasError::Duplicate(alias.name.clone()));
            }
        }
        for alias in aliases {
            for fallback in &alias.fallbacks {
                if self.one(fallback).is_none() {
                    return Err(AliasError::UnknownFallback(
                        alias.name.clone(),
                        fallback.clone(),
                    ));
                }
            }
        }
        Ok(self)
    }

    /// The route for a client's model name: an alias with its fallbacks, or one
    /// `provider/model` (or unprefixed name with a default provider).
    pub fn route(&self, model: &str) -> Result<Route, ModelNotFound> {
        let not_found = || ModelNotFound(model.chars().take(200).collect());
        let primary = self.one(model).ok_or_else(not_found)?;
        let mut candidates = vec![primary];
        if let Some(alias) = self.aliases.get(model) {
            candidates.extend(alias.fallbacks.iter().filter_map(|f| self.one(f)));
        }
        Ok(Route { candidates })
    }

    /// One name to one place: an alias's primary, or `provider/model`.
    fn one(&self, model: &str) -> Option<Resolved> {
        if let Some(alias) = self.aliases.get(model) {
            let provider = self.by_name.get(alias.provider.as_str())?.clone();
            return Some(Resolved {
                provider,
                upstream_model: alias.model.clone(),
            });
        }
        let (provider, upstream_model) = match model.split_once('/') {
            Some((prefix, rest)) if self.by_name.contains_key(prefix) => {
                (self.by_name[prefix].clone(), rest)
            }
            _ => (self.by_name.get(self.default?)?.clone(), model),
        };
        provider.accepts(upstream_model).then(|| Resolved {
            provider,
            upstream_model: upstream_model.to_owned(),
        })
    }

    /// Every concrete model name to list in `/v1/models`, with who serves it.
    pub fn listed_models(&self) -> Vec<(String, String)> {
        let aliases = self
            .aliases
            .values()
            .map(|a| (a.name.clone(), a.provider.clone()));
        let direct = self.by_name.values().flat_map(|p| {
            p.listed_models()
                .into_iter()
                .map(|m| (m, p.name().to_owned()))
        });
        aliases.chain(direct).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::MockProvider;

    fn alias(name: &str, model: &str, fallbacks: &[&str]) -> ModelAlias {
        ModelAlias {
            name: name.into(),
            provider: "mock".into(),
            model: model.into(),
            fallbacks: fallbacks.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn aliases_route_to_their_model_then_their_fallbacks() {
        let providers = Providers::new()
            .with(Arc::new(MockProvider::default()))
            .with_aliases(&[
                alias("fast", "5t-0ms", &[]),
                alias("smart", "default", &["fast", "mock/3t-0ms"]),
            ])
            .unwrap();
        let route = providers.route("smart").unwrap();
        let models: Vec<_> = route
            .candidates
            .iter()
            .map(|c| c.upstream_model.as_str())
            .collect();
        assert_eq!(models, ["default", "5t-0ms", "3t-0ms"]);
        assert_eq!(providers.route("mock/5t-0ms").unwrap().candidates.len(), 1);
        assert!(providers.route("nope").is_err());
    }

    #[test]
    fn bad_aliases_are_refused_at_startup() {
        let mock = || Providers::new().with(Arc::new(MockProvider::default()));
        let mut wrong = alias("x", "default", &[]);
        wrong.provider = "nope".into();
        assert!(matches!(
            mock().with_aliases(&[wrong]),
            Err(AliasError::UnknownProvider(..))
        ));
        let twice = [alias("x", "default", &[]), alias("x", "default", &[])];
        assert!(matches!(
            mock().with_aliases(&twice),
            Err(AliasError::Duplicate(_))
        ));
        let dangling = [alias("x", "default", &["ghost"])];
        assert!(matches!(
            mock().with_aliases(&dangling),
            Err(AliasError::UnknownFallback(..))
        ));
    }
}

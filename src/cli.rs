//! The command line (clap): `serve` (the default), `check-config` and `bench` (the load
//! generator). Flags and their `TOKENRELAY_*` environment variables override the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::auth::{KeyConfig, Secret};
use crate::config::{Config, ConfigError, Env, Secrets};

#[derive(Parser, Debug)]
#[command(
    name = "tokenrelay",
    version,
    about = "Relays AI token streams over SSE with resume ids"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Config file (default: ./tokenrelay.toml if present).
    #[arg(long, env = "TOKENRELAY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TOKENRELAY_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// A separate address for `/metrics`, `/healthz` and `/readyz` only.
    #[arg(long, env = "TOKENRELAY_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// Event store: `memory` or a `redis://` URL.
    #[arg(long, env = "TOKENRELAY_STORE", global = true)]
    pub store: Option<String>,
    /// Seconds between SSE keepalive comments.
    #[arg(long, env = "TOKENRELAY_KEEPALIVE_SECS", global = true)]
    pub keepalive_secs: Option<u64>,
    /// Seconds an abandoned chat completion keeps running for a resume.
    #[arg(long, env = "TOKENRELAY_DETACH_GRACE_SECS", global = true)]
    pub detach_grace_secs: Option<u64>,
    /// Client API keys, comma-separated: `name=key` or bare keys (added to `[[keys]]`).
    #[arg(
        long,
        env = "TOKENRELAY_API_KEYS",
        global = true,
        hide_env_values = true
    )]
    pub api_keys: Option<Secret>,
    /// Log line format.
    #[arg(
        long,
        env = "TOKENRELAY_LOG_FORMAT",
        global = true,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Load and validate the configuration, print it, and exit.
    CheckConfig,
    /// Run the load generator against a mock upstream and print a Markdown table
    /// (docs/benchmarks.md). Needs `ulimit -n` of about 10,500 for scenario c at full size.
    Bench(BenchArgs),
}

/// `tokenrelay bench` options.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated letters a-g (default: all).
    #[arg(long, value_delimiter = ',')]
    pub scenario: Vec<String>,
    /// A Redis URL: also runs a, b and e with the Redis store (scenario g).
    #[arg(long)]
    pub redis: Option<String>,
    /// Smaller sizes, for a quick look.
    #[arg(long)]
    pub quick: bool,
    /// Also write the Markdown table to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl BenchArgs {
    /// The load generator's options; an unknown scenario letter is an error.
    pub fn options(&self) -> Result<crate::bench::Options, String> {
        let mut options = crate::bench::Options::all(crate::bench::subscribers::current_exe());
        if !self.scenario.is_empty() {
            options.scenarios = self
                .scenario
                .iter()
                .map(|letter| {
                    crate::bench::Scenario::from_letter(letter.trim())
                        .ok_or_else(|| format!("unknown scenario {letter:?} (a-g)"))
                })
                .collect::<Result<_, _>>()?;
        }
        options.redis.clone_from(&self.redis);
        options.quick = self.quick;
        Ok(options)
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// The file, then these flags over it, then environment-only settings.
    pub fn config(&self, env: &dyn Env) -> Result<(Config, Secrets), ConfigError> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(listen) = self.metrics_listen {
            config.metrics_listen = Some(listen);
        }
        if let Some(store) = &self.store {
            config.store.clone_from(store);
        }
        if let Some(secs) = self.keepalive_secs {
            config.keepalive_secs = secs;
        }
        if let Some(secs) = self.detach_grace_secs {
            config.detach_grace_secs = secs;
        }
        if let Some(list) = &self.api_keys {
            config.keys.extend(KeyConfig::parse_list(&list.0));
        }
        let file = Config::file(self.config.as_deref());
        let located = |e| Config::locate(e, file.as_deref());
        let secrets = config.apply_env(env).map_err(located)?;
        config.validate().map_err(located)?;
        Ok((config, secrets))
    }

    pub fn init_tracing(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        match self.log_format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().init(),
        }
    }
}

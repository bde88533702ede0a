//! The wallet's configuration: built-in defaults, then `--config FILE`, then
//! `--set key=value` overrides, merged by `conflictkit::config` (the original's
//! `merge_dict` rules) and read into [`Settings`].

use std::path::PathBuf;

use conflictkit::config::{self, Layer};
use serde::Deserialize;

/// Defaults, in the original cryptoassets.core layout for the `events` part.
pub const DEFAULTS: &str = r#"
database:
  url: null            # null: an embedded SQLite file; DATABASE_URL overrides
  max_connections: 8
  retries: null        # null: the resolver's default (3); 10 across the nodes of a cluster
wallet:
  tasks: 32
  operations_per_task: 25
  accounts: 4
  initial_balance: 100000   # cents
  seed: 1                   # the operations drawn; the same with and without conflictkit
  check_every: 5            # a read-only balance check after every 5th operation of a task
events:
  http:
    class: cryptoassets.core.event.http.HTTPEventHandler
    url: http://127.0.0.1:0  # port 0: any free loopback port
    # The first secret is the current one (the demo's poster signs with it);
    # lists are appended to when layered, so secrets added by a config file
    # are accepted too, as while keys rotate.
    secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]
demo:
  txupdates: 12
"#;

#[derive(Debug, Deserialize)]
pub struct Settings {
    pub database: Database,
    pub wallet: Wallet,
    pub demo: Demo,
    /// The whole merged document: the event listener reads its own part.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct Database {
    pub url: Option<String>,
    pub max_connections: u32,
    /// Replays per managed call; `None`: the resolver's default on one
    /// database, [`CLUSTER_RETRIES`] across the nodes of a cluster.
    pub retries: Option<u32>,
}

/// Replays per call when the tasks spread over several nodes: the admission
/// control is per process and per node, so a hot row written from every
/// node conflicts at COMMIT far more often than on one server.
pub const CLUSTER_RETRIES: u32 = 10;

#[derive(Debug, Deserialize)]
pub struct Wallet {
    pub tasks: usize,
    pub operations_per_task: usize,
    pub accounts: i32,
    pub initial_balance: i64,
    /// Seeds the generator that draws each task's operations.
    pub seed: u64,
    /// A task checks a balance after every `check_every`-th operation (0: never).
    pub check_every: usize,
}

#[derive(Debug, Deserialize)]
pub struct Demo {
    pub txupdates: usize,
}

/// Loads the settings: defaults < `file` < `sets` (each `key.path=value`).
pub fn load(file: Option<PathBuf>, sets: &[String]) -> Result<Settings, config::ConfigError> {
    let mut layers = vec![Layer::text(config::Format::Yaml, DEFAULTS).named("defaults")];
    if let Some(file) = file {
        layers.push(Layer::file(file));
    }
    for set in sets {
        layers.push(Layer::parse_set(set)?);
    }
    let raw = config::load_value(layers)?;
    let mut settings: Settings = config::load([Layer::value(raw.clone()).named("configuration")])?;
    settings.raw = raw;
    Ok(settings)
}

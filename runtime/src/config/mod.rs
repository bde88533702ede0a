//! Layered configuration: YAML, JSON and TOML files, in-memory defaults and
//! `--set key=value` overrides, merged in order and deserialised into your type.
//!
//! ```
//! use conflictkit::config::{load, Format, Layer};
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     database: Database,
//!     events: Events,
//! }
//! #[derive(Deserialize)]
//! struct Database { url: String, echo: bool }
//! #[derive(Deserialize)]
//! struct Events { http: Http }
//! #[derive(Deserialize)]
//! struct Http { url: String, retries: u32 }
//!
//! let dir = std::env::temp_dir().join(format!("conflictkit-config-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let file = dir.join("wallet.yaml");
//! std::fs::write(&file, "database:\n  url: sqlite://wallet.db\n").unwrap();
//!
//! let config: Config = load([
//!     Layer::value(json!({"database": {"echo": false}, "events": {"http": {"retries": 3}}}))
//!         .named("defaults"),
//!     Layer::file(&file),
//!     Layer::text(Format::Toml, "[events.http]\nurl = 'http://127.0.0.1:8080'"),
//!     Layer::parse_set("database.echo=true")?,
//! ])?;
//! assert_eq!(config.database.url, "sqlite://wallet.db");
//! assert!(config.database.echo);
//! assert_eq!((config.events.http.url.as_str(), config.events.http.retries), ("http://127.0.0.1:8080", 3));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), conflictkit::config::ConfigError>(())
//! ```
//!
//! Layers are merged with [`merge_dict`](crate::merge::merge_dict)'s rules by
//! default (as the original's `Configurator` did with its overrides): objects
//! merge key by key, scalars are replaced, **lists are appended to**. For
//! RFC 7396 behaviour (lists replaced, `null` deletes a key) use a [`Loader`]
//! with [`MergeOptions::MERGE_PATCH`].
//!
//! Errors name the file or override and the key: a clash while merging says
//! which layer and where (`events.http`); a value that does not fit your type
//! says where (`events.http.retries`) and which layer set it last.

mod error;
mod layer;
mod parse;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::debug;

use crate::merge::{KeyPath, MergeOptions, PathSegment, merge_with};
use layer::Source;

pub use error::{ConfigError, OverrideProblem};
pub use layer::{Format, Layer};

/// Merges `layers` in order (later over earlier, with the original's merge
/// rules) and deserialises the result into `T`.
///
/// # Errors
///
/// Any [`ConfigError`]: a file that cannot be read or parsed, an unknown
/// extension, a bad override, a merge clash, or a result that does not fit `T`.
///
/// ```
/// use conflictkit::config::{load, ConfigError, Layer};
/// use serde::Deserialize;
///
/// #[derive(Debug, Deserialize)]
/// struct Http { port: u16 }
///
/// let http: Http = load([Layer::set("port", "8080")])?;
/// assert_eq!(http.port, 8080);
///
/// let err = load::<Http>([Layer::set("port", "eighty")]).unwrap_err();
/// assert!(matches!(err, ConfigError::Deserialize { .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid configuration at `port` (set by override `port=eighty`): \
///      invalid type: string \"eighty\", expected u16"
/// );
/// # Ok::<(), ConfigError>(())
/// ```
pub fn load<T: DeserializeOwned>(
    layers: impl IntoIterator<Item = Layer>,
) -> Result<T, ConfigError> {
    Loader::new().load(layers)
}

/// Merges `layers` in order (later over earlier, with the original's merge
/// rules) into one JSON value, an object.
///
/// # Errors
///
/// As [`load`], except that nothing is deserialised.
///
/// ```
/// use conflictkit::config::{load_value, Format, Layer};
/// use serde_json::json;
///
/// let config = load_value([
///     Layer::text(Format::Json, r#"{"plugins": ["a"], "debug": false}"#),
///     Layer::text(Format::Yaml, "plugins: [b]"),
///     Layer::set("debug", "true"),
/// ])?;
/// assert_eq!(config, json!({"plugins": ["a", "b"], "debug": true}));
/// # Ok::<(), conflictkit::config::ConfigError>(())
/// ```
pub fn load_value(layers: impl IntoIterator<Item = Layer>) -> Result<Value, ConfigError> {
    Loader::new().load_value(layers)
}

/// Loads layers with chosen [`MergeOptions`]; [`load`] and [`load_value`] use
/// `Loader::new()`.
///
/// ```
/// use conflictkit::config::{Format, Layer, Loader};
/// use conflictkit::merge::MergeOptions;
/// use serde_json::json;
///
/// let config = Loader::new().merge_options(MergeOptions::MERGE_PATCH).load_value([
///     Layer::text(Format::Yaml, "plugins: [a]\ndebug: true"),
///     Layer::text(Format::Yaml, "plugins: [b]\ndebug: null"),
/// ])?;
/// assert_eq!(config, json!({"plugins": ["b"]}));
/// # Ok::<(), conflictkit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loader {
    options: MergeOptions,
}

impl Loader {
    /// A loader with the original's merge rules ([`MergeOptions::ORIGINAL`]).
    ///
    /// ```
    /// assert_eq!(conflictkit::config::Loader::new(), conflictkit::config::Loader::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how layers are merged.
    ///
    /// ```
    /// use conflictkit::config::Loader;
    /// use conflictkit::merge::MergeOptions;
    /// let loader = Loader::new().merge_options(MergeOptions::MERGE_PATCH);
    /// assert_ne!(loader, Loader::new());
    /// ```
    #[must_use]
    pub fn merge_options(mut self, options: MergeOptions) -> Self {
        self.options = options;
        self
    }

    /// As [`load`], with this loader's merge options.
    ///
    /// # Errors
    ///
    /// As [`load`].
    ///
    /// ```
    /// use conflictkit::config::{Layer, Loader};
    /// let retries: std::collections::HashMap<String, u32> = Loader::new().load([Layer::set("retries", "3")])?;
    /// assert_eq!(retries["retries"], 3);
    /// # Ok::<(), conflictkit::config::ConfigError>(())
    /// ```
    pub fn load<T: DeserializeOwned>(
        &self,
        layers: impl IntoIterator<Item = Layer>,
    ) -> Result<T, ConfigError> {
        let mut origins = Vec::new();
        let merged = self.merge(layers, Some(&mut origins))?;
        serde_path_to_error::deserialize(merged).map_err(|err| {
            let path = key_path(err.path());
            let origin = origin_of(&path, &origins);
            ConfigError::Deserialize {
                path,
                origin,
                source: err.into_inner(),
            }
        })
    }

    /// As [`load_value`], with this loader's merge options.
    ///
    /// # Errors
    ///
    /// As [`load_value`].
    ///
    /// ```
    /// use conflictkit::config::{Layer, Loader};
    /// let value = Loader::new().load_value([Layer::set("a.b", "~")])?;
    /// assert_eq!(value, serde_json::json!({"a": {"b": null}}));
    /// # Ok::<(), conflictkit::config::ConfigError>(())
    /// ```
    pub fn load_value(
        &self,
        layers: impl IntoIterator<Item = Layer>,
    ) -> Result<Value, ConfigError> {
        self.merge(layers, None)
    }

    /// Reads and merges the layers. With `origins`, keeps each layer's value and
    /// name to tell, on a deserialisation error, which layer set the bad key.
    /// Configuration documents are small, so that copy is cheap.
    fn merge(
        &self,
        layers: impl IntoIterator<Item = Layer>,
        mut origins: Option<&mut Vec<(String, Value)>>,
    ) -> Result<Value, ConfigError> {
        let mut merged = Value::Object(Map::new());
        for (index, layer) in layers.into_iter().enumerate() {
            let name = layer.describe(index + 1);
            let value = read(layer, &name)?;
            if value.is_null() {
                debug!(layer = %name, "configuration layer is empty");
                continue;
            }
            debug!(layer = %name, "merging configuration layer");
            if let Some(origins) = origins.as_deref_mut() {
                origins.push((name.clone(), value.clone()));
            }
            merge_with(&mut merged, value, self.options).map_err(|source| ConfigError::Merge {
                layer: name,
                source,
            })?;
        }
        Ok(merged)
    }
}

/// One layer's document; `null` means it adds nothing.
fn read(layer: Layer, name: &str) -> Result<Value, ConfigError> {
    let parse = |format, text: &str| {
        parse::parse(format, text).map_err(|source| ConfigError::Parse {
            layer: name.to_owned(),
            format,
            source: Box::new(source),
        })
    };
    match layer.source {
        Source::File(path) => {
            let Some(format) = Format::from_path(&path) else {
                return Err(ConfigError::UnknownFormat { path });
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(source) => return Err(ConfigError::Read { path, source }),
            };
            parse(format, &text)
        }
        Source::Text { format, text } => parse(format, &text),
        Source::Value(value) => Ok(value),
        Source::Set { key, value } => {
            let segments =
                layer::key_segments(&key).map_err(|problem| ConfigError::InvalidOverride {
                    input: format!("{key}={value}"),
                    problem,
                })?;
            let leaf = parse::yaml_scalar(&value);
            Ok(segments.into_iter().rev().fold(leaf, |inner, segment| {
                Value::Object(Map::from_iter([(segment.to_owned(), inner)]))
            }))
        }
    }
}

fn key_path(path: &serde_path_to_error::Path) -> KeyPath {
    path.iter()
        .map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => PathSegment::Index(*index),
            serde_path_to_error::Segment::Map { key } => PathSegment::Key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => PathSegment::Key(variant.clone()),
            serde_path_to_error::Segment::Unknown => PathSegment::Key("?".to_owned()),
        })
        .collect()
}

/// The last layer whose document has `path` (or its longest existing prefix).
/// Array positions do not map to layers (arrays are appended), so the path is
/// cut at the first one.
fn origin_of(path: &KeyPath, layers: &[(String, Value)]) -> Option<String> {
    let keys: Vec<&str> = path
        .segments()
        .iter()
        .map_while(|segment| match segment {
            PathSegment::Key(key) => Some(key.as_str()),
            PathSegment::Index(_) => None,
        })
        .collect();
    (1..=keys.len()).rev().find_map(|depth| {
        layers.iter().rev().find_map(|(name, value)| {
            keys[..depth]
                .iter()
                .try_fold(value, |value, key| value.get(key))
                .map(|_| name.clone())
        })
    })
}

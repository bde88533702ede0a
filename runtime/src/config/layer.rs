//! [`Layer`]: one source of configuration, and [`Format`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ConfigError, OverrideProblem};

/// A configuration file format.
///
/// ```
/// use conflictkit::config::Format;
/// use std::path::Path;
///
/// assert_eq!(Format::from_path(Path::new("config/app.yml")), Some(Format::Yaml));
/// assert_eq!(Format::from_path(Path::new("Cargo.TOML")), Some(Format::Toml));
/// assert_eq!(Format::from_path(Path::new("notes.txt")), None);
/// assert_eq!(Format::Json.to_string(), "JSON");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML 1.2, read with `serde_norway`. `.yaml` or `.yml`.
    Yaml,
    /// JSON, read with `serde_json`. `.json`.
    Json,
    /// TOML, read with `toml`. `.toml`.
    Toml,
}

impl Format {
    /// The format a file name's extension stands for (case-insensitive), if any.
    ///
    /// ```
    /// use conflictkit::config::Format;
    /// assert_eq!(Format::from_path("settings.json".as_ref()), Some(Format::Json));
    /// ```
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Yaml => "YAML",
            Self::Json => "JSON",
            Self::Toml => "TOML",
        })
    }
}

#[derive(Debug, Clone)]
pub(super) enum Source {
    File(PathBuf),
    Text { format: Format, text: String },
    Value(Value),
    Set { key: String, value: String },
}

/// One source of configuration; [`load`](super::load) merges layers in order,
/// later ones over earlier ones.
///
/// ```
/// use conflictkit::config::{Format, Layer};
/// use serde_json::json;
///
/// let layers = [
///     Layer::value(json!({"events": {"http": {"url": "http://127.0.0.1:8080"}}})).named("defaults"),
///     Layer::file("/etc/wallet/config.yaml"),
///     Layer::text(Format::Toml, "[database]\nurl = 'sqlite::memory:'"),
///     Layer::set("events.http.url", "http://127.0.0.1:9000"),
///     Layer::parse_set("database.echo=true")?,
/// ];
/// assert_eq!(layers[3].to_string(), "override `events.http.url=http://127.0.0.1:9000`");
/// # Ok::<(), conflictkit::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Layer {
    pub(super) source: Source,
    name: Option<String>,
}

impl Layer {
    fn new(source: Source) -> Self {
        Self { source, name: None }
    }

    /// A file, read when the layers are loaded; its format comes from its
    /// extension (`.yaml`, `.yml`, `.json`, `.toml`; anything else is
    /// [`ConfigError::UnknownFormat`]). An empty file (or a `null` document)
    /// adds nothing.
    ///
    /// ```
    /// let layer = conflictkit::config::Layer::file("config/app.yaml");
    /// assert_eq!(layer.to_string(), "file `config/app.yaml`");
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::new(Source::File(path.into()))
    }

    /// Text in a given format, such as defaults compiled into the program
    /// with `include_str!`.
    ///
    /// ```
    /// use conflictkit::config::{load_value, Format, Layer};
    /// let config = load_value([Layer::text(Format::Yaml, "port: 8080")])?;
    /// assert_eq!(config, serde_json::json!({"port": 8080}));
    /// # Ok::<(), conflictkit::config::ConfigError>(())
    /// ```
    pub fn text(format: Format, text: impl Into<String>) -> Self {
        Self::new(Source::Text {
            format,
            text: text.into(),
        })
    }

    /// A value already in memory, typically the defaults.
    ///
    /// ```
    /// use conflictkit::config::{load_value, Layer};
    /// use serde_json::json;
    /// let config = load_value([Layer::value(json!({"retries": 3}))])?;
    /// assert_eq!(config, json!({"retries": 3}));
    /// # Ok::<(), conflictkit::config::ConfigError>(())
    /// ```
    pub fn value(value: Value) -> Self {
        Self::new(Source::Value(value))
    }

    /// One override, `key` dotted (`events.http.url` creates the nested objects)
    /// and `value` read as a YAML scalar: `8080` is a number, `true` a boolean,
    /// `null`, `~` or nothing is null, anything else a string (so is text that
    /// YAML would read as a list or a mapping, such as `a: b`, and `.inf`/`.nan`,
    /// which JSON cannot hold). An invalid key is reported when the layers are
    /// loaded, as [`ConfigError::InvalidOverride`].
    ///
    /// ```
    /// use conflictkit::config::{load_value, Layer};
    /// use serde_json::json;
    /// let config = load_value([
    ///     Layer::set("events.http.port", "8080"),
    ///     Layer::set("events.http.host", "127.0.0.1"),
    ///     Layer::set("debug", "true"),
    /// ])?;
    /// assert_eq!(config, json!({"events": {"http": {"port": 8080, "host": "127.0.0.1"}}, "debug": true}));
    /// # Ok::<(), conflictkit::config::ConfigError>(())
    /// ```
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(Source::Set {
            key: key.into(),
            value: value.into(),
        })
    }

    /// Parses a `--set key=value` command-line argument into a [`Layer::set`].
    /// The key is split from the value at the first `=`, and white space around
    /// the key is ignored.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidOverride`] when there is no `=`, the key is empty or
    /// has an empty part (`a..b`, `.a`).
    ///
    /// ```
    /// use conflictkit::config::{ConfigError, Layer, OverrideProblem};
    ///
    /// let layer = Layer::parse_set("events.http.url=http://127.0.0.1:9000/?a=b")?;
    /// assert_eq!(layer.to_string(), "override `events.http.url=http://127.0.0.1:9000/?a=b`");
    ///
    /// let err = Layer::parse_set("debug").unwrap_err();
    /// assert!(matches!(err, ConfigError::InvalidOverride { problem: OverrideProblem::MissingEquals, .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid override `debug`: there is no `=`; write it as key=value, e.g. events.http.url=http://127.0.0.1:8080"
    /// );
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn parse_set(argument: &str) -> Result<Self, ConfigError> {
        let Some((key, value)) = argument.split_once('=') else {
            return Err(ConfigError::InvalidOverride {
                input: argument.to_owned(),
                problem: OverrideProblem::MissingEquals,
            });
        };
        let key = key.trim();
        key_segments(key).map_err(|problem| ConfigError::InvalidOverride {
            input: argument.to_owned(),
            problem,
        })?;
        Ok(Self::set(key, value))
    }

    /// Gives the layer a name for error messages, instead of the default
    /// description.
    ///
    /// ```
    /// use conflictkit::config::Layer;
    /// let layer = Layer::value(serde_json::json!({})).named("built-in defaults");
    /// assert_eq!(layer.to_string(), "built-in defaults");
    /// ```
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a layer is named in errors: its name, or what it is.
impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            return f.write_str(name);
        }
        match &self.source {
            Source::File(path) => write!(f, "file `{}`", path.display()),
            Source::Text { format, .. } => write!(f, "{format} text"),
            Source::Value(_) => f.write_str("in-memory value"),
            Source::Set { key, value } => write!(f, "override `{key}={value}`"),
        }
    }
}

impl Layer {
    /// The layer's name in error messages; unnamed text and values, which have
    /// no file name, get their position (counted from 1) too.
    pub(super) fn describe(&self, position: usize) -> String {
        match (&self.name, &self.source) {
            (None, Source::Text { .. } | Source::Value(_)) => format!("{self} (layer {position})"),
            _ => self.to_string(),
        }
    }
}

/// The parts of a dotted override key.
pub(super) fn key_segments(key: &str) -> Result<Vec<&str>, OverrideProblem> {
    if key.is_empty() {
        return Err(OverrideProblem::EmptyKey);
    }
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(OverrideProblem::EmptyKeyPart);
    }
    Ok(segments)
}

//! [`ConfigError`].

use std::path::PathBuf;

use super::Format;
use crate::merge::{KeyPath, MergeError};

/// What is wrong with a `key=value` override.
///
/// ```
/// use conflictkit::config::{ConfigError, Layer, OverrideProblem};
///
/// for (input, problem) in [
///     ("novalue", OverrideProblem::MissingEquals),
///     ("=1", OverrideProblem::EmptyKey),
///     ("a..b=1", OverrideProblem::EmptyKeyPart),
/// ] {
///     let Err(ConfigError::InvalidOverride { problem: found, .. }) = Layer::parse_set(input) else {
///         panic!("{input} should be rejected");
///     };
///     assert_eq!(found, problem);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverrideProblem {
    /// There is no `=` between key and value.
    #[error("there is no `=`; write it as key=value, e.g. events.http.url=http://127.0.0.1:8080")]
    MissingEquals,
    /// Nothing before the `=`.
    #[error("the key is empty; write it as key=value, e.g. events.http.url=http://127.0.0.1:8080")]
    EmptyKey,
    /// A dotted key with an empty part: `a..b`, `.a`, `a.`.
    #[error("the key has an empty part; separate its parts with single dots, e.g. events.http.url")]
    EmptyKeyPart,
}

/// Why configuration could not be loaded. Every variant names the layer (file
/// or override) and, where there is one, the key path.
///
/// ```
/// use conflictkit::config::{load_value, ConfigError, Format, Layer};
///
/// let err = load_value([
///     Layer::text(Format::Yaml, "events:\n  http:\n    url: http://127.0.0.1:8080\n").named("defaults"),
///     Layer::set("events.http", "off"),
/// ])
/// .unwrap_err();
/// assert!(matches!(err, ConfigError::Merge { .. }));
/// assert!(err.to_string().starts_with(
///     "cannot merge override `events.http=off` over the layers before it: \
///      cannot merge a string into an object at `events.http`"
/// ));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read config file `{}`: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A file's extension names no known format.
    #[error(
        "cannot tell the format of config file `{}`: name it .yaml, .yml, .json or .toml, or read \
         it yourself and pass it as Layer::text",
        .path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A file or text is not valid in its format.
    #[error("cannot parse {layer} as {format}: {source}")]
    Parse {
        /// The layer, as in [`Layer`](super::Layer)'s `Display`.
        layer: String,
        /// The format it was read as.
        format: Format,
        /// The parser's error, with the line and column where it has them.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A `key=value` override is malformed.
    #[error("invalid override `{input}`: {problem}")]
    InvalidOverride {
        /// The override as given.
        input: String,
        /// What is wrong with it.
        #[source]
        problem: OverrideProblem,
    },
    /// A layer does not merge over the layers before it.
    #[error("cannot merge {layer} over the layers before it: {source}")]
    Merge {
        /// The layer that could not be merged.
        layer: String,
        /// Where and which types clashed.
        source: MergeError,
    },
    /// The merged configuration does not fit the target type.
    #[error(
        "invalid configuration at {}{}: {source}",
        .path.describe(),
        .origin.as_ref().map(|origin| format!(" (set by {origin})")).unwrap_or_default()
    )]
    Deserialize {
        /// Where in the configuration.
        path: KeyPath,
        /// The last layer that set that key, if any did.
        origin: Option<String>,
        /// What serde said.
        source: serde_json::Error,
    },
}

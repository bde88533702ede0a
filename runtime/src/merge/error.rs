//! [`MergeError`] and the JSON type names it reports.

use std::fmt;

use serde_json::Value;

use super::KeyPath;

/// The type of a JSON value, as named in error messages.
///
/// ```
/// use conflictkit::merge::JsonType;
/// use serde_json::json;
///
/// assert_eq!(JsonType::of(&json!({"a": 1})), JsonType::Object);
/// assert_eq!(JsonType::of(&json!(1.5)).to_string(), "number");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonType {
    /// The type of `value`.
    ///
    /// ```
    /// use conflictkit::merge::JsonType;
    /// assert_eq!(JsonType::of(&serde_json::Value::Null), JsonType::Null);
    /// ```
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Bool,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    /// The lower-case name: `null`, `boolean`, `number`, `string`, `array`, `object`.
    ///
    /// ```
    /// assert_eq!(conflictkit::merge::JsonType::Bool.name(), "boolean");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "boolean",
            Self::Number => "number",
            Self::String => "string",
            Self::Array => "array",
            Self::Object => "object",
        }
    }

    /// The name with an article, for prose: "null", "a string", "an object".
    fn in_prose(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Two values that cannot be merged: an object in `a` met a non-object in `b`.
///
/// The document being merged into is unchanged when this is returned.
///
/// ```
/// use conflictkit::merge::{merge_dict, JsonType};
/// use serde_json::json;
///
/// let err = merge_dict(json!({"events": {"http": {"url": "x"}}}), json!({"events": {"http": 8080}}))
///     .unwrap_err();
/// assert_eq!(err.path().to_string(), "events.http");
/// assert_eq!(err.existing(), JsonType::Object);
/// assert_eq!(err.incoming(), JsonType::Number);
/// assert_eq!(
///     err.to_string(),
///     "cannot merge a number into an object at `events.http`: an object only merges with \
///      another object (make the new value an object, or use ClashMode::Replace to let it \
///      replace the object)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot merge {} into {} at {}: an object only merges with another object (make the new \
     value an object, or use ClashMode::Replace to let it replace the object)",
    .incoming.in_prose(),
    .existing.in_prose(),
    .path.describe()
)]
pub struct MergeError {
    path: KeyPath,
    existing: JsonType,
    incoming: JsonType,
}

impl MergeError {
    pub(super) fn new(path: KeyPath, existing: JsonType, incoming: JsonType) -> Self {
        Self {
            path,
            existing,
            incoming,
        }
    }

    /// Where the clash is, from the top of the documents.
    ///
    /// ```
    /// # use conflictkit::merge::merge_dict;
    /// # use serde_json::json;
    /// let err = merge_dict(json!({"a": {}}), json!({"a": [1]})).unwrap_err();
    /// assert_eq!(err.path().to_string(), "a");
    /// ```
    pub fn path(&self) -> &KeyPath {
        &self.path
    }

    /// The type of the value in `a`, the document merged into.
    ///
    /// ```
    /// # use conflictkit::merge::{merge_dict, JsonType};
    /// # use serde_json::json;
    /// let err = merge_dict(json!({}), json!(null)).unwrap_err();
    /// assert_eq!(err.existing(), JsonType::Object);
    /// ```
    pub fn existing(&self) -> JsonType {
        self.existing
    }

    /// The type of the value in `b`, the document merged in.
    ///
    /// ```
    /// # use conflictkit::merge::{merge_dict, JsonType};
    /// # use serde_json::json;
    /// let err = merge_dict(json!({}), json!(null)).unwrap_err();
    /// assert_eq!(err.incoming(), JsonType::Null);
    /// ```
    pub fn incoming(&self) -> JsonType {
        self.incoming
    }
}

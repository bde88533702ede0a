//! Text in each format → `serde_json::Value`, with the well-kept parsers; and the
//! YAML scalars of `--set` overrides.
//!
//! YAML and TOML are read into their own value types first and converted by
//! hand, so nothing is lost silently: `.inf`/`.nan` (which JSON cannot hold) are
//! errors instead of nulls, YAML number and boolean keys become strings, YAML
//! `<<` merge keys are applied, a YAML `!Tag value` becomes `{"Tag": value}` (how
//! serde reads an enum variant), and TOML dates and times become RFC 3339 strings.

use serde_json::{Map, Number, Value};

use super::Format;
use crate::merge::KeyPath;

/// Why a document could not be read. Wrapped in `ConfigError::Parse`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ParseError {
    #[error(transparent)]
    Yaml(#[from] serde_norway::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("the number at {} is {number}, which JSON cannot hold; use a finite number or a string", .path.describe())]
    NotFinite { path: KeyPath, number: f64 },
    #[error("the mapping key at {} is {kind}; keys must be strings, numbers or booleans", .path.describe())]
    BadKey { path: KeyPath, kind: &'static str },
}

pub(super) fn parse(format: Format, text: &str) -> Result<Value, ParseError> {
    match format {
        Format::Json => Ok(serde_json::from_str(text)?),
        Format::Yaml => {
            let mut value: serde_norway::Value = serde_norway::from_str(text)?;
            value.apply_merge()?;
            from_yaml(value, &mut KeyPath::root())
        }
        Format::Toml => {
            let table: toml::Table = toml::from_str(text)?;
            from_toml(toml::Value::Table(table), &mut KeyPath::root())
        }
    }
}

fn finite(number: f64, path: &KeyPath) -> Result<Value, ParseError> {
    Number::from_f64(number)
        .map(Value::Number)
        .ok_or_else(|| ParseError::NotFinite {
            path: path.clone(),
            number,
        })
}

fn from_yaml(value: serde_norway::Value, path: &mut KeyPath) -> Result<Value, ParseError> {
    use serde_norway::Value as Yaml;
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => {
            if let Some(int) = number.as_i64() {
                Value::from(int)
            } else if let Some(uint) = number.as_u64() {
                Value::from(uint)
            } else {
                finite(number.as_f64().unwrap_or(f64::NAN), path)?
            }
        }
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => {
            let mut array = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                path.push_index(index);
                array.push(from_yaml(item, path)?);
                path.pop();
            }
            Value::Array(array)
        }
        Yaml::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Yaml::String(text) => text,
                    Yaml::Bool(flag) => flag.to_string(),
                    Yaml::Number(number) => number.to_string(),
                    other => {
                        return Err(ParseError::BadKey {
                            path: path.clone(),
                            kind: yaml_kind(&other),
                        });
                    }
                };
                path.push_key(key.clone());
                let item = from_yaml(item, path)?;
                path.pop();
                map.insert(key, item);
            }
            Value::Object(map)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let variant = tag.strip_prefix('!').unwrap_or(&tag).to_owned();
            path.push_key(variant.clone());
            let inner = from_yaml(tagged.value, path)?;
            path.pop();
            Value::Object(Map::from_iter([(variant, inner)]))
        }
    })
}

fn yaml_kind(value: &serde_norway::Value) -> &'static str {
    match value {
        serde_norway::Value::Null => "null",
        serde_norway::Value::Sequence(_) => "a sequence",
        serde_norway::Value::Mapping(_) => "a mapping",
        serde_norway::Value::Tagged(_) => "a tagged value",
        _ => "a scalar",
    }
}

fn from_toml(value: toml::Value, path: &mut KeyPath) -> Result<Value, ParseError> {
    use toml::Value as Toml;
    Ok(match value {
        Toml::String(text) => Value::String(text),
        Toml::Integer(int) => Value::from(int),
        Toml::Float(float) => finite(float, path)?,
        Toml::Boolean(flag) => Value::Bool(flag),
        Toml::Datetime(datetime) => Value::String(datetime.to_string()),
        Toml::Array(items) => {
            let mut array = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                path.push_index(index);
                array.push(from_toml(item, path)?);
                path.pop();
            }
            Value::Array(array)
        }
        Toml::Table(table) => {
            let mut map = Map::new();
            for (key, item) in table {
                path.push_key(key.clone());
                let item = from_toml(item, path)?;
                path.pop();
                map.insert(key, item);
            }
            Value::Object(map)
        }
    })
}

/// An override's value, read as a YAML scalar; anything that is not a scalar
/// JSON can hold stays the text it was.
pub(super) fn yaml_scalar(text: &str) -> Value {
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(serde_norway::Value::Null) => Value::Null,
        Ok(serde_norway::Value::Bool(flag)) => Value::Bool(flag),
        Ok(serde_norway::Value::String(string)) => Value::String(string),
        Ok(number @ serde_norway::Value::Number(_)) => {
            match from_yaml(number, &mut KeyPath::root()) {
                Ok(value) => value,
                Err(_) => Value::String(text.to_owned()),
            }
        }
        _ => Value::String(text.to_owned()),
    }
}

//! Deep merge of JSON values: the original's `merge_dict`, made safe, plus
//! RFC 7396 JSON Merge Patch.
//!
//! ```
//! use conflictkit::merge::merge_dict;
//! use serde_json::json;
//!
//! let defaults = json!({"events": {"http": {"url": "http://127.0.0.1:8080"}}, "plugins": ["a"]});
//! let overrides = json!({"events": {"http": {"url": "http://127.0.0.1:9000"}}, "plugins": ["b"]});
//! assert_eq!(
//!     merge_dict(defaults, overrides)?,
//!     json!({"events": {"http": {"url": "http://127.0.0.1:9000"}}, "plugins": ["a", "b"]})
//! );
//! # Ok::<(), conflictkit::merge::MergeError>(())
//! ```
//!
//! # Rules
//!
//! `b` is merged into `a`, looking at the type of `a` first:
//!
//! - `null`, a boolean, a number or a string in `a` is replaced by `b`, whatever `b` is;
//! - an array in `a` is extended by an array `b`; any other `b` is pushed onto it;
//! - an object in `a` only accepts an object `b`, merged key by key, recursively:
//!   keys only in `b` are added, keys only in `a` are kept. Anything else is a
//!   [`MergeError`] naming the key path (`events.http.url`) and both types.
//!
//! On error `a` is left exactly as it was. `b` is moved into `a`, never copied,
//! and `a` is never cloned: a first read-only pass looks for clashes, a second
//! one moves the values. Both only visit the parts of `a` that `b` reaches.
//!
//! # Modes
//!
//! [`MergeOptions`] picks one of two rule sets: the original's
//! ([`MergeOptions::ORIGINAL`], the default) or exactly RFC 7396 JSON Merge
//! Patch ([`MergeOptions::MERGE_PATCH`]).
//!
//! | `a` (existing) | `b` (incoming) | original `merge_dict` (Python) | [`merge_dict`], [`MergeOptions::ORIGINAL`] (default) | RFC 7396 ([`MergeOptions::MERGE_PATCH`]) |
//! |---|---|---|---|---|
//! | null, bool, number, string | anything | `b` | `b` | `b`; an object `b` is merged into `{}`, so its `null` members are dropped |
//! | array | array | `a` extended by `b` | `a` extended by `b` | `b` |
//! | array | anything else | `b` pushed onto `a` | `b` pushed onto `a` | `b` (an object merged into `{}`) |
//! | object | object | merged key by key | merged key by key | merged key by key |
//! | object | `null` member of an object | error | [`MergeError`] | the key is removed |
//! | (missing key) | `null` member of an object | `null` added | `null` added | nothing added |
//! | object | any other non-object | error | [`MergeError`] | `b` |
//! | on error | | `a` left half merged | `a` unchanged | cannot fail |
//! | values of `b` | | shared with `b` (aliasing) | moved into `a` | moved into `a` (`json_patch::merge` copies them from a borrowed `b`) |
//!
//! The original also raised `NOT IMPLEMENTED` for tuples, sets and other Python
//! objects and wrapped `TypeError`s; a [`serde_json::Value`] has none of those,
//! so the only error left is the object clash. Arrays are never looked into,
//! so merge errors never contain array positions; the [`KeyPath`] type can
//! show them (`servers[3].port`) for the configuration loader's errors.
//!
//! Recursion follows the nesting of `b` (and of `a` where they overlap), as
//! serde_json's own `Clone`, `Drop` and parser do; documents parsed by serde_json
//! are limited to 128 levels.

mod apply;
mod error;
mod options;
mod path;

use serde_json::Value;

pub use error::{JsonType, MergeError};
pub use options::MergeOptions;
pub use path::{KeyPath, PathSegment};

/// Merges `b` into `a` with the original's rules and returns the result.
///
/// See the [module docs](self) for the rules; this is [`merge_with`] with
/// [`MergeOptions::ORIGINAL`].
///
/// ```
/// use conflictkit::merge::merge_dict;
/// use serde_json::json;
///
/// assert_eq!(merge_dict(json!(1), json!({"a": 1}))?, json!({"a": 1}));
/// assert_eq!(merge_dict(json!([1]), json!([2, 3]))?, json!([1, 2, 3]));
/// assert_eq!(merge_dict(json!([1]), json!("x"))?, json!([1, "x"]));
/// assert_eq!(merge_dict(json!({"a": 1, "b": 2}), json!({"b": 3}))?, json!({"a": 1, "b": 3}));
///
/// let err = merge_dict(json!({"db": {"url": "x"}}), json!({"db": "y"})).unwrap_err();
/// assert_eq!(err.path().to_string(), "db");
/// # Ok::<(), conflictkit::merge::MergeError>(())
/// ```
pub fn merge_dict(a: Value, b: Value) -> Result<Value, MergeError> {
    let mut a = a;
    merge_into(&mut a, b)?;
    Ok(a)
}

/// Merges `b` into `a` in place with the original's rules; on error `a` is
/// unchanged.
///
/// ```
/// use conflictkit::merge::merge_into;
/// use serde_json::json;
///
/// let mut config = json!({"db": {"url": "sqlite::memory:"}, "debug": false});
/// merge_into(&mut config, json!({"debug": true}))?;
/// assert_eq!(config, json!({"db": {"url": "sqlite::memory:"}, "debug": true}));
///
/// // `debug` would be merged before the clash at `db` is reached: nothing is.
/// let before = config.clone();
/// assert!(merge_into(&mut config, json!({"debug": 1, "db": null})).is_err());
/// assert_eq!(config, before);
/// # Ok::<(), conflictkit::merge::MergeError>(())
/// ```
pub fn merge_into(a: &mut Value, b: Value) -> Result<(), MergeError> {
    merge_with(a, b, MergeOptions::ORIGINAL)
}

/// Merges `b` into `a` in place with the given options; on error `a` is
/// unchanged.
///
/// ```
/// use conflictkit::merge::{merge_with, MergeOptions};
/// use serde_json::json;
///
/// // RFC 7396, example from its appendix.
/// let mut doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
///                      "tags": ["example", "sample"], "content": "This will be unchanged"});
/// let patch = json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890",
///                    "author": {"familyName": null}, "tags": ["example"]});
/// merge_with(&mut doc, patch, MergeOptions::MERGE_PATCH)?;
/// assert_eq!(doc, json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
///                        "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"}));
/// # Ok::<(), conflictkit::merge::MergeError>(())
/// ```
pub fn merge_with(a: &mut Value, b: Value, options: MergeOptions) -> Result<(), MergeError> {
    apply::check(a, &b, options)?;
    apply::apply(a, b, options);
    Ok(())
}

//! The two rule sets of [`merge_with`](super::merge_with).

/// What happens when `a` holds an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ArrayMode {
    /// The original's rule: an array `b` extends `a` (`a.extend(b)`), any other
    /// `b` is pushed onto it (`a.append(b)`). Arrays only ever grow.
    Append,
    /// `b`, whatever it is, replaces the array, as in RFC 7396.
    Replace,
}

/// What a `null` member of an object in `b` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NullMode {
    /// The original's rule: `null` is a value like any other. It replaces a
    /// scalar, is pushed onto an array, and clashes with an object.
    Replace,
    /// `null` deletes the key (RFC 7396): the key is removed from `a`, or not
    /// added when `a` lacks it, so a `null` member of an object in `b` never
    /// reaches the result. `null` elements of arrays are values and are kept.
    Delete,
}

/// What happens when `a` holds an object and `b` is not an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClashMode {
    /// The original's rule: a [`MergeError`](super::MergeError) naming the key
    /// path and both types, and `a` is left unchanged.
    Error,
    /// `b` replaces the object, as in RFC 7396. Merging can then never fail.
    Replace,
}

/// Which rules [`merge_with`](super::merge_with) follows: the original's
/// `merge_dict` ([`MergeOptions::ORIGINAL`], the default) or RFC 7396 JSON
/// Merge Patch ([`MergeOptions::MERGE_PATCH`]). The table in the
/// [module docs](super) compares them.
///
/// ```
/// use conflictkit::merge::{merge_with, MergeOptions};
/// use serde_json::json;
///
/// let mut config = json!({"tags": ["a"], "debug": true, "db": {"url": "x"}});
/// let patch = json!({"tags": ["b"], "debug": null, "db": "off"});
///
/// // The original refuses to put a string where an object was, and changes nothing.
/// assert!(merge_with(&mut config.clone(), patch.clone(), MergeOptions::ORIGINAL).is_err());
///
/// merge_with(&mut config, patch, MergeOptions::MERGE_PATCH)?;
/// assert_eq!(config, json!({"tags": ["b"], "db": "off"}));
/// assert_eq!(MergeOptions::default(), MergeOptions::ORIGINAL);
/// # Ok::<(), conflictkit::merge::MergeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MergeOptions {
    arrays: ArrayMode,
    nulls: NullMode,
    clashes: ClashMode,
}

impl Default for ArrayMode {
    fn default() -> Self {
        MergeOptions::ORIGINAL.arrays
    }
}

impl Default for NullMode {
    fn default() -> Self {
        MergeOptions::ORIGINAL.nulls
    }
}

impl Default for ClashMode {
    fn default() -> Self {
        MergeOptions::ORIGINAL.clashes
    }
}

impl MergeOptions {
    /// The original `merge_dict` rules (the default): arrays append, `null` is a
    /// value, an object only accepts an object.
    pub const ORIGINAL: Self = Self {
        arrays: ArrayMode::Append,
        nulls: NullMode::Replace,
        clashes: ClashMode::Error,
    };

    /// RFC 7396 JSON Merge Patch: arrays are replaced, `null` deletes, a
    /// non-object replaces an object. Merging with these options never fails.
    pub const MERGE_PATCH: Self = Self {
        arrays: ArrayMode::Replace,
        nulls: NullMode::Delete,
        clashes: ClashMode::Replace,
    };

    /// The default options, [`MergeOptions::ORIGINAL`].
    ///
    /// ```
    /// use conflictkit::merge::MergeOptions;
    /// assert_eq!(MergeOptions::new(), MergeOptions::ORIGINAL);
    /// ```
    pub const fn new() -> Self {
        Self::ORIGINAL
    }

    /// What happens to arrays in `a`.
    pub(crate) const fn array_mode(&self) -> ArrayMode {
        self.arrays
    }

    /// What `null` members of objects in `b` mean.
    pub(crate) const fn null_mode(&self) -> NullMode {
        self.nulls
    }

    /// What happens when a non-object meets an object.
    pub(crate) const fn clash_mode(&self) -> ClashMode {
        self.clashes
    }
}

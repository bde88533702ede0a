//! The knobs of [`merge_with`](super::merge_with).

/// What happens when `a` holds an array.
///
/// ```
/// use conflictkit::merge::{merge_with, ArrayMode, MergeOptions};
/// use serde_json::json;
///
/// let mut a = json!({"tags": ["a"]});
/// merge_with(&mut a, json!({"tags": ["b"]}), MergeOptions::new().arrays(ArrayMode::Replace))?;
/// assert_eq!(a, json!({"tags": ["b"]}));
/// # Ok::<(), conflictkit::merge::MergeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ArrayMode {
    /// The original's rule: an array `b` extends `a` (`a.extend(b)`), any other
    /// `b` is pushed onto it (`a.append(b)`). Arrays only ever grow.
    #[default]
    Append,
    /// `b`, whatever it is, replaces the array, as in RFC 7396.
    Replace,
}

/// What a `null` member of an object in `b` means.
///
/// ```
/// use conflictkit::merge::{merge_with, MergeOptions, NullMode};
/// use serde_json::json;
///
/// let mut a = json!({"debug": true, "port": 80});
/// merge_with(&mut a, json!({"debug": null}), MergeOptions::new().nulls(NullMode::Delete))?;
/// assert_eq!(a, json!({"port": 80}));
/// # Ok::<(), conflictkit::merge::MergeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NullMode {
    /// The original's rule: `null` is a value like any other. It replaces a
    /// scalar, is pushed onto an array, and clashes with an object.
    #[default]
    Replace,
    /// `null` deletes the key (RFC 7396): the key is removed from `a`, or not
    /// added when `a` lacks it, so a `null` member of an object in `b` never
    /// reaches the result. `null` elements of arrays are values and are kept, and
    /// a `null` `b` at the top level is not a key, so it follows the other rules.
    Delete,
}

/// What happens when `a` holds an object and `b` is not an object.
///
/// ```
/// use conflictkit::merge::{merge_with, ClashMode, MergeOptions};
/// use serde_json::json;
///
/// let mut a = json!({"db": {"url": "sqlite::memory:"}});
/// merge_with(&mut a, json!({"db": "off"}), MergeOptions::new().clashes(ClashMode::Replace))?;
/// assert_eq!(a, json!({"db": "off"}));
/// # Ok::<(), conflictkit::merge::MergeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClashMode {
    /// The original's rule: a [`MergeError`](super::MergeError) naming the key
    /// path and both types, and `a` is left unchanged.
    #[default]
    Error,
    /// `b` replaces the object, as in RFC 7396. Merging can then never fail.
    Replace,
}

/// How [`merge_with`](super::merge_with) combines two documents.
///
/// The default is the original's `merge_dict`; [`MergeOptions::MERGE_PATCH`] is
/// exactly RFC 7396 JSON Merge Patch. The table in the [module docs](super)
/// compares them.
///
/// ```
/// use conflictkit::merge::{ArrayMode, ClashMode, MergeOptions, NullMode};
///
/// let options = MergeOptions::new().arrays(ArrayMode::Replace).nulls(NullMode::Delete);
/// assert_eq!(options.array_mode(), ArrayMode::Replace);
/// assert_eq!(options.null_mode(), NullMode::Delete);
/// assert_eq!(options.clash_mode(), ClashMode::Error);
/// assert_eq!(MergeOptions::default(), MergeOptions::ORIGINAL);
/// assert_eq!(options.clashes(ClashMode::Replace), MergeOptions::MERGE_PATCH);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MergeOptions {
    arrays: ArrayMode,
    nulls: NullMode,
    clashes: ClashMode,
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
    /// assert_eq!(conflictkit::merge::MergeOptions::new(), conflictkit::merge::MergeOptions::ORIGINAL);
    /// ```
    pub const fn new() -> Self {
        Self::ORIGINAL
    }

    /// Sets what happens to arrays in `a`.
    ///
    /// ```
    /// use conflictkit::merge::{ArrayMode, MergeOptions};
    /// assert_eq!(MergeOptions::new().arrays(ArrayMode::Replace).array_mode(), ArrayMode::Replace);
    /// ```
    #[must_use]
    pub const fn arrays(mut self, mode: ArrayMode) -> Self {
        self.arrays = mode;
        self
    }

    /// Sets what `null` members of objects in `b` mean.
    ///
    /// ```
    /// use conflictkit::merge::{MergeOptions, NullMode};
    /// assert_eq!(MergeOptions::new().nulls(NullMode::Delete).null_mode(), NullMode::Delete);
    /// ```
    #[must_use]
    pub const fn nulls(mut self, mode: NullMode) -> Self {
        self.nulls = mode;
        self
    }

    /// Sets what happens when a non-object meets an object.
    ///
    /// ```
    /// use conflictkit::merge::{ClashMode, MergeOptions};
    /// assert_eq!(MergeOptions::new().clashes(ClashMode::Replace).clash_mode(), ClashMode::Replace);
    /// ```
    #[must_use]
    pub const fn clashes(mut self, mode: ClashMode) -> Self {
        self.clashes = mode;
        self
    }

    /// What happens to arrays in `a`.
    ///
    /// ```
    /// use conflictkit::merge::{ArrayMode, MergeOptions};
    /// assert_eq!(MergeOptions::MERGE_PATCH.array_mode(), ArrayMode::Replace);
    /// ```
    pub const fn array_mode(&self) -> ArrayMode {
        self.arrays
    }

    /// What `null` members of objects in `b` mean.
    ///
    /// ```
    /// use conflictkit::merge::{MergeOptions, NullMode};
    /// assert_eq!(MergeOptions::MERGE_PATCH.null_mode(), NullMode::Delete);
    /// ```
    pub const fn null_mode(&self) -> NullMode {
        self.nulls
    }

    /// What happens when a non-object meets an object.
    ///
    /// ```
    /// use conflictkit::merge::{ClashMode, MergeOptions};
    /// assert_eq!(MergeOptions::MERGE_PATCH.clash_mode(), ClashMode::Replace);
    /// ```
    pub const fn clash_mode(&self) -> ClashMode {
        self.clashes
    }
}

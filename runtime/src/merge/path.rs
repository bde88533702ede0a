//! Key paths into a JSON document, as shown in error messages.

use std::fmt;

/// One step of a [`KeyPath`]: an object key or an array position.
///
/// ```
/// use conflictkit::merge::{KeyPath, PathSegment};
///
/// let path: KeyPath = [PathSegment::from("servers"), PathSegment::from(3)].into_iter().collect();
/// assert_eq!(path.to_string(), "servers[3]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A key of an object.
    Key(String),
    /// A position in an array, counted from 0.
    Index(usize),
}

impl From<&str> for PathSegment {
    fn from(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

impl From<String> for PathSegment {
    fn from(key: String) -> Self {
        Self::Key(key)
    }
}

impl From<usize> for PathSegment {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

/// Where in a document something happened: `events.http.url`, `servers[3].port`.
///
/// Keys that are not plain words (they contain `.`, `[`, `]`, `"`, white space,
/// or are empty) are shown quoted in brackets, `["a.b"]`, so a path is never
/// ambiguous. The top level itself is the empty path; [`KeyPath::describe`] names
/// it "the top level" for messages.
///
/// ```
/// use conflictkit::merge::KeyPath;
///
/// let mut path = KeyPath::root();
/// path.push_key("events");
/// path.push_key("http.url");
/// path.push_index(0);
/// assert_eq!(path.to_string(), r#"events["http.url"][0]"#);
/// assert_eq!(path.describe(), r#"`events["http.url"][0]`"#);
/// assert_eq!(KeyPath::root().describe(), "the top level");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath {
    segments: Vec<PathSegment>,
}

impl KeyPath {
    /// The empty path: the document itself.
    ///
    /// ```
    /// assert!(conflictkit::merge::KeyPath::root().is_root());
    /// ```
    pub const fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    /// The steps from the top level, outermost first.
    ///
    /// ```
    /// use conflictkit::merge::{KeyPath, PathSegment};
    ///
    /// let path: KeyPath = ["a", "b"].into_iter().map(PathSegment::from).collect();
    /// assert_eq!(path.segments(), [PathSegment::from("a"), PathSegment::from("b")]);
    /// ```
    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }

    /// Whether this is the top level (no steps).
    ///
    /// ```
    /// use conflictkit::merge::KeyPath;
    ///
    /// let mut path = KeyPath::root();
    /// assert!(path.is_root());
    /// path.push_key("a");
    /// assert!(!path.is_root());
    /// ```
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Appends an object key.
    ///
    /// ```
    /// let mut path = conflictkit::merge::KeyPath::root();
    /// path.push_key("events");
    /// assert_eq!(path.to_string(), "events");
    /// ```
    pub fn push_key(&mut self, key: impl Into<String>) {
        self.segments.push(PathSegment::Key(key.into()));
    }

    /// Appends an array position.
    ///
    /// ```
    /// let mut path = conflictkit::merge::KeyPath::root();
    /// path.push_index(3);
    /// assert_eq!(path.to_string(), "[3]");
    /// ```
    pub fn push_index(&mut self, index: usize) {
        self.segments.push(PathSegment::Index(index));
    }

    /// Removes and returns the last step, if any.
    ///
    /// ```
    /// use conflictkit::merge::{KeyPath, PathSegment};
    /// let mut path = KeyPath::root();
    /// path.push_key("a");
    /// assert_eq!(path.pop(), Some(PathSegment::from("a")));
    /// assert_eq!(path.pop(), None);
    /// ```
    pub fn pop(&mut self) -> Option<PathSegment> {
        self.segments.pop()
    }

    /// The path for a message: "the top level" for the empty path, otherwise the
    /// path in backticks.
    ///
    /// ```
    /// let path: conflictkit::merge::KeyPath = ["a".into()].into_iter().collect();
    /// assert_eq!(path.describe(), "`a`");
    /// ```
    pub fn describe(&self) -> String {
        if self.is_root() {
            "the top level".to_owned()
        } else {
            format!("`{self}`")
        }
    }
}

impl FromIterator<PathSegment> for KeyPath {
    fn from_iter<I: IntoIterator<Item = PathSegment>>(iter: I) -> Self {
        Self {
            segments: iter.into_iter().collect(),
        }
    }
}

/// Whether `key` can be shown bare, between dots.
fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && !key.chars().any(|c| {
            matches!(c, '.' | '[' | ']' | '"' | '`') || c.is_whitespace() || c.is_control()
        })
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if is_plain(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                // `Debug` of a str is a quoted, escaped literal, like JSON for the
                // characters that matter here.
                PathSegment::Key(key) => write!(f, "[{key:?}]")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

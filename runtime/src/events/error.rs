//! Error types of the event listener and the event poster.

use std::net::SocketAddr;
use std::time::Duration;

/// The listener configuration is unusable.
///
/// Returned by [`Listener::from_config`](super::Listener::from_config) and
/// [`ListenerConfig::from_config`](super::ListenerConfig::from_config).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerConfigError {
    /// The configuration has no `events` mapping.
    #[error(
        "the configuration has no `events` mapping: add `events: {{<name>: {{class: {HTTP_EVENT_HANDLER_CLASS}, url: http://127.0.0.1:10000}}}}`"
    )]
    MissingEvents,
    /// `events` is present but is not a mapping of name to handler configuration.
    #[error("`events` must be a mapping of handler name to handler configuration, found {found}")]
    EventsNotAMapping {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// No `events.<name>` entry has the HTTP event handler class.
    #[error(
        "no `events.<name>` entry has `class: {HTTP_EVENT_HANDLER_CLASS}`: add one with the `url` the listener should serve"
    )]
    NoHttpHandler,
    /// An entry of `events` has no `class` key.
    #[error("`events.{entry}` has no `class` key: every event handler needs one")]
    MissingClass {
        /// The name of the entry.
        entry: String,
    },
    /// The HTTP event handler entry has no `url` string.
    #[error(
        "`events.{entry}.url` is missing or not a string: set it to e.g. `http://127.0.0.1:10000`"
    )]
    MissingUrl {
        /// The name of the entry.
        entry: String,
    },
    /// The `url` does not parse.
    #[error("`events.{entry}.url` ({url:?}) is not a valid URL")]
    InvalidUrl {
        /// The name of the entry.
        entry: String,
        /// The URL as written.
        url: String,
        /// Why it does not parse (the URL parser's error, kept opaque so
        /// that the parser's version is not part of this API).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The `url` has a path; the listener serves `/` only, as the original did.
    #[error(
        "`events.{entry}.url` has the path {path:?}: the event listener serves only `/`, remove the path"
    )]
    UrlHasPath {
        /// The name of the entry.
        entry: String,
        /// The offending path.
        path: String,
    },
    /// The `url` has no host or no port.
    #[error(
        "`events.{entry}.url` ({url:?}) needs an explicit host and port, e.g. `http://127.0.0.1:10000`"
    )]
    UrlWithoutHostOrPort {
        /// The name of the entry.
        entry: String,
        /// The URL as written.
        url: String,
    },
    /// The host of the `url` does not resolve to an address.
    #[error("`events.{entry}.url`: the host {host:?} does not resolve to an address")]
    UnresolvableHost {
        /// The name of the entry.
        entry: String,
        /// The host as written.
        host: String,
        /// The resolver's error, if any.
        #[source]
        source: Option<std::io::Error>,
    },
    /// A secret of the entry is not a valid webhook secret, or its
    /// `secrets` list is empty ([`SecretError::NoSecrets`]).
    #[error("`events.{entry}.{key}` is not a valid webhook secret")]
    InvalidSecret {
        /// The name of the entry.
        entry: String,
        /// The key within the entry: `secrets[i]`, `secrets` or `secret`.
        key: String,
        /// Why the secret is invalid.
        #[source]
        source: SecretError,
    },
    /// A secret of the entry is not a string.
    #[error(
        "`events.{entry}.{key}` must be a `whsec_…` string (or, for `secrets`, a list of them), found {found}"
    )]
    SecretNotAString {
        /// The name of the entry.
        entry: String,
        /// The key within the entry: `secrets[i]`, `secrets` or `secret`.
        key: String,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// The entry has both the single `secret` and the `secrets` list.
    #[error(
        "`events.{entry}` has both `secret` and `secrets`: keep only `secrets`, a list whose first secret is the current one"
    )]
    SecretAndSecrets {
        /// The name of the entry.
        entry: String,
    },
}

/// The class name cryptoassets.core gives its HTTP event handler; the listener
/// takes its address from the first `events.<name>` entry of this class.
pub const HTTP_EVENT_HANDLER_CLASS: &str = "cryptoassets.core.event.http.HTTPEventHandler";

/// A webhook secret is malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret is empty.
    #[error(
        "the webhook secret is empty: use `whsec_` followed by the base64 of at least one key byte"
    )]
    Empty,
    /// The part after the `whsec_`, `whsk_` or `whpk_` prefix is not base64.
    #[error("the webhook key is not base64 after its `whsec_`, `whsk_` or `whpk_` prefix")]
    NotBase64(#[source] base64::DecodeError),
    /// A list of secrets is empty where at least one is needed (a
    /// [`Verifier`](super::Verifier), or `secrets: []` in a listener's
    /// configuration).
    #[error(
        "no webhook secret given: list at least one `whsec_…` secret (the first is the current one, the others are accepted while keys rotate)"
    )]
    NoSecrets,
    /// The operating system's random generator failed (generating a secret).
    #[error("the operating system's random generator failed: {0}")]
    NoRandomness(String),
    /// The key after `whsk_` or `whpk_` has the wrong number of bytes.
    #[error(
        "the key after `{prefix}` is {found} bytes long, an ed25519 key there is {expected} bytes"
    )]
    WrongKeyLength {
        /// `whsk_` or `whpk_`.
        prefix: &'static str,
        /// The lengths accepted.
        expected: &'static str,
        /// The length found.
        found: usize,
    },
    /// A 64-byte `whsk_` key whose second half is not the public key of its
    /// first half (the seed).
    #[error(
        "the `whsk_` key's public half does not belong to its secret half: export the key pair again"
    )]
    KeyPairMismatch,
    /// The 32 bytes after `whpk_` are not an ed25519 public key.
    #[error("the bytes after `whpk_` are not an ed25519 public key")]
    InvalidPublicKey,
    /// A `whpk_` public key was given where a secret that signs is needed.
    #[error(
        "a `whpk_` public key cannot sign: give the sender the `whsk_` secret key, and the receiver the public key (`ListenerConfig::public_keys`, or `Verifier::trusting`)"
    )]
    PublicKeyWhereSecretExpected,
    /// A secret (`whsec_`, `whsk_`) was given where a public key is expected.
    #[error(
        "a secret (`whsec_…` or `whsk_…`) was given where a `whpk_` public key is expected: a receiver trusts only the public key"
    )]
    SecretWherePublicKeyExpected,
}

/// The listener could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ListenerConfigError),
    /// The listening socket could not be bound (address in use, permission denied, …).
    #[error("could not bind the event listener to {addr}: is another process using the port?")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("could not read the event listener's local address")]
    LocalAddr(#[source] std::io::Error),
    /// `start()` was awaited outside a tokio runtime.
    #[error(
        "Listener::start() must be awaited inside a tokio runtime: from non-async code, build a tokio::runtime::Runtime and start the listener with `runtime.block_on(listener.start())` (its worker threads then serve in the background)"
    )]
    NoRuntime,
    /// An `#[event_listener]` function takes `State<T>` of a type the
    /// listener was not given with [`Listener::with_state`](super::Listener::with_state).
    #[error(
        "the event handler `{handler}` takes `State<{needed}>`, but the listener's state is `{provided}`: give it that state with `Listener::with_state`, or start it with `registered_handlers: false`"
    )]
    MissingState {
        /// The handler's name (function path).
        handler: String,
        /// The state type it takes.
        needed: &'static str,
        /// The listener's state type (`()` without state).
        provided: &'static str,
    },
    /// A transactional handler (`#[event_listener(transactional)]`) is
    /// registered but the listener has no resolver to run its transaction.
    #[error(
        "the event handler `{handler}` is transactional, but the listener has no ConflictResolver to run its transaction: give it one with `Listener::with_resolver(resolver)`, or start it with `registered_handlers: false`"
    )]
    MissingResolver {
        /// The handler's name (function path).
        handler: String,
    },
}

/// Posting an event failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The URL given to [`EventPoster::new`](super::EventPoster::new) does not parse.
    #[error("the event listener URL {url:?} is not a valid http(s) URL")]
    InvalidUrl {
        /// The URL as written.
        url: String,
    },
    /// The event name is empty.
    #[error("the event name is empty: every event needs a name")]
    EmptyEventName,
    /// The data could not be serialised to JSON.
    #[error("the event data could not be serialised to JSON")]
    Serialize(#[source] serde_json::Error),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The listener answered something other than 2xx (and not a redirect).
    #[error("the event listener answered {status} after {attempts} attempt(s): {body}")]
    Status {
        /// The last status code.
        status: u16,
        /// The last response body (truncated to 4 KiB).
        body: String,
        /// How long the last reply's `Retry-After` header asked to wait
        /// (given in seconds or as an HTTP date; a date in the past is
        /// zero), as asked, before any bound the poster or the relay puts
        /// on it. `None` without the header or when it is neither form.
        retry_after: Option<Duration>,
        /// How many requests were sent.
        attempts: u32,
    },
    /// The listener answered a redirect (3xx). Redirects are not followed, so
    /// the event and its signature never go to a host it was not meant for;
    /// point the poster at the final URL.
    #[error(
        "the event listener answered the redirect {status} (to {location:?}) after {attempts} attempt(s): redirects are not followed; post to the final URL"
    )]
    Redirect {
        /// The 3xx status code.
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
        /// How many requests were sent.
        attempts: u32,
    },
    /// The request failed (connection refused, timeout, …) on every attempt.
    #[error("could not deliver the event after {attempts} attempt(s)")]
    Request {
        /// How many requests were sent.
        attempts: u32,
        /// The last error.
        #[source]
        source: reqwest::Error,
    },
}

impl PostError {
    /// The HTTP status of the last reply, when there was one.
    ///
    /// ```
    /// use conflictkit::events::PostError;
    ///
    /// assert_eq!(PostError::EmptyEventName.status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            PostError::Status { status, .. } | PostError::Redirect { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The wait the last reply's `Retry-After` header asked for, when it
    /// had one (see [`PostError::Status`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::events::PostError;
    ///
    /// let err = PostError::Status {
    ///     status: 503,
    ///     body: String::new(),
    ///     retry_after: Some(Duration::from_secs(30)),
    ///     attempts: 4,
    /// };
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PostError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

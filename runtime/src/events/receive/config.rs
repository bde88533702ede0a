//! Listener configuration: explicit, or read from a cryptoassets.core style
//! configuration value.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use super::verifier::Verifier;
use crate::events::error::{HTTP_EVENT_HANDLER_CLASS, ListenerConfigError, SecretError};
use crate::events::send::ed25519::{PUBLIC_PREFIX, WebhookPublicKey};
use crate::events::send::signature::WebhookSecret;

/// How the event listener serves.
///
/// Build it explicitly (every field is public, the rest from `Default`) or
/// read it from configuration with [`ListenerConfig::from_config`].
///
/// ```
/// use std::time::Duration;
/// use conflictkit::events::ListenerConfig;
///
/// let config = ListenerConfig {
///     bind: "127.0.0.1:0".parse()?,
///     max_body: 64 * 1024,
///     secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?],
///     handler_timeout: Some(Duration::from_secs(10)),
///     body_read_timeout: Duration::from_secs(5),
///     max_connections: 256,
///     ..Default::default()
/// };
/// assert!(!config.strict);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Address to bind; port 0 picks a free port. Default `127.0.0.1:10000`.
    pub bind: SocketAddr,
    /// Largest accepted body in bytes (413 above). Default 256 KiB.
    pub max_body: usize,
    /// Standard Webhooks secrets. When the list is not empty, every request
    /// must carry a valid signature by one of them (401 otherwise): the first
    /// is the current secret (the one senders sign with), the others are
    /// accepted while keys rotate. Empty (the default): requests are not
    /// checked. Either way, a request repeating the `webhook-id` of one
    /// already handled (within the tolerance) is answered 200
    /// `{"status": "duplicate"}` and not dispatched again; without secrets
    /// the id is taken as sent. A `whsk_` (ed25519) secret here checks
    /// `v1a` signatures by its public key; a receiver that should not hold
    /// the sender's secret lists the public key in
    /// [`public_keys`](Self::public_keys) instead.
    pub secrets: Vec<WebhookSecret>,
    /// Standard Webhooks public keys (`whpk_`): requests may carry a `v1a`
    /// (ed25519) signature by the secret key of any of them. Checks are on
    /// when this list or [`secrets`](Self::secrets) is not empty; a request
    /// with one valid signature, of either kind, is accepted. Default: none.
    ///
    /// ```
    /// use conflictkit::events::ListenerConfig;
    ///
    /// let config = ListenerConfig {
    ///     public_keys: vec!["whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".parse()?],
    ///     ..ListenerConfig::new("127.0.0.1:0".parse()?)
    /// };
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub public_keys: Vec<WebhookPublicKey>,
    /// Largest accepted difference between `webhook-timestamp` and now; also
    /// how long `webhook-id`s are remembered. Default 5 minutes.
    pub tolerance: Duration,
    /// Answer 404 to events no handler is registered for (default: 200 and a
    /// logged warning, like the original).
    pub strict: bool,
    /// Time limit for each handler (500 when exceeded); `#[event_listener(timeout_ms = …)]`
    /// overrides it per handler. Default: none. An async handler is
    /// cancelled at the limit; a sync one cannot be stopped and keeps running
    /// on its thread: until it returns, its delivery stays claimed (a retry
    /// of the same `webhook-id` waits for it rather than running beside it)
    /// and it keeps its connection's place under
    /// [`max_connections`](Self::max_connections).
    pub handler_timeout: Option<Duration>,
    /// How long shutdown waits for in-flight requests. Default 30 s.
    pub shutdown_timeout: Duration,
    /// Dispatch to the `#[event_listener]` functions of the program (default
    /// `true`); `false` leaves only handlers added with `on`.
    pub registered_handlers: bool,
    /// Time a client gets to send the request body after its headers (a slow
    /// client is answered 408 and disconnected). Headers themselves must
    /// arrive within 30 s. Default [`Self::BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// Connections served at once; at the cap the listener stops accepting
    /// until one closes (clients wait in the accept queue), so slow or idle
    /// clients cannot hold unbounded memory. A connection's place is free
    /// again only once the handlers of its request have ended too: handlers
    /// that go on after their client disconnected count against the cap, so
    /// at most this many requests run handlers at once. Default
    /// [`Self::MAX_CONNECTIONS`]; at least 1 is used.
    pub max_connections: usize,
    /// Memory for request bodies in flight, in bytes, shared by all
    /// requests: a request takes its `Content-Length` from it before its
    /// body is read and gives it back when its reply is ready. A request
    /// that does not fit in what is left is answered 503 with
    /// `Retry-After: 1` at once (Standard Webhooks senders retry it), so
    /// many slow clients cannot hold the connection cap × the largest body.
    /// Default [`Self::BODY_BUDGET`] (64 MiB); never less than
    /// [`max_body`](Self::max_body), so that any accepted body fits alone.
    pub body_budget: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), Self::PORT),
            max_body: Self::MAX_BODY,
            secrets: Vec::new(),
            public_keys: Vec::new(),
            tolerance: Verifier::TOLERANCE,
            strict: false,
            handler_timeout: None,
            shutdown_timeout: Self::SHUTDOWN_TIMEOUT,
            registered_handlers: true,
            body_read_timeout: Self::BODY_READ_TIMEOUT,
            max_connections: Self::MAX_CONNECTIONS,
            body_budget: Self::BODY_BUDGET,
        }
    }
}

impl ListenerConfig {
    /// Default request body limit: 256 KiB.
    pub const MAX_BODY: usize = 256 * 1024;
    /// Default time [`ListenerHandle::shutdown`](crate::events::ListenerHandle::shutdown)
    /// waits for in-flight requests before aborting them.
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default time a client gets to send the whole request body once its
    /// headers are in (408 and the connection closed after it).
    pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default cap on connections open at once; further clients wait in the
    /// operating system's accept queue until one closes.
    pub const MAX_CONNECTIONS: usize = 1024;
    /// Default memory budget for bodies in flight: 64 MiB.
    pub const BODY_BUDGET: usize = 64 * 1024 * 1024;
    /// Default port, the one of the original's example configuration.
    pub const PORT: u16 = 10000;

    /// The defaults with another bind address.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            ..Self::default()
        }
    }

    /// Reads the address the way cryptoassets.core did: the first
    /// `events.<name>` entry whose `class` is
    /// `cryptoassets.core.event.http.HTTPEventHandler`, the host and port of
    /// its `url` (a path other than `/` is an error). An optional `secrets`
    /// list (`whsec_…` strings, the current one first) in the same entry
    /// turns on signature checks; a single `secret` string is read as a list
    /// of one. A `whpk_…` public key in the list goes to
    /// [`public_keys`](Self::public_keys), as the prefix says. Entries are
    /// visited in key order.
    ///
    /// ```
    /// use conflictkit::events::ListenerConfig;
    ///
    /// let config = serde_json::json!({"events": {"http": {
    ///     "class": "cryptoassets.core.event.http.HTTPEventHandler",
    ///     "url": "http://127.0.0.1:10001",
    /// }}});
    /// let config = ListenerConfig::from_config(&config)?;
    /// assert_eq!(config.bind.to_string(), "127.0.0.1:10001");
    /// assert!(config.secrets.is_empty());
    ///
    /// let signed = serde_json::json!({"events": {"http": {
    ///     "class": "cryptoassets.core.event.http.HTTPEventHandler",
    ///     "url": "http://127.0.0.1:10001",
    ///     "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2VjcmV0"],
    /// }}});
    /// assert_eq!(ListenerConfig::from_config(&signed)?.secrets.len(), 2);
    /// # Ok::<(), conflictkit::events::ListenerConfigError>(())
    /// ```
    pub fn from_config(config: &Value) -> Result<Self, ListenerConfigError> {
        let events = match config.get("events") {
            None | Some(Value::Null) => return Err(ListenerConfigError::MissingEvents),
            Some(Value::Object(map)) if map.is_empty() => {
                return Err(ListenerConfigError::MissingEvents);
            }
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(ListenerConfigError::EventsNotAMapping {
                    found: json_type(other),
                });
            }
        };
        for (entry, handler) in events {
            let class = handler
                .get("class")
                .ok_or_else(|| ListenerConfigError::MissingClass {
                    entry: entry.clone(),
                })?;
            if class.as_str() != Some(HTTP_EVENT_HANDLER_CLASS) {
                continue;
            }
            let mut out = Self {
                bind: bind_from_url(entry, handler.get("url"))?,
                ..Self::default()
            };
            for key in secrets_from(entry, handler)? {
                match key {
                    TrustedKey::Secret(secret) => out.secrets.push(secret),
                    TrustedKey::Public(public) => out.public_keys.push(public),
                }
            }
            return Ok(out);
        }
        Err(ListenerConfigError::NoHttpHandler)
    }
}

/// A key of an entry's `secrets` list, by its prefix.
enum TrustedKey {
    Secret(WebhookSecret),
    Public(WebhookPublicKey),
}

impl std::str::FromStr for TrustedKey {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with(PUBLIC_PREFIX) {
            s.parse().map(Self::Public)
        } else {
            s.parse().map(Self::Secret)
        }
    }
}

/// The `secrets` list of an entry (or its single `secret`): none when
/// neither key is there.
fn secrets_from(entry: &str, handler: &Value) -> Result<Vec<TrustedKey>, ListenerConfigError> {
    let (key, value) = match (handler.get("secrets"), handler.get("secret")) {
        (Some(_), Some(_)) => {
            return Err(ListenerConfigError::SecretAndSecrets {
                entry: entry.to_owned(),
            });
        }
        (Some(list), None) => ("secrets", list),
        (None, Some(one)) => ("secret", one),
        (None, None) => return Ok(Vec::new()),
    };
    let texts: Vec<(String, &Value)> = match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{key}[{i}]"), v))
            .collect(),
        other => vec![(key.to_owned(), other)],
    };
    if texts.is_empty() {
        return Err(ListenerConfigError::InvalidSecret {
            entry: entry.to_owned(),
            key: key.to_owned(),
            source: SecretError::NoSecrets,
        });
    }
    texts
        .into_iter()
        .map(|(key, v)| {
            let text = v
                .as_str()
                .ok_or_else(|| ListenerConfigError::SecretNotAString {
                    entry: entry.to_owned(),
                    key: key.clone(),
                    found: json_type(v),
                })?;
            text.parse()
                .map_err(|source| ListenerConfigError::InvalidSecret {
                    entry: entry.to_owned(),
                    key,
                    source,
                })
        })
        .collect()
}

fn bind_from_url(entry: &str, url: Option<&Value>) -> Result<SocketAddr, ListenerConfigError> {
    let text = url
        .and_then(Value::as_str)
        .ok_or_else(|| ListenerConfigError::MissingUrl {
            entry: entry.to_owned(),
        })?;
    let parsed = reqwest::Url::parse(text).map_err(|source| ListenerConfigError::InvalidUrl {
        entry: entry.to_owned(),
        url: text.to_owned(),
        source: Box::new(source),
    })?;
    if !matches!(parsed.path(), "" | "/") {
        return Err(ListenerConfigError::UrlHasPath {
            entry: entry.to_owned(),
            path: parsed.path().to_owned(),
        });
    }
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return Err(ListenerConfigError::UrlWithoutHostOrPort {
            entry: entry.to_owned(),
            url: text.to_owned(),
        });
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let unresolvable = |source| ListenerConfigError::UnresolvableHost {
        entry: entry.to_owned(),
        host: host.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| unresolvable(Some(e)))?
        .collect();
    // Prefer IPv4 for names such as `localhost`, which the original bound to.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| unresolvable(None))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(url: &str) -> Value {
        json!({"events": {"a_script": {"class": "cryptoassets.core.event.script.ScriptEventHandler", "script": "/bin/true"},
                          "http": {"class": HTTP_EVENT_HANDLER_CLASS, "url": url}}})
    }

    #[test]
    fn reads_the_original_layout() {
        assert_eq!(
            ListenerConfig::from_config(&http("http://localhost:10001"))
                .unwrap()
                .bind,
            "127.0.0.1:10001".parse().unwrap()
        );
        assert_eq!(
            ListenerConfig::from_config(&http("http://[::1]:9/"))
                .unwrap()
                .bind,
            "[::1]:9".parse().unwrap()
        );
    }

    #[test]
    fn rejects_what_the_original_rejected() {
        assert!(matches!(
            ListenerConfig::from_config(&json!({})),
            Err(ListenerConfigError::MissingEvents)
        ));
        assert!(matches!(
            ListenerConfig::from_config(&json!({"events": 3})),
            Err(ListenerConfigError::EventsNotAMapping { found: "a number" })
        ));
        assert!(matches!(
            ListenerConfig::from_config(&json!({"events": {"x": {"url": "http://a:1"}}})),
            Err(ListenerConfigError::MissingClass { .. })
        ));
        assert!(matches!(
            ListenerConfig::from_config(&json!({"events": {"x": {"class": "other"}}})),
            Err(ListenerConfigError::NoHttpHandler)
        ));
        assert!(
            matches!(ListenerConfig::from_config(&http("http://127.0.0.1:1/hook")), Err(ListenerConfigError::UrlHasPath { path, .. }) if path == "/hook")
        );
        assert!(matches!(
            ListenerConfig::from_config(&http("file:///tmp")),
            Err(ListenerConfigError::UrlHasPath { .. })
        ));
        assert!(matches!(
            ListenerConfig::from_config(&http("unix:")),
            Err(ListenerConfigError::UrlWithoutHostOrPort { .. })
        ));
        assert!(matches!(
            ListenerConfig::from_config(&http("not a url")),
            Err(ListenerConfigError::InvalidUrl { .. })
        ));
    }

    const CURRENT: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const PREVIOUS: &str = "whsec_c2VjcmV0";

    fn with(key: &str, value: Value) -> Result<ListenerConfig, ListenerConfigError> {
        let mut c = http("http://127.0.0.1:1");
        c["events"]["http"][key] = value;
        ListenerConfig::from_config(&c)
    }

    fn whsecs(config: &ListenerConfig) -> Vec<String> {
        config.secrets.iter().map(WebhookSecret::to_whsec).collect()
    }

    #[test]
    fn reads_a_list_of_secrets_current_first() {
        let c = with("secrets", json!([CURRENT, PREVIOUS])).unwrap();
        assert_eq!(whsecs(&c), [CURRENT, PREVIOUS]);
        // A single string, under either key, is a list of one.
        assert_eq!(whsecs(&with("secrets", json!(CURRENT)).unwrap()), [CURRENT]);
        assert_eq!(whsecs(&with("secret", json!(CURRENT)).unwrap()), [CURRENT]);
        assert!(
            ListenerConfig::from_config(&http("http://127.0.0.1:1"))
                .unwrap()
                .secrets
                .is_empty()
        );
    }

    #[test]
    fn bad_secrets_name_the_key_that_is_wrong() {
        let err = with("secrets", json!([CURRENT, "whsec_%%"])).unwrap_err();
        assert!(
            matches!(&err, ListenerConfigError::InvalidSecret { key, source: SecretError::NotBase64(_), .. } if key == "secrets[1]"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "`events.http.secrets[1]` is not a valid webhook secret"
        );
        let err = with("secrets", json!([])).unwrap_err();
        assert!(
            matches!(&err, ListenerConfigError::InvalidSecret { key, source: SecretError::NoSecrets, .. } if key == "secrets"),
            "{err:?}"
        );
        assert!(matches!(
            with("secrets", json!([CURRENT, 7])),
            Err(ListenerConfigError::SecretNotAString { key, found: "a number", .. }) if key == "secrets[1]"
        ));
        let mut both = http("http://127.0.0.1:1");
        both["events"]["http"]["secret"] = json!(CURRENT);
        both["events"]["http"]["secrets"] = json!([PREVIOUS]);
        let err = ListenerConfig::from_config(&both).unwrap_err();
        assert!(matches!(err, ListenerConfigError::SecretAndSecrets { .. }));
        assert!(err.to_string().contains("keep only `secrets`"), "{err}");
    }
}

//! The sending side: posts events the way cryptoassets.core's
//! `HTTPEventHandler` did, with optional signing, a timeout and bounded
//! retries.

use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, Url, header};
use serde::Serialize;

use super::signature::{
    WEBHOOK_ATTEMPT, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret, unix_now,
};
use super::wire::{form_encode, python_json};
use crate::backoff::Backoff;
use crate::events::error::PostError;

const MAX_ERROR_BODY: usize = 4096;

/// Posts events to an event listener.
///
/// The body is what cryptoassets.core sent, byte for byte: form fields
/// `event_name`, `data` (the JSON text, as Python's `json.dumps` writes it)
/// and `xdata` (a copy). Decimals should serialise as strings (rust_decimal's
/// `serde-str` feature), as the original's did.
///
/// Every event gets a `webhook-id` (`msg_` and 24 random characters), sent on
/// every attempt of that event, signed or not, so the listener can drop
/// duplicates; the `webhook-attempt` header numbers the attempts (1, 2, …).
/// Any 2xx reply is success (as Standard Webhooks says); connection errors,
/// timeouts, 5xx and 429 are retried with exponential backoff (full jitter),
/// or after the reply's `Retry-After` (seconds or an HTTP date, at most
/// [`max_retry_after`](Self::max_retry_after)); other statuses are
/// not. Redirects are not followed: a 3xx is a failure
/// ([`PostError::Redirect`]), so signature headers never go to another host.
///
/// ```no_run
/// use conflictkit::events::EventPoster;
///
/// # async fn f() -> Result<(), conflictkit::events::PostError> {
/// let poster = EventPoster::new("http://127.0.0.1:10000")?;
/// poster.post("txupdate", &serde_json::json!({"txid": "abc", "amount": "1.0"})).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EventPoster {
    url: Url,
    client: reqwest::Client,
    secret: Option<WebhookSecret>,
    timeout: Duration,
    retries: u32,
    backoff: Backoff,
    max_retry_after: Duration,
}

impl EventPoster {
    /// Default time limit of one request.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// Default number of retries after the first attempt.
    pub const RETRIES: u32 = 3;
    /// Default longest wait a `Retry-After` reply header can ask for; a longer
    /// one is cut to this.
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

    /// A poster for the listener at `url` (`http` or `https`).
    pub fn new(url: &str) -> Result<Self, PostError> {
        let invalid = || PostError::InvalidUrl {
            url: url.to_owned(),
        };
        let parsed = Url::parse(url).map_err(|_| invalid())?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(PostError::Client)?;
        Ok(Self {
            url: parsed,
            client,
            secret: None,
            timeout: Self::TIMEOUT,
            retries: Self::RETRIES,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            max_retry_after: Self::MAX_RETRY_AFTER,
        })
    }

    /// Signs every request (Standard Webhooks) with `secret`.
    pub fn secret(mut self, secret: WebhookSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Time limit of each request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 3; 0 = a single attempt).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The wait before retry `n` (1-based) is random in
    /// `0..=min(max, base * 2^(n-1))` (defaults 100 ms and 5 s), the
    /// schedule of [`Backoff`](crate::resolver::Backoff); a `Retry-After`
    /// reply header replaces it (see [`max_retry_after`](Self::max_retry_after)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::events::EventPoster;
    ///
    /// let poster = EventPoster::new("http://127.0.0.1:10000")?
    ///     .backoff(Duration::from_millis(50), Duration::from_secs(2));
    /// # Ok::<(), conflictkit::events::PostError>(())
    /// ```
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(base, max);
        self
    }

    /// The longest wait a `Retry-After` reply header can impose before a retry
    /// (default [`Self::MAX_RETRY_AFTER`]); longer requests are cut to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::events::EventPoster;
    ///
    /// let poster = EventPoster::new("http://127.0.0.1:10000")?
    ///     .max_retry_after(Duration::from_secs(5));
    /// # Ok::<(), conflictkit::events::PostError>(())
    /// ```
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Requests one [`post`](Self::post) sends at most (its retries + 1).
    pub(crate) fn attempts_per_post(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The listener URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The exact body [`post`](Self::post) sends.
    ///
    /// ```
    /// use conflictkit::events::EventPoster;
    ///
    /// let body = EventPoster::encode("foobar", &serde_json::json!({"test": "abc"}))?;
    /// assert_eq!(
    ///     body,
    ///     "event_name=foobar&data=%7B%22test%22%3A+%22abc%22%7D&xdata=%7B%22test%22%3A+%22abc%22%7D"
    /// );
    /// # Ok::<(), conflictkit::events::PostError>(())
    /// ```
    pub fn encode<T: Serialize + ?Sized>(event_name: &str, data: &T) -> Result<String, PostError> {
        if event_name.is_empty() {
            return Err(PostError::EmptyEventName);
        }
        let json = python_json(data).map_err(PostError::Serialize)?;
        Ok(form_encode(&[
            ("event_name", event_name),
            ("data", &json),
            ("xdata", &json),
        ]))
    }

    /// Posts one event; `Ok` on any 2xx reply.
    pub async fn post<T: Serialize + ?Sized>(
        &self,
        event_name: &str,
        data: &T,
    ) -> Result<(), PostError> {
        let body = Self::encode(event_name, data)?;
        // One id for every attempt, so the listener can drop duplicates.
        self.send(event_name, &body, &message_id(), 1).await
    }

    /// Posts one event as the delivery `webhook_id` (the sender's own id,
    /// e.g. from a table of events to send): every retry of the event,
    /// including after a restart, must reuse it so that the listener drops
    /// duplicates. `Ok` on any 2xx reply.
    ///
    /// ```no_run
    /// use conflictkit::events::EventPoster;
    ///
    /// # async fn f() -> Result<(), conflictkit::events::PostError> {
    /// let poster = EventPoster::new("http://127.0.0.1:10000")?;
    /// poster.post_with_id("msg_order_42", "txupdate", &serde_json::json!({"txid": "abc"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn post_with_id<T: Serialize + ?Sized>(
        &self,
        webhook_id: &str,
        event_name: &str,
        data: &T,
    ) -> Result<(), PostError> {
        let body = Self::encode(event_name, data)?;
        self.send(event_name, &body, webhook_id, 1).await
    }

    /// Sends `body` as the delivery `id`, numbering attempts from
    /// `first_attempt`, with retries.
    pub(crate) async fn send(
        &self,
        event_name: &str,
        body: &str,
        id: &str,
        first_attempt: u32,
    ) -> Result<(), PostError> {
        let mut attempt: u32 = first_attempt.saturating_sub(1);
        let last = attempt.saturating_add(self.retries).saturating_add(1);
        loop {
            attempt += 1;
            let mut request = self
                .client
                .post(self.url.clone())
                .timeout(self.timeout)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(WEBHOOK_ID, id)
                .header(WEBHOOK_ATTEMPT, attempt.to_string())
                .body(body.to_owned());
            if let Some(secret) = &self.secret {
                let ts = unix_now();
                request = request
                    .header(WEBHOOK_TIMESTAMP, ts.to_string())
                    .header(WEBHOOK_SIGNATURE, secret.sign(id, ts, body.as_bytes()));
            }
            let mut retry_after = None;
            let retryable = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(url = %self.url, event = event_name, webhook_id = %id, attempt, status = %response.status(), "event posted");
                    return Ok(());
                }
                Ok(response) if response.status().is_redirection() => {
                    let status = response.status();
                    let location = response
                        .headers()
                        .get(header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    tracing::error!(url = %self.url, event = event_name, %status, ?location, "event listener redirected; redirects are not followed");
                    return Err(PostError::Redirect {
                        status: status.as_u16(),
                        location,
                        attempts: attempt,
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    retry_after = response
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let err = PostError::Status {
                        status: status.as_u16(),
                        body: bounded_text(response).await,
                        retry_after,
                        attempts: attempt,
                    };
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        err
                    } else {
                        tracing::error!(url = %self.url, event = event_name, %status, "event listener refused the event");
                        return Err(err);
                    }
                }
                Err(source) => PostError::Request {
                    attempts: attempt,
                    source,
                },
            };
            if attempt >= last {
                tracing::error!(url = %self.url, event = event_name, webhook_id = %id, error = %retryable, "giving up posting the event");
                return Err(retryable);
            }
            let delay = match retry_after {
                Some(asked) => asked.min(self.max_retry_after),
                None => self.backoff.delay(attempt),
            };
            tracing::warn!(url = %self.url, event = event_name, webhook_id = %id, attempt, error = %retryable, ?delay, "posting the event failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

/// `msg_` and 24 random alphanumeric characters from the operating system's
/// generator (the clock-seeded `fastrand` only if that fails).
pub(crate) fn message_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    // 62 * 4 = 248: bytes below it map uniformly; the rare others are redrawn
    // from the cheap generator (uniqueness, not secrecy, is what matters here).
    let id: String = bytes
        .iter()
        .map(|&b| {
            let b = if b < 248 { b } else { fastrand::u8(..248) };
            char::from(ALPHABET[usize::from(b % 62)])
        })
        .collect();
    format!("msg_{id}")
}

/// At most [`MAX_ERROR_BODY`] bytes of a reply body: a huge (or endless)
/// error body is not read past that.
async fn bounded_text(mut response: reqwest::Response) -> String {
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ERROR_BODY - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if text.len() > MAX_ERROR_BODY {
        let mut cut = MAX_ERROR_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// A `Retry-After` value: delay seconds, or an HTTP date (a date in the past
/// is no wait). `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 2015-10-21 07:28:00 GMT is 1_445_412_480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a past date is no wait"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn message_ids_are_distinct_and_well_formed() {
        let a = message_id();
        let b = message_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 24);
        assert!(a.starts_with("msg_"));
        assert!(a[4..].bytes().all(|c| c.is_ascii_alphanumeric()), "{a}");
    }
}

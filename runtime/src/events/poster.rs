//! The sending side: posts events the way cryptoassets.core's
//! `HTTPEventHandler` did, with optional signing, a timeout and bounded
//! retries.

use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde::Serialize;

use super::error::PostError;
use super::signature::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret, unix_now};
use super::wire::{form_encode, python_json};

/// Default time limit of one request.
pub const DEFAULT_POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of retries after the first attempt.
pub const DEFAULT_RETRIES: u32 = 3;

const MAX_ERROR_BODY: usize = 4096;

/// Posts events to an event listener.
///
/// The body is what cryptoassets.core sent, byte for byte: form fields
/// `event_name`, `data` (the JSON text, as Python's `json.dumps` writes it)
/// and `xdata` (a copy). Decimals should serialise as strings (rust_decimal's
/// `serde-str` feature), as the original's did. Only a 200 reply is success;
/// connection errors, timeouts, 5xx and 429 are retried with exponential
/// backoff (full jitter), other statuses are not.
///
/// ```no_run
/// use conflictkit_runtime::events::EventPoster;
///
/// # async fn f() -> Result<(), conflictkit_runtime::events::PostError> {
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
    backoff_base: Duration,
    backoff_max: Duration,
}

impl EventPoster {
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
            .build()
            .map_err(PostError::Client)?;
        Ok(Self {
            url: parsed,
            client,
            secret: None,
            timeout: DEFAULT_POST_TIMEOUT,
            retries: DEFAULT_RETRIES,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        })
    }

    /// Signs every request (Standard Webhooks) with `secret`.
    pub fn with_secret(mut self, secret: WebhookSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Time limit of each request (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 3; 0 = a single attempt).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Backoff before retry `n` is random in `0..=min(max, base * 2^n)`
    /// (defaults 100 ms and 5 s).
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// The listener URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The exact body [`post`](Self::post) sends.
    ///
    /// ```
    /// use conflictkit_runtime::events::EventPoster;
    ///
    /// let body = EventPoster::encode("foobar", &serde_json::json!({"test": "abc"}))?;
    /// assert_eq!(
    ///     body,
    ///     "event_name=foobar&data=%7B%22test%22%3A+%22abc%22%7D&xdata=%7B%22test%22%3A+%22abc%22%7D"
    /// );
    /// # Ok::<(), conflictkit_runtime::events::PostError>(())
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

    /// Posts one event; `Ok` only on a 200 reply.
    pub async fn post<T: Serialize + ?Sized>(
        &self,
        event_name: &str,
        data: &T,
    ) -> Result<(), PostError> {
        let body = Self::encode(event_name, data)?;
        // One id for every attempt, so the listener can drop duplicates.
        let id = format!("msg_{}", fastrand_id());
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .post(self.url.clone())
                .timeout(self.timeout)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.clone());
            if let Some(secret) = &self.secret {
                let ts = unix_now();
                request = request
                    .header(WEBHOOK_ID, &id)
                    .header(WEBHOOK_TIMESTAMP, ts.to_string())
                    .header(WEBHOOK_SIGNATURE, secret.sign(&id, ts, body.as_bytes()));
            }
            let retryable = match request.send().await {
                Ok(response) if response.status() == StatusCode::OK => {
                    tracing::info!(url = %self.url, event = event_name, attempt, "event posted");
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    let mut text = response.text().await.unwrap_or_default();
                    if text.len() > MAX_ERROR_BODY {
                        let mut cut = MAX_ERROR_BODY;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                    }
                    let err = PostError::Status {
                        status: status.as_u16(),
                        body: text,
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
            if attempt > self.retries {
                tracing::error!(url = %self.url, event = event_name, error = %retryable, "giving up posting the event");
                return Err(retryable);
            }
            let delay = self.backoff(attempt);
            tracing::warn!(url = %self.url, event = event_name, attempt, error = %retryable, ?delay, "posting the event failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.backoff_max);
        let nanos = u64::try_from(exp.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

fn fastrand_id() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(24)
        .collect()
}

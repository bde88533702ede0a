//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
//! signature is `v1,` followed by the base64 of its HMAC-SHA256 under the
//! secret's key. A `webhook-signature` header may carry several
//! space-separated signatures (key rotation); one valid one is enough.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::error::SecretError;

/// Header carrying the unique message id (stable across retries).
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the send time in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Header carrying the delivery attempt (1 = first), sent by
/// [`EventPoster`](super::EventPoster) and shown to handlers as
/// [`EventContext::attempt`](super::EventContext::attempt). Not part of
/// Standard Webhooks: other senders may not send it.
pub const WEBHOOK_ATTEMPT: &str = "webhook-attempt";

/// Default tolerance between the sender's timestamp and the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const PREFIX: &str = "whsec_";

/// A Standard Webhooks signing secret: `whsec_` followed by the base64 of the key.
///
/// The key is never printed by `Debug`.
///
/// ```
/// use conflictkit::events::WebhookSecret;
///
/// let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
/// assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
/// # Ok::<(), conflictkit::events::SecretError>(())
/// ```
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// A secret from raw key bytes.
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let key = key.into();
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self { key })
    }

    /// Generates a fresh random 24-byte secret from the operating system's
    /// cryptographic generator (`getrandom`).
    ///
    /// ```
    /// use conflictkit::events::WebhookSecret;
    ///
    /// let secret = WebhookSecret::generate();
    /// assert!(secret.to_whsec().starts_with("whsec_"));
    /// assert_ne!(secret.to_whsec(), WebhookSecret::generate().to_whsec());
    /// ```
    ///
    /// # Panics
    ///
    /// When the operating system has no usable random generator (see
    /// [`try_generate`](Self::try_generate) to handle that instead).
    pub fn generate() -> Self {
        match Self::try_generate() {
            Ok(secret) => secret,
            Err(e) => panic!("{e}"),
        }
    }

    /// Generates a fresh random 24-byte secret from the operating system's
    /// cryptographic generator, or says why it could not.
    ///
    /// ```
    /// use conflictkit::events::WebhookSecret;
    ///
    /// let secret = WebhookSecret::try_generate()?;
    /// assert_eq!(secret.to_whsec().len(), "whsec_".len() + 32);
    /// # Ok::<(), conflictkit::events::SecretError>(())
    /// ```
    pub fn try_generate() -> Result<Self, SecretError> {
        let mut key = vec![0u8; 24];
        getrandom::fill(&mut key).map_err(|e| SecretError::NoRandomness(e.to_string()))?;
        Ok(Self { key })
    }

    /// The secret in its textual form, `whsec_<base64>`.
    pub fn to_whsec(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.key))
    }

    /// Signs `body` for the message `id` sent at `timestamp` (Unix seconds):
    /// returns `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            BASE64.encode(self.mac(id, &timestamp.to_string(), body))
        )
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = SecretError;

    /// Parses `whsec_<base64>`; like the reference implementations, the prefix
    /// is optional.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b64 = s.strip_prefix(PREFIX).unwrap_or(s);
        if b64.is_empty() {
            return Err(SecretError::Empty);
        }
        let key = BASE64.decode(b64).map_err(SecretError::NotBase64)?;
        Self::from_bytes(key)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a request's signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A required header is absent or not valid text.
    #[error(
        "missing or unreadable `{0}` header: signed requests need webhook-id, webhook-timestamp and webhook-signature"
    )]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    #[error("`webhook-timestamp` is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is further from now than the tolerance.
    #[error(
        "`webhook-timestamp` is {skew_secs} s away from the receiver's clock (tolerance {tolerance_secs} s)"
    )]
    OutsideTolerance {
        /// Absolute difference in seconds.
        skew_secs: u64,
        /// The configured tolerance in seconds.
        tolerance_secs: u64,
    },
    /// No `v1` signature matched any configured secret.
    #[error("no signature in `webhook-signature` matches: wrong secret or altered body")]
    Mismatch,
}

/// The verified identity of a signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The `webhook-id`.
    pub id: String,
    /// The `webhook-timestamp`.
    pub timestamp: i64,
}

/// Verifies a request against any of `secrets`, at time `now` (Unix seconds).
///
/// Constant-time comparison; the body is the raw bytes as received.
pub fn verify(
    secrets: &[WebhookSecret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<Verified, SignatureError> {
    let id = id.ok_or(SignatureError::MissingHeader(WEBHOOK_ID))?;
    let ts_text = timestamp.ok_or(SignatureError::MissingHeader(WEBHOOK_TIMESTAMP))?;
    let signatures = signatures.ok_or(SignatureError::MissingHeader(WEBHOOK_SIGNATURE))?;
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now.abs_diff(ts);
    if skew > tolerance.as_secs() {
        return Err(SignatureError::OutsideTolerance {
            skew_secs: skew,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    let candidates: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok())
        .collect();
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = secret.mac(id, ts_text.trim(), body);
        for candidate in &candidates {
            // Lengths are public (always 32 for SHA-256); contents are compared in constant time.
            if candidate.len() == expected.len() {
                matched |= candidate.as_slice().ct_eq(&expected);
            }
        }
    }
    if bool::from(matched) {
        Ok(Verified {
            id: id.to_owned(),
            timestamp: ts,
        })
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The current Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        SECRET.parse().unwrap()
    }

    #[test]
    fn published_test_vector_signs() {
        assert_eq!(secret().sign(ID, TS, BODY), SIG);
    }

    #[test]
    fn published_test_vector_verifies_among_several_signatures() {
        let header = format!("v1,bm9wZQ== v1a,xyz {SIG}");
        let v = verify(
            &[secret()],
            Some(ID),
            Some("1614265330"),
            Some(&header),
            BODY,
            TS + 10,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        assert_eq!(v.id, ID);
    }

    #[test]
    fn rotation_accepts_any_configured_secret() {
        let other = WebhookSecret::generate();
        let sig = other.sign(ID, TS, BODY);
        assert!(
            verify(
                &[secret(), other],
                Some(ID),
                Some("1614265330"),
                Some(&sig),
                BODY,
                TS,
                DEFAULT_TOLERANCE
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                &[secret()],
                Some(ID),
                Some("1614265330"),
                Some(&sig),
                BODY,
                TS,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn altered_body_and_stale_timestamp_are_rejected() {
        let s = [secret()];
        assert_eq!(
            verify(
                &s,
                Some(ID),
                Some("1614265330"),
                Some(SIG),
                b"{}",
                TS,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(
                &s,
                Some(ID),
                Some("1614265330"),
                Some(SIG),
                BODY,
                TS + 301,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::OutsideTolerance { skew_secs: 301, .. })
        ));
        assert_eq!(
            verify(
                &s,
                Some(ID),
                Some("soon"),
                Some(SIG),
                BODY,
                TS,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(
                &s,
                None,
                Some("1614265330"),
                Some(SIG),
                BODY,
                TS,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::MissingHeader(WEBHOOK_ID))
        );
    }

    #[test]
    fn secrets_round_trip_and_reject_garbage() {
        let s = WebhookSecret::generate();
        let again: WebhookSecret = s.to_whsec().parse().unwrap();
        assert_eq!(again.key, s.key);
        assert!(matches!(
            "whsec_".parse::<WebhookSecret>(),
            Err(SecretError::Empty)
        ));
        assert!(matches!(
            "whsec_!!".parse::<WebhookSecret>(),
            Err(SecretError::NotBase64(_))
        ));
        assert_eq!(format!("{s:?}"), "WebhookSecret(<redacted>)");
    }
}

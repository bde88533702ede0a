//! Checking the Standard Webhooks signatures of received requests: `v1`
//! (HMAC-SHA256, compared in constant time) and `v1a` (ed25519, against
//! trusted public keys), with the timestamp tolerance.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::events::error::SecretError;
use crate::events::send::ed25519::WebhookPublicKey;
use crate::events::send::signature::{
    TrustedKey, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret, content, mac,
    unix_now,
};

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
    /// No `v1` signature matched any configured secret, and no `v1a`
    /// signature any trusted public key.
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

/// Checks Standard Webhooks signatures of received requests against one or
/// more secrets (several while keys rotate: a request signed with any of
/// them is accepted).
///
/// Signatures are compared in constant time; the body is the raw bytes as
/// received; the timestamp must be within the [`tolerance`](Self::tolerance)
/// of the receiver's clock. The listener does this itself when its
/// [`ListenerConfig::secrets`](crate::events::ListenerConfig::secrets) or
/// [`public_keys`](crate::events::ListenerConfig::public_keys) are set; a
/// `Verifier` is for requests received some other way (another web
/// framework, a queue).
///
/// ```
/// use conflictkit::events::{Verifier, WebhookSecret};
/// use http::{HeaderMap, HeaderValue};
///
/// let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let body = br#"{"test": 2432232314}"#;
/// let mut headers = HeaderMap::new();
/// headers.insert("webhook-id", HeaderValue::from_static("msg_p5jXN8AQM9LWM0D4loKWxJek"));
/// headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
/// headers.insert(
///     "webhook-signature",
///     HeaderValue::from_static("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// );
///
/// let verifier = Verifier::new([secret])?;
/// // The published example was signed in 2021: check it at that time.
/// let verified = verifier.verify_at(&headers, body, 1614265330)?;
/// assert_eq!(verified.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
/// // Now it is outside the tolerance.
/// assert!(verifier.verify(&headers, body).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    /// HMAC keys (`whsec_`), for `v1`.
    symmetric: Vec<Vec<u8>>,
    /// ed25519 public keys (`whpk_`, and those of `whsk_` secrets), for `v1a`.
    public_keys: Vec<WebhookPublicKey>,
    tolerance: Duration,
}

impl Verifier {
    /// Default tolerance between the sender's timestamp and the receiver's clock.
    pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

    /// A verifier accepting signatures by any of `secrets`, with the
    /// [`Self::TOLERANCE`]. An empty list is [`SecretError::NoSecrets`]:
    /// a verifier without a secret would reject everything.
    ///
    /// ```
    /// use conflictkit::events::{SecretError, Verifier, WebhookSecret};
    ///
    /// let (current, previous) = (WebhookSecret::generate(), WebhookSecret::generate());
    /// let verifier = Verifier::new([current, previous])?;
    /// assert!(matches!(Verifier::new([]), Err(SecretError::NoSecrets)));
    /// # Ok::<(), SecretError>(())
    /// ```
    pub fn new(secrets: impl IntoIterator<Item = WebhookSecret>) -> Result<Self, SecretError> {
        Self::trusting(secrets, [])
    }

    /// A verifier accepting `v1` signatures by any of the symmetric
    /// `secrets` and `v1a` signatures by any of the `public_keys` (and by the
    /// public keys of `whsk_` secrets), with the [`Self::TOLERANCE`]. Both
    /// lists empty is [`SecretError::NoSecrets`].
    ///
    /// ```
    /// use conflictkit::events::{Verifier, WebhookPublicKey, WebhookSecret};
    /// use http::{HeaderMap, HeaderValue};
    ///
    /// // the sender keeps the secret key; the receiver has only the public key
    /// let public: WebhookPublicKey = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".parse()?;
    /// let verifier = Verifier::trusting([], [public])?;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("webhook-id", HeaderValue::from_static("msg_p5jXN8AQM9LWM0D4loKWxJek"));
    /// headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
    /// headers.insert("webhook-signature", HeaderValue::from_static(
    ///     "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==",
    /// ));
    /// let verified = verifier.verify_at(&headers, br#"{"test": 2432232314}"#, 1614265330)?;
    /// assert_eq!(verified.id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trusting(
        secrets: impl IntoIterator<Item = WebhookSecret>,
        public_keys: impl IntoIterator<Item = WebhookPublicKey>,
    ) -> Result<Self, SecretError> {
        let mut verifier = Self {
            symmetric: Vec::new(),
            public_keys: public_keys.into_iter().collect(),
            tolerance: Self::TOLERANCE,
        };
        for secret in secrets {
            match secret.into_trusted() {
                TrustedKey::Symmetric(key) => verifier.symmetric.push(key),
                TrustedKey::Public(key) => verifier.public_keys.push(key),
            }
        }
        if verifier.symmetric.is_empty() && verifier.public_keys.is_empty() {
            return Err(SecretError::NoSecrets);
        }
        Ok(verifier)
    }

    /// The largest accepted difference between `webhook-timestamp` and the
    /// receiver's clock (default [`Self::TOLERANCE`], 5 minutes).
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::events::{Verifier, WebhookSecret};
    ///
    /// let verifier = Verifier::new([WebhookSecret::generate()])?.tolerance(Duration::from_secs(60));
    /// # Ok::<(), conflictkit::events::SecretError>(())
    /// ```
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies a request from its `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` headers and its raw body, against the system
    /// clock. See the [type's example](Self).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verified, SignatureError> {
        self.verify_at(headers, body, unix_now())
    }

    /// [`verify`](Self::verify) as if the receiver's clock read `now` (Unix
    /// seconds): for tests, and for requests checked later than they arrived.
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, SignatureError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(SignatureError::MissingHeader(name))
        };
        let id = header(WEBHOOK_ID)?;
        let ts_text = header(WEBHOOK_TIMESTAMP)?.trim();
        let signatures = header(WEBHOOK_SIGNATURE)?;
        let ts: i64 = ts_text.parse().map_err(|_| SignatureError::BadTimestamp)?;
        let skew = now.abs_diff(ts);
        if skew > self.tolerance.as_secs() {
            return Err(SignatureError::OutsideTolerance {
                skew_secs: skew,
                tolerance_secs: self.tolerance.as_secs(),
            });
        }
        let decoded = |version: &'static str| -> Vec<Vec<u8>> {
            signatures
                .split(' ')
                .filter_map(|sig| sig.strip_prefix(version))
                .filter_map(|b64| BASE64.decode(b64).ok())
                .collect()
        };
        let mut matched = subtle::Choice::from(0);
        let candidates = decoded("v1,");
        for key in &self.symmetric {
            let expected = mac(key, id, ts_text, body);
            for candidate in &candidates {
                // Lengths are public (always 32 for SHA-256); contents are compared in constant time.
                if candidate.len() == expected.len() {
                    matched |= candidate.as_slice().ct_eq(&expected);
                }
            }
        }
        // ed25519 signatures are checked against public keys: nothing secret
        // to compare in constant time.
        let asymmetric = decoded("v1a,");
        let signed = content(id, ts_text, body);
        let v1a = self.public_keys.iter().any(|key| {
            asymmetric
                .iter()
                .any(|signature| key.verifies(&signed, signature))
        });
        if bool::from(matched) || v1a {
            Ok(Verified {
                id: id.to_owned(),
                timestamp: ts,
            })
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

impl fmt::Debug for Verifier {
    /// Symmetric keys are secrets: only their number is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("symmetric_secrets", &self.symmetric.len())
            .field("public_keys", &self.public_keys)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        SECRET.parse().unwrap()
    }

    fn headers(id: Option<&str>, ts: Option<&str>, sig: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [
            (WEBHOOK_ID, id),
            (WEBHOOK_TIMESTAMP, ts),
            (WEBHOOK_SIGNATURE, sig),
        ] {
            if let Some(v) = value {
                h.insert(name, HeaderValue::from_str(v).unwrap());
            }
        }
        h
    }

    fn signed(sig: &str) -> HeaderMap {
        headers(Some(ID), Some("1614265330"), Some(sig))
    }

    #[test]
    fn published_test_vector_signs() {
        assert_eq!(secret().sign(ID, TS, BODY), SIG);
    }

    #[test]
    fn published_test_vector_verifies_among_several_signatures() {
        let header = format!("v1,bm9wZQ== v1a,xyz {SIG}");
        let v = Verifier::new([secret()])
            .unwrap()
            .verify_at(&signed(&header), BODY, TS + 10)
            .unwrap();
        assert_eq!((v.id.as_str(), v.timestamp), (ID, TS));
    }

    #[test]
    fn rotation_accepts_any_configured_secret() {
        let other = WebhookSecret::generate();
        let sig = other.sign(ID, TS, BODY);
        let both = Verifier::new([secret(), other]).unwrap();
        assert!(both.verify_at(&signed(&sig), BODY, TS).is_ok());
        let one = Verifier::new([secret()]).unwrap();
        assert_eq!(
            one.verify_at(&signed(&sig), BODY, TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn altered_body_stale_timestamp_and_missing_headers_are_rejected() {
        let v = Verifier::new([secret()]).unwrap();
        assert_eq!(
            v.verify_at(&signed(SIG), b"{}", TS),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            v.verify_at(&signed(SIG), BODY, TS + 301),
            Err(SignatureError::OutsideTolerance {
                skew_secs: 301,
                tolerance_secs: 300
            })
        ));
        assert!(
            v.clone()
                .tolerance(Duration::from_secs(400))
                .verify_at(&signed(SIG), BODY, TS + 301)
                .is_ok()
        );
        assert_eq!(
            v.verify_at(&headers(Some(ID), Some("soon"), Some(SIG)), BODY, TS),
            Err(SignatureError::BadTimestamp)
        );
        for (h, missing) in [
            (headers(None, Some("1614265330"), Some(SIG)), WEBHOOK_ID),
            (headers(Some(ID), None, Some(SIG)), WEBHOOK_TIMESTAMP),
            (
                headers(Some(ID), Some("1614265330"), None),
                WEBHOOK_SIGNATURE,
            ),
        ] {
            assert_eq!(
                v.verify_at(&h, BODY, TS),
                Err(SignatureError::MissingHeader(missing))
            );
        }
        let mut not_text = signed(SIG);
        not_text.insert(WEBHOOK_ID, HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(
            v.verify_at(&not_text, BODY, TS),
            Err(SignatureError::MissingHeader(WEBHOOK_ID))
        );
    }

    #[test]
    fn a_verifier_needs_a_secret() {
        assert!(matches!(
            Verifier::new(Vec::new()),
            Err(SecretError::NoSecrets)
        ));
    }

    #[test]
    fn secrets_round_trip_and_reject_garbage() {
        let s = WebhookSecret::generate();
        let again: WebhookSecret = s.to_whsec().parse().unwrap();
        assert_eq!(again.sign(ID, TS, BODY), s.sign(ID, TS, BODY));
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

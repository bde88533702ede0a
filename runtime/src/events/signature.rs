//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
//! signature is `v1,` followed by the base64 of its HMAC-SHA256 under a
//! symmetric secret (`whsec_`), or `v1a,` followed by the base64 of its
//! ed25519 signature under a secret key (`whsk_`) whose public key
//! (`whpk_`, see `ed25519`) the receiver trusts. A `webhook-signature`
//! header may carry several space-separated signatures (key rotation, or
//! both schemes); one valid one is enough.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::ed25519::{self, PUBLIC_PREFIX, SECRET_PREFIX, SYMMETRIC_PREFIX, WebhookPublicKey};
use super::error::SecretError;

/// Header carrying the unique message id (stable across retries).
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the send time in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more `v1,<base64>` / `v1a,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Header carrying the delivery attempt (1 = first), sent by
/// [`EventPoster`](super::EventPoster) and shown to handlers as
/// [`EventContext::attempt`](super::EventContext::attempt). Not part of
/// Standard Webhooks: other senders may not send it.
pub const WEBHOOK_ATTEMPT: &str = "webhook-attempt";

/// A Standard Webhooks signing secret: `whsec_` followed by the base64 of a
/// symmetric key (`v1` signatures, HMAC-SHA256), or `whsk_` followed by the
/// base64 of an ed25519 secret key (`v1a` signatures; receivers trust its
/// [`public_key`](Self::public_key), a [`WebhookPublicKey`]). The prefix
/// says which; without one the text is a symmetric key, as in the
/// reference implementations.
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
    key: Key,
}

#[derive(Clone)]
enum Key {
    /// `whsec_`: an HMAC-SHA256 key.
    Symmetric(Vec<u8>),
    /// `whsk_`: an ed25519 secret key.
    Ed25519(ed25519_dalek::SigningKey),
}

impl WebhookSecret {
    /// A symmetric secret from raw key bytes.
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let key = key.into();
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self {
            key: Key::Symmetric(key),
        })
    }

    /// Generates a fresh ed25519 secret key (`whsk_`) from the operating
    /// system's cryptographic generator: it signs `v1a`, and receivers trust
    /// its [`public_key`](Self::public_key).
    ///
    /// ```
    /// use conflictkit::events::WebhookSecret;
    ///
    /// let secret = WebhookSecret::generate_ed25519();
    /// assert!(secret.to_whsec().starts_with("whsk_"));
    /// assert!(secret.sign("msg_1", 1614265330, b"{}").starts_with("v1a,"));
    /// ```
    ///
    /// # Panics
    ///
    /// When the operating system has no usable random generator (see
    /// [`try_generate_ed25519`](Self::try_generate_ed25519) to handle that instead).
    pub fn generate_ed25519() -> Self {
        match Self::try_generate_ed25519() {
            Ok(secret) => secret,
            Err(e) => panic!("{e}"),
        }
    }

    /// Generates a fresh ed25519 secret key, or says why it could not.
    pub fn try_generate_ed25519() -> Result<Self, SecretError> {
        let mut seed = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
        getrandom::fill(&mut seed).map_err(|e| SecretError::NoRandomness(e.to_string()))?;
        Ok(Self {
            key: Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
        })
    }

    /// The public key receivers trust for this secret's `v1a` signatures; none
    /// for a symmetric (`whsec_`) secret, which receivers must hold itself.
    pub fn public_key(&self) -> Option<WebhookPublicKey> {
        match &self.key {
            Key::Symmetric(_) => None,
            Key::Ed25519(key) => Some(ed25519::public_key(key)),
        }
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
        Self::from_bytes(key)
    }

    /// The secret in its textual form: `whsec_<base64>` for a symmetric
    /// secret, `whsk_<base64 of the 32-byte seed>` for an ed25519 one.
    pub fn to_whsec(&self) -> String {
        match &self.key {
            Key::Symmetric(key) => format!("{SYMMETRIC_PREFIX}{}", BASE64.encode(key)),
            Key::Ed25519(key) => ed25519::to_whsk(key),
        }
    }

    /// Signs `body` for the message `id` sent at `timestamp` (Unix seconds):
    /// returns `v1,<base64 HMAC-SHA256 of id.timestamp.body>` for a
    /// symmetric secret, `v1a,<base64 ed25519 signature of id.timestamp.body>`
    /// for an ed25519 one.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        match &self.key {
            Key::Symmetric(key) => {
                format!("v1,{}", BASE64.encode(mac(key, id, &timestamp, body)))
            }
            Key::Ed25519(key) => ed25519::sign(key, &content(id, &timestamp, body)),
        }
    }
}

/// The signed content, `{id}.{timestamp}.{body}`, in parts.
fn content<'a>(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    [id.as_bytes(), b".", timestamp.as_bytes(), b".", body]
}

/// The HMAC-SHA256 of the signed content under `key`.
fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in content(id, timestamp, body) {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

impl std::str::FromStr for WebhookSecret {
    type Err = SecretError;

    /// Parses `whsec_<base64>` (symmetric; like the reference
    /// implementations, the prefix is optional) or `whsk_<base64>` (ed25519:
    /// the 32-byte seed, or 64 bytes of seed and public key). A public key
    /// (`whpk_…`) is refused: it cannot sign; parse it as a
    /// [`WebhookPublicKey`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with(PUBLIC_PREFIX) {
            return Err(SecretError::PublicKeyWhereSecretExpected);
        }
        if let Some(b64) = s.strip_prefix(SECRET_PREFIX) {
            let bytes = BASE64.decode(b64).map_err(SecretError::NotBase64)?;
            return Ok(Self {
                key: Key::Ed25519(ed25519::signing_key(&bytes)?),
            });
        }
        let b64 = s.strip_prefix(SYMMETRIC_PREFIX).unwrap_or(s);
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
/// [`ListenerConfig::secrets`](super::ListenerConfig::secrets) are set; a
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
            match secret.key {
                Key::Symmetric(key) => verifier.symmetric.push(key),
                Key::Ed25519(key) => verifier.public_keys.push(ed25519::public_key(&key)),
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

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
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ed25519::{self, PUBLIC_PREFIX, SECRET_PREFIX, SYMMETRIC_PREFIX, WebhookPublicKey};
use crate::events::error::SecretError;

/// Header carrying the unique message id (stable across retries).
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header carrying the send time in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more `v1,<base64>` / `v1a,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Header carrying the delivery attempt (1 = first), sent by
/// [`EventPoster`](crate::events::EventPoster) and shown to handlers as
/// [`EventContext::attempt`](crate::events::EventContext::attempt). Not part of
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
pub(crate) fn content<'a>(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    [id.as_bytes(), b".", timestamp.as_bytes(), b".", body]
}

/// The HMAC-SHA256 of the signed content under `key`.
pub(crate) fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
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

/// What a receiver keeps of a secret to check signatures with.
pub(crate) enum TrustedKey {
    /// An HMAC key, for `v1`.
    Symmetric(Vec<u8>),
    /// An ed25519 public key, for `v1a`.
    Public(WebhookPublicKey),
}

impl WebhookSecret {
    /// What a receiver keeps of this secret: the HMAC key, or the public key
    /// of an ed25519 secret key.
    pub(crate) fn into_trusted(self) -> TrustedKey {
        match self.key {
            Key::Symmetric(key) => TrustedKey::Symmetric(key),
            Key::Ed25519(key) => TrustedKey::Public(ed25519::public_key(&key)),
        }
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The current Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

//! Standard Webhooks' asymmetric signatures: `v1a`, ed25519 over the same
//! signed content as `v1` (`{webhook-id}.{webhook-timestamp}.{body}`).
//!
//! The sender keeps a `whsk_` secret key (a [`WebhookSecret`]); receivers
//! trust only its `whpk_` public key (a [`WebhookPublicKey`]), which cannot
//! sign: a leaked public key lets nobody forge a request. The key pair and
//! the signature are plain RFC 8032 ed25519 (the `ed25519-dalek` crate).
//!
//! [`WebhookSecret`]: crate::events::WebhookSecret

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, Signature, SigningKey, VerifyingKey};

use crate::events::error::SecretError;

/// The textual prefix of an ed25519 secret key.
pub(crate) const SECRET_PREFIX: &str = "whsk_";
/// The textual prefix of an ed25519 public key.
pub(crate) const PUBLIC_PREFIX: &str = "whpk_";
/// The textual prefix of a symmetric secret.
pub(crate) const SYMMETRIC_PREFIX: &str = "whsec_";

/// A Standard Webhooks public key, `whpk_` followed by the base64 of the 32
/// bytes of an ed25519 public key: what a receiver trusts to check `v1a`
/// signatures. It verifies and cannot sign.
///
/// ```
/// use conflictkit::events::{WebhookPublicKey, WebhookSecret};
///
/// let secret = WebhookSecret::generate_ed25519();
/// let public = secret.public_key().expect("an ed25519 secret has one");
/// let again: WebhookPublicKey = public.to_whpk().parse()?;
/// assert_eq!(again, public);
/// assert!(public.to_whpk().starts_with("whpk_"));
/// # Ok::<(), conflictkit::events::SecretError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookPublicKey {
    key: VerifyingKey,
}

impl WebhookPublicKey {
    /// A public key from its 32 raw bytes; bytes that are not a point of the
    /// curve are [`SecretError::InvalidPublicKey`].
    ///
    /// ```
    /// use conflictkit::events::{SecretError, WebhookPublicKey};
    ///
    /// // RFC 8032, section 7.1, TEST 2
    /// let bytes: [u8; 32] = [
    ///     0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
    ///     0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c,
    /// ];
    /// assert!(WebhookPublicKey::from_bytes(bytes).is_ok());
    /// # Ok::<(), SecretError>(())
    /// ```
    pub fn from_bytes(bytes: [u8; PUBLIC_KEY_LENGTH]) -> Result<Self, SecretError> {
        VerifyingKey::from_bytes(&bytes)
            .map(|key| Self { key })
            .map_err(|_| SecretError::InvalidPublicKey)
    }

    /// The key in its textual form, `whpk_<base64>`.
    pub fn to_whpk(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", BASE64.encode(self.key.as_bytes()))
    }

    /// Whether `signature` (the 64 raw bytes of a `v1a` signature) signs
    /// `content` under this key. Strict verification: non-canonical
    /// signatures and weak keys are refused.
    pub(crate) fn verifies(&self, content: &[&[u8]], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.key
            .verify_strict(&content.concat(), &signature)
            .is_ok()
    }
}

impl std::str::FromStr for WebhookPublicKey {
    type Err = SecretError;

    /// Parses `whpk_<base64>`; the prefix is optional, as `whsec_` is for
    /// symmetric secrets. A secret (`whsec_…`, `whsk_…`) is refused: a
    /// receiver needs only the public key.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with(SYMMETRIC_PREFIX) || s.starts_with(SECRET_PREFIX) {
            return Err(SecretError::SecretWherePublicKeyExpected);
        }
        let b64 = s.strip_prefix(PUBLIC_PREFIX).unwrap_or(s);
        let bytes = BASE64.decode(b64).map_err(SecretError::NotBase64)?;
        let bytes: [u8; PUBLIC_KEY_LENGTH] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SecretError::WrongKeyLength {
                    prefix: PUBLIC_PREFIX,
                    expected: "32",
                    found: bytes.len(),
                })?;
        Self::from_bytes(bytes)
    }
}

impl fmt::Debug for WebhookPublicKey {
    /// A public key is not secret: `Debug` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookPublicKey({})", self.to_whpk())
    }
}

/// An ed25519 secret key from the bytes after `whsk_`: the 32-byte seed
/// (RFC 8032's secret key), or the 64 bytes of seed and public key that Go's
/// `crypto/ed25519` and libsodium write, whose public half must match.
pub(crate) fn signing_key(bytes: &[u8]) -> Result<SigningKey, SecretError> {
    match bytes.len() {
        SECRET_KEY_LENGTH => {
            let seed: [u8; SECRET_KEY_LENGTH] = bytes
                .try_into()
                .unwrap_or_else(|_| unreachable!("the length was checked"));
            Ok(SigningKey::from_bytes(&seed))
        }
        64 => {
            let (seed, public) = bytes.split_at(SECRET_KEY_LENGTH);
            let key = signing_key(seed)?;
            if key.verifying_key().as_bytes().as_slice() != public {
                return Err(SecretError::KeyPairMismatch);
            }
            Ok(key)
        }
        found => Err(SecretError::WrongKeyLength {
            prefix: SECRET_PREFIX,
            expected: "32 (or 64: seed and public key)",
            found,
        }),
    }
}

/// `v1a,<base64>` of `key`'s signature of `content`.
pub(crate) fn sign(key: &SigningKey, content: &[&[u8]]) -> String {
    use ed25519_dalek::Signer as _;
    format!(
        "v1a,{}",
        BASE64.encode(key.sign(&content.concat()).to_bytes())
    )
}

/// The public key of an ed25519 secret key.
pub(crate) fn public_key(key: &SigningKey) -> WebhookPublicKey {
    WebhookPublicKey {
        key: key.verifying_key(),
    }
}

/// `whsk_<base64 of the 32-byte seed>`.
pub(crate) fn to_whsk(key: &SigningKey) -> String {
    format!("{SECRET_PREFIX}{}", BASE64.encode(key.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{SignatureError, Verifier, WebhookSecret};
    use http::{HeaderMap, HeaderValue};

    /// RFC 8032 section 7.1, TEST 2: secret key, public key, message 0x72, signature.
    const RFC_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
    const RFC_PUBLIC: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
    const RFC_SIGNATURE: &str = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                                 085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

    /// A `v1a` vector made with another implementation (OpenSSL 3.0, `openssl
    /// pkeyutl -sign -rawin`) from RFC 8032's TEST 1 key over the Standard
    /// Webhooks example message (the one of the spec's `v1` vector).
    const WHSK: &str = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    const WHPK: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const V1A: &str = "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==";

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn signed(signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_static(ID));
        h.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(signature).unwrap(),
        );
        h
    }

    #[test]
    fn the_rfc_8032_vector_holds() {
        let key = signing_key(&hex(RFC_SEED)).unwrap();
        assert_eq!(key.verifying_key().as_bytes().to_vec(), hex(RFC_PUBLIC));
        let expected = format!("v1a,{}", BASE64.encode(hex(RFC_SIGNATURE)));
        assert_eq!(sign(&key, &[&[0x72]]), expected);
        assert!(public_key(&key).verifies(&[&[0x72]], &hex(RFC_SIGNATURE)));
        assert!(!public_key(&key).verifies(&[&[0x73]], &hex(RFC_SIGNATURE)));
    }

    #[test]
    fn the_openssl_v1a_vector_signs_and_verifies() {
        let secret: WebhookSecret = WHSK.parse().unwrap();
        assert_eq!(secret.sign(ID, TS, BODY), V1A);
        assert_eq!(secret.to_whsec(), WHSK);
        let public: WebhookPublicKey = WHPK.parse().unwrap();
        assert_eq!(secret.public_key(), Some(public.clone()));
        let verifier = Verifier::trusting([], [public]).unwrap();
        let verified = verifier.verify_at(&signed(V1A), BODY, TS).unwrap();
        assert_eq!((verified.id.as_str(), verified.timestamp), (ID, TS));
        // among other signatures, one valid `v1a` is enough
        let several = format!("v1,bm9wZQ== v1a,AAAA {V1A}");
        assert!(verifier.verify_at(&signed(&several), BODY, TS).is_ok());
    }

    #[test]
    fn altered_content_or_another_key_is_a_mismatch() {
        let verifier = Verifier::trusting([], [WHPK.parse().unwrap()]).unwrap();
        assert_eq!(
            verifier.verify_at(&signed(V1A), b"{}", TS),
            Err(SignatureError::Mismatch)
        );
        let other = WebhookSecret::generate_ed25519();
        let forged = other.sign(ID, TS, BODY);
        assert_eq!(
            verifier.verify_at(&signed(&forged), BODY, TS),
            Err(SignatureError::Mismatch)
        );
        // a `v1a` signature is not taken for a `v1` one, nor the reverse
        let hmac: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        let as_v1 = V1A.replacen("v1a,", "v1,", 1);
        let mixed = Verifier::trusting([hmac.clone()], [WHPK.parse().unwrap()]).unwrap();
        assert_eq!(
            mixed.verify_at(&signed(&as_v1), BODY, TS),
            Err(SignatureError::Mismatch)
        );
        let v1 = hmac.sign(ID, TS, BODY);
        assert!(mixed.verify_at(&signed(&v1), BODY, TS).is_ok());
        let as_v1a = v1.replacen("v1,", "v1a,", 1);
        assert_eq!(
            mixed.verify_at(&signed(&as_v1a), BODY, TS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_whsk_secret_verifies_its_own_signatures() {
        let secret = WebhookSecret::generate_ed25519();
        let verifier = Verifier::new([secret.clone()]).unwrap();
        let signature = secret.sign(ID, TS, BODY);
        assert!(verifier.verify_at(&signed(&signature), BODY, TS).is_ok());
        let again: WebhookSecret = secret.to_whsec().parse().unwrap();
        assert_eq!(again.sign(ID, TS, BODY), signature);
    }

    #[test]
    fn the_64_byte_form_of_go_and_libsodium_is_read() {
        let seed = hex(RFC_SEED);
        let mut pair = seed.clone();
        pair.extend(hex(RFC_PUBLIC));
        let long: WebhookSecret = format!("whsk_{}", BASE64.encode(&pair)).parse().unwrap();
        let short: WebhookSecret = format!("whsk_{}", BASE64.encode(&seed)).parse().unwrap();
        assert_eq!(long.sign(ID, TS, BODY), short.sign(ID, TS, BODY));
        let mut wrong = pair.clone();
        wrong[63] ^= 1;
        assert!(matches!(
            format!("whsk_{}", BASE64.encode(&wrong)).parse::<WebhookSecret>(),
            Err(SecretError::KeyPairMismatch)
        ));
    }

    #[test]
    fn malformed_keys_get_errors_that_say_what_is_wrong() {
        let short = format!("whsk_{}", BASE64.encode([7u8; 31]));
        let err = short.parse::<WebhookSecret>().unwrap_err();
        assert!(matches!(
            err,
            SecretError::WrongKeyLength {
                prefix: "whsk_",
                found: 31,
                ..
            }
        ));
        assert!(err.to_string().contains("31 bytes"), "{err}");
        assert!(matches!(
            format!("whpk_{}", BASE64.encode([7u8; 33])).parse::<WebhookPublicKey>(),
            Err(SecretError::WrongKeyLength {
                prefix: "whpk_",
                found: 33,
                ..
            })
        ));
        assert!(matches!(
            WHPK.parse::<WebhookSecret>(),
            Err(SecretError::PublicKeyWhereSecretExpected)
        ));
        assert!(matches!(
            WHSK.parse::<WebhookPublicKey>(),
            Err(SecretError::SecretWherePublicKeyExpected)
        ));
        assert!(matches!(
            "whpk_!!".parse::<WebhookPublicKey>(),
            Err(SecretError::NotBase64(_))
        ));
        assert!(matches!(
            Verifier::trusting([], []),
            Err(SecretError::NoSecrets)
        ));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let secret: WebhookSecret = WHSK.parse().unwrap();
        let hmac: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
        let verifier = Verifier::new([secret, hmac]).unwrap();
        let shown = format!("{verifier:?}");
        assert!(shown.contains(WHPK), "{shown}");
        assert!(
            !shown.contains("nWGxne") && !shown.contains("MfKQ9r8G"),
            "{shown}"
        );
    }
}

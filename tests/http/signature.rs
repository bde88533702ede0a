//! Standard Webhooks signatures: the published test vector, and a signed
//! listener over real HTTP (401 cases, key rotation, duplicate webhook-id,
//! ed25519 `v1a` signatures checked against a public key).

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use common::events::{Reply, isolated_config};
use conflictkit::events::{
    EventPoster, Listener, ListenerConfig, ListenerHandle, SecretError, SignatureError, Verifier,
    WebhookPublicKey, WebhookSecret,
};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

// https://www.standardwebhooks.com/ — the specification's published example.
const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TS: i64 = 1614265330;
const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

#[test]
fn the_published_test_vector_signs_and_verifies() {
    let secret: WebhookSecret = VECTOR_SECRET.parse().unwrap();
    assert_eq!(
        secret.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY),
        VECTOR_SIGNATURE
    );
    let verified = Verifier::new([secret])
        .unwrap()
        .verify_at(&vector_headers(VECTOR_SIGNATURE), VECTOR_BODY, VECTOR_TS)
        .unwrap();
    assert_eq!(
        (verified.id.as_str(), verified.timestamp),
        (VECTOR_ID, VECTOR_TS)
    );
}

/// The published example's headers, with `signature` as `webhook-signature`.
fn vector_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static(VECTOR_ID));
    headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(signature).unwrap(),
    );
    headers
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn signed_listener(
    secret: &WebhookSecret,
    rotated: Vec<WebhookSecret>,
) -> (ListenerHandle, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = Listener::new(ListenerConfig {
        secrets: [vec![secret.clone()], rotated].concat(),
        ..isolated_config()
    });
    let c = calls.clone();
    listener.on("signed", move |_: Value| {
        c.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    (listener.start().await.unwrap(), calls)
}

const BODY: &str = "event_name=signed&data=%7B%22a%22%3A+1%7D";

async fn send(handle: &ListenerHandle, headers: &[(&str, String)], body: &str) -> Reply {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/", handle.local_addr()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.unwrap();
    Reply {
        status: response.status().as_u16(),
        body: response.text().await.unwrap(),
    }
}

fn signed_headers(
    secret: &WebhookSecret,
    id: &str,
    ts: i64,
    body: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", secret.sign(id, ts, body.as_bytes())),
    ]
}

#[tokio::test]
async fn bad_or_missing_signatures_get_401_and_are_not_dispatched() {
    let secret = WebhookSecret::generate();
    let (handle, calls) = signed_listener(&secret, vec![]).await;

    let missing = send(&handle, &[], BODY).await;
    assert_eq!(
        (missing.status, missing.json()["error"].clone()),
        (401, json!("bad_signature"))
    );
    assert!(missing.body.contains("webhook-id"), "{}", missing.body);

    let wrong_secret = send(
        &handle,
        &signed_headers(&WebhookSecret::generate(), "msg_1", now(), BODY),
        BODY,
    )
    .await;
    assert_eq!(wrong_secret.status, 401);

    // Signed over other bytes than the ones sent.
    let tampered = send(
        &handle,
        &signed_headers(&secret, "msg_2", now(), BODY),
        &BODY.replace("%3A+1", "%3A+2"),
    )
    .await;
    assert_eq!(tampered.status, 401);

    let stale_ts = now() - 3600;
    let stale = send(
        &handle,
        &signed_headers(&secret, "msg_3", stale_ts, BODY),
        BODY,
    )
    .await;
    assert_eq!(stale.status, 401);
    assert!(stale.body.contains("tolerance"), "{}", stale.body);

    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let good = send(
        &handle,
        &signed_headers(&secret, "msg_4", now(), BODY),
        BODY,
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rotated_secrets_and_several_signatures_are_accepted() {
    let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
    let (handle, calls) = signed_listener(&new, vec![old.clone()]).await;
    let ts = now();
    // Signed with the old key only.
    assert_eq!(
        send(&handle, &signed_headers(&old, "rot_1", ts, BODY), BODY)
            .await
            .status,
        200
    );
    // A header carrying a bogus signature and a valid one.
    let both = format!("v1,AAAA {}", new.sign("rot_2", ts, BODY.as_bytes()));
    let headers = vec![
        ("webhook-id", "rot_2".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", both),
    ];
    assert_eq!(send(&handle, &headers, BODY).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_duplicate_webhook_id_is_answered_200_and_dispatched_once() {
    let secret = WebhookSecret::generate();
    let (handle, calls) = signed_listener(&secret, vec![]).await;
    let first = send(
        &handle,
        &signed_headers(&secret, "msg_dup", now(), BODY),
        BODY,
    )
    .await;
    assert_eq!(
        (first.status, first.json()["status"].clone()),
        (200, json!("handled"))
    );
    // A retry: same id, fresh timestamp and signature.
    let again = send(
        &handle,
        &signed_headers(&secret, "msg_dup", now() + 1, BODY),
        BODY,
    )
    .await;
    assert_eq!(
        (again.status, again.json()["status"].clone()),
        (200, json!("duplicate"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Another id is dispatched.
    assert_eq!(
        send(
            &handle,
            &signed_headers(&secret, "msg_other", now(), BODY),
            BODY
        )
        .await
        .status,
        200
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn verify_reports_why() {
    let secret: WebhookSecret = VECTOR_SECRET.parse().unwrap();
    let verifier = Verifier::new([secret]).unwrap();
    assert_eq!(
        verifier.verify_at(&vector_headers("v1,AAAA"), VECTOR_BODY, VECTOR_TS),
        Err(SignatureError::Mismatch)
    );
    // Checked against the system clock, the 2021 example is far outside
    // the tolerance.
    assert!(matches!(
        verifier.verify(&vector_headers(VECTOR_SIGNATURE), VECTOR_BODY),
        Err(SignatureError::OutsideTolerance {
            tolerance_secs: 300,
            ..
        })
    ));
    let mut unsigned = vector_headers(VECTOR_SIGNATURE);
    unsigned.remove("webhook-signature");
    let err = verifier
        .verify_at(&unsigned, VECTOR_BODY, VECTOR_TS)
        .unwrap_err();
    assert_eq!(err, SignatureError::MissingHeader("webhook-signature"));
    assert!(err.to_string().contains("webhook-signature"), "{err}");
}

#[test]
fn a_verifier_without_secrets_is_a_typed_error() {
    let err = Verifier::new(Vec::new()).unwrap_err();
    assert!(matches!(err, SecretError::NoSecrets));
    assert!(err.to_string().contains("at least one"), "{err}");
}

#[tokio::test]
async fn a_signed_standard_webhooks_json_envelope_is_accepted() {
    let secret = WebhookSecret::generate();
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let listener = Listener::new(ListenerConfig {
        secrets: vec![secret.clone()],
        ..isolated_config()
    });
    let g = got.clone();
    listener.on(
        "invoice.paid",
        move |ctx: conflictkit::events::EventContext, data: Value| {
            g.lock()
                .unwrap()
                .push((ctx.webhook_id().unwrap_or_default().to_owned(), data));
        },
    );
    let handle = listener.start().await.unwrap();
    // What a svix-style sender posts: the envelope, signed over its bytes.
    let body = r#"{"type":"invoice.paid","timestamp":"2022-11-03T20:26:10.344522Z","data":{"invoice":"in_1"}}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let reply = reqwest::Client::new()
        .post(format!("http://{}/", handle.local_addr()))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_envelope")
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            secret.sign("msg_envelope", ts, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(
        *got.lock().unwrap(),
        vec![("msg_envelope".to_owned(), json!({"invoice": "in_1"}))]
    );
    handle.shutdown().await;
}

/// A receiver that holds only the sender's `whpk_` public key accepts the
/// `v1a` signatures of an [`EventPoster`] holding the `whsk_` secret key, over
/// real HTTP; a request signed by another ed25519 key, or carrying the
/// HMAC-style `v1` signature of a symmetric secret, is refused with 401.
#[tokio::test]
async fn a_receiver_with_only_the_public_key_accepts_ed25519_signatures() {
    let sender_key = WebhookSecret::generate_ed25519();
    let public: WebhookPublicKey = sender_key
        .public_key()
        .expect("an ed25519 secret has a public key")
        .to_whpk()
        .parse()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = Listener::new(ListenerConfig {
        public_keys: vec![public],
        ..isolated_config()
    });
    let c = calls.clone();
    listener.on("signed", move |_: Value| {
        c.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    let handle = listener.start().await.unwrap();

    let poster = EventPoster::new(&format!("http://{}", handle.local_addr()))
        .unwrap()
        .secret(sender_key.clone())
        .retries(0);
    poster.post("signed", &json!({"a": 1})).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    for other in [WebhookSecret::generate_ed25519(), WebhookSecret::generate()] {
        let refused = send(
            &handle,
            &signed_headers(&other, "msg_other", now(), BODY),
            BODY,
        )
        .await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    let good = send(
        &handle,
        &signed_headers(&sender_key, "msg_good", now(), BODY),
        BODY,
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

#[test]
fn a_public_key_in_the_configured_secrets_goes_to_public_keys() {
    let config = json!({"events": {"http": {
        "class": "cryptoassets.core.event.http.HTTPEventHandler",
        "url": "http://127.0.0.1:10001",
        "secrets": [VECTOR_SECRET, "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
    }}});
    let config = ListenerConfig::from_config(&config).unwrap();
    assert_eq!(config.secrets.len(), 1);
    assert_eq!(
        config
            .public_keys
            .iter()
            .map(WebhookPublicKey::to_whpk)
            .collect::<Vec<_>>(),
        ["whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="]
    );
    assert!(matches!(
        "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".parse::<WebhookSecret>(),
        Err(SecretError::PublicKeyWhereSecretExpected)
    ));
}

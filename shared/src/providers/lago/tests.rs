use rsa::signature::{SignatureEncoding, Signer};

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use http::HeaderMap;
use rsa::pkcs1v15;
use serde_json::Value;
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;
use crate::event::{DomainEvent, EventKind, Period, Provider};
use crate::providers::{Inbound, Rejection, Verifier};
use crate::secret::{Secret, SecretSet};

/// Two key pairs made once per test run (Lago publishes no test key, and
/// no private key is kept in the repository): one signs, the other is
/// the wrong key.
struct TestKeys {
    private: rsa::PrivateKey,
    public_pem: String,
    other_public_pem: String,
}

fn test_keys() -> &'static TestKeys {
    use rsa::Generate as _;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    static KEYS: std::sync::OnceLock<TestKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = |key: &rsa::PrivateKey| key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let private = rsa::PrivateKey::try_generate().unwrap();
        let other = rsa::PrivateKey::try_generate().unwrap();
        TestKeys { public_pem: pem(&private), other_public_pem: pem(&other), private }
    })
}
const ISSUER: &str = "http://lago.test";

/// Vectors computed independently with
/// `python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(KEY, BODY, hashlib.sha256).digest()).decode())'`.
const KAT_BODY: &[u8] =
    br#"{"webhook_type":"customer.created","object_type":"customer","customer":{"external_id":"cus_1"}}"#;
/// KEY = `lago-test-hmac-key`.
const KAT_SIGNATURE: &str = "5VtVuK/wNSkUqb5Iwhgb27m4IGVmUuf7AlUFZ0MUSMI=";
/// KEY = `lago-rotated-key`.
const KAT_ROTATED_SIGNATURE: &str = "TKf4h6Lo2Yg9YIYcwiz8bqfEx3PowheHZ3d14ikT0Z8=";
/// KEY = `lago-test-hmac-key`, BODY = empty.
const KAT_EMPTY_SIGNATURE: &str = "LEZGdi9hfGzP7Z3Poy7vt3ggu6LWZmEjOnTwiB0XnaM=";
const UNIQUE_KEY: &str = "6f4b2a0e-8a51-4f1e-9a0c-5d2b7c3e1f90";

fn keys(list: &str) -> SecretSet {
    SecretSet::from_comma_separated(list).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_775_000_000).unwrap()
}

fn headers(signature: &str, algorithm: &str, unique_key: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
    headers.insert(ALGORITHM_HEADER, algorithm.parse().unwrap());
    if let Some(unique_key) = unique_key {
        headers.insert(UNIQUE_KEY_HEADER, unique_key.parse().unwrap());
    }
    headers
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWT of `header` and `claims`, signed RS256 with the test key.
fn rs256_token(header: &Value, claims: &Value) -> String {
    let key = pkcs1v15::SigningKey::<Sha256>::new(test_keys().private.clone());
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = key.sign(signing_input.as_bytes()).to_vec();
    format!("{signing_input}.{}", b64(&signature))
}

fn lago_token(body: &[u8]) -> String {
    rs256_token(
        &serde_json::json!({"alg": "RS256"}),
        &serde_json::json!({"data": std::str::from_utf8(body).unwrap(), "iss": ISSUER}),
    )
}

fn verifying_key(pem: &str) -> pkcs1v15::VerifyingKey<Sha256> {
    pkcs1v15::VerifyingKey::new(parse_public_key(pem).unwrap())
}

fn jwt_verifier(public_key: &str) -> LagoVerifier {
    let jwt = JwtVerification::new(Arc::new(StaticPublicKeySource::new(public_key)), Some(ISSUER.to_owned()));
    LagoVerifier::new(None, Some(jwt)).unwrap()
}

#[test]
fn hmac_signatures_match_independently_computed_vectors() {
    assert_eq!(hmac_signature(KAT_BODY, &Secret::new("lago-test-hmac-key")), KAT_SIGNATURE);
    assert_eq!(hmac_signature(KAT_BODY, &Secret::new("lago-rotated-key")), KAT_ROTATED_SIGNATURE);
    assert_eq!(hmac_signature(b"", &Secret::new("lago-test-hmac-key")), KAT_EMPTY_SIGNATURE);
    assert_eq!(verify_hmac(KAT_SIGNATURE, KAT_BODY, &keys("lago-test-hmac-key")), Ok(()));
}

#[test]
fn during_a_rotation_either_key_verifies() {
    let both = keys("lago-test-hmac-key, lago-rotated-key");
    assert_eq!(verify_hmac(KAT_SIGNATURE, KAT_BODY, &both), Ok(()));
    assert_eq!(verify_hmac(KAT_ROTATED_SIGNATURE, KAT_BODY, &both), Ok(()));
    assert_eq!(
        verify_hmac(KAT_ROTATED_SIGNATURE, KAT_BODY, &keys("lago-test-hmac-key")),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn one_changed_body_byte_fails_hmac_with_401() {
    let mut body = KAT_BODY.to_vec();
    body[30] ^= 1;
    let rejection = verify_hmac(KAT_SIGNATURE, &body, &keys("lago-test-hmac-key")).unwrap_err();
    assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
}

#[test]
fn an_hmac_signature_that_is_not_base64_is_malformed() {
    let rejection = verify_hmac("not base64!", KAT_BODY, &keys("k")).unwrap_err();
    assert_eq!((rejection.status(), rejection.code()), (400, "malformed_signature"));
}

#[tokio::test]
async fn an_hmac_delivery_verifies_and_is_keyed_by_its_unique_key() {
    let verifier = LagoVerifier::hmac(keys("lago-test-hmac-key"));
    let headers = headers(KAT_SIGNATURE, "hmac", Some(UNIQUE_KEY));
    let verified = verifier.verify(&Inbound::new(&headers, KAT_BODY), now()).await.unwrap();
    assert_eq!(verified.event_id.as_str(), UNIQUE_KEY);
    assert_eq!(verified.event.event_type, "customer.created");
    assert_eq!(verified.event.kind, EventKind::Other);
    assert_eq!(verified.event.account.as_deref(), Some("cus_1"));
}

#[tokio::test]
async fn missing_or_unknown_headers_are_400s_with_codes() {
    let verifier = LagoVerifier::hmac(keys("lago-test-hmac-key"));
    let check = |headers: HeaderMap, code: &'static str| {
        let verifier = &verifier;
        async move {
            let rejection = verifier.verify(&Inbound::new(&headers, KAT_BODY), now()).await.unwrap_err();
            assert_eq!((rejection.status(), rejection.code()), (400, code), "{rejection}");
        }
    };
    check(HeaderMap::new(), "missing_signature").await;
    let mut only_signature = HeaderMap::new();
    only_signature.insert(SIGNATURE_HEADER, KAT_SIGNATURE.parse().unwrap());
    check(only_signature, "missing_signature").await;
    check(headers(KAT_SIGNATURE, "hmac-sha512", Some(UNIQUE_KEY)), "malformed_signature").await;
    check(headers(KAT_SIGNATURE, "jwt", Some(UNIQUE_KEY)), "malformed_signature").await;
    check(headers(KAT_SIGNATURE, "hmac", None), "missing_signature").await;
    check(headers(KAT_SIGNATURE, "hmac", Some("not a key")), "invalid_event_id").await;
}

#[tokio::test]
async fn a_valid_rs256_token_binding_the_body_verifies() {
    let token = lago_token(KAT_BODY);
    assert_eq!(verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().public_pem.as_str()), Some(ISSUER)), Ok(()));
    let headers = headers(&token, "jwt", Some(UNIQUE_KEY));
    let verified =
        jwt_verifier(test_keys().public_pem.as_str()).verify(&Inbound::new(&headers, KAT_BODY), now()).await.unwrap();
    assert_eq!(verified.event_id.as_str(), UNIQUE_KEY);
}

#[tokio::test]
async fn the_public_key_is_read_as_lagos_endpoint_returns_it() {
    // Ruby's Base64.encode64: base64 of the PEM with a newline every 60 characters.
    let encoded = STANDARD.encode(test_keys().public_pem.as_str());
    let wrapped: String =
        encoded.as_bytes().chunks(60).map(|line| format!("{}\n", std::str::from_utf8(line).unwrap())).collect();
    let token = lago_token(KAT_BODY);
    let headers = headers(&token, "jwt", Some(UNIQUE_KEY));
    assert!(jwt_verifier(&wrapped).verify(&Inbound::new(&headers, KAT_BODY), now()).await.is_ok());
    assert!(matches!(parse_public_key("a2V5"), Err(PublicKeyError::Unusable)));
}

#[test]
fn a_token_with_alg_none_is_refused_before_any_key_is_used() {
    let claims = serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": ISSUER});
    let token = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.to_string().as_bytes()));
    let key = verifying_key(test_keys().public_pem.as_str());
    assert_eq!(verify_jwt(&token, KAT_BODY, &key, Some(ISSUER)), Err(JwtError::Algorithm));
    let rejection = JwtError::Algorithm.rejection();
    assert_eq!((rejection.status(), rejection.code()), (400, "unsupported_algorithm"));
}

#[test]
fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    let claims = serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": ISSUER});
    let signing_input = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    let mut mac = HmacSha256::new_from_slice(test_keys().public_pem.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()));
    assert_eq!(
        verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().public_pem.as_str()), Some(ISSUER)),
        Err(JwtError::Algorithm)
    );
}

#[test]
fn other_rsa_digests_are_refused_too() {
    let token = rs256_token(
        &serde_json::json!({"alg": "RS512"}),
        &serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": ISSUER}),
    );
    assert_eq!(
        verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().public_pem.as_str()), Some(ISSUER)),
        Err(JwtError::Algorithm)
    );
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_a_401() {
    let token = lago_token(KAT_BODY);
    assert_eq!(
        verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().other_public_pem.as_str()), Some(ISSUER)),
        Err(JwtError::Signature)
    );
    let headers = headers(&token, "jwt", Some(UNIQUE_KEY));
    let rejection = jwt_verifier(test_keys().other_public_pem.as_str())
        .verify(&Inbound::new(&headers, KAT_BODY), now())
        .await
        .unwrap_err();
    assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
}

#[test]
fn a_valid_token_for_another_body_does_not_vouch_for_this_one() {
    let token = lago_token(br#"{"webhook_type":"customer.created","object_type":"customer","customer":{}}"#);
    let key = verifying_key(test_keys().public_pem.as_str());
    assert_eq!(verify_jwt(&token, KAT_BODY, &key, Some(ISSUER)), Err(JwtError::Body));
    // Nor for the same JSON re-serialized.
    let spaced = String::from_utf8(KAT_BODY.to_vec()).unwrap().replace(',', ", ");
    assert_eq!(verify_jwt(&lago_token(KAT_BODY), spaced.as_bytes(), &key, Some(ISSUER)), Err(JwtError::Body));
}

#[test]
fn a_token_from_another_issuer_is_refused_when_one_is_configured() {
    let token = rs256_token(
        &serde_json::json!({"alg": "RS256"}),
        &serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": "https://evil.test"}),
    );
    let key = verifying_key(test_keys().public_pem.as_str());
    assert_eq!(verify_jwt(&token, KAT_BODY, &key, Some(ISSUER)), Err(JwtError::Issuer));
    assert_eq!(verify_jwt(&token, KAT_BODY, &key, None), Ok(()));
}

#[test]
fn a_tampered_token_payload_breaks_the_signature() {
    let token = lago_token(KAT_BODY);
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = serde_json::json!({"data": "{}", "iss": ISSUER});
    let forged = format!("{}.{}.{}", parts[0], b64(forged_claims.to_string().as_bytes()), parts[2]);
    let key = verifying_key(test_keys().public_pem.as_str());
    assert_eq!(verify_jwt(&forged, b"{}", &key, Some(ISSUER)), Err(JwtError::Signature));
    for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert!(matches!(verify_jwt(garbage, KAT_BODY, &key, None), Err(JwtError::Malformed(_))), "{garbage:?}");
    }
}

#[tokio::test]
async fn a_public_key_that_cannot_be_read_answers_503_so_lago_retries() {
    let headers = headers(&lago_token(KAT_BODY), "jwt", Some(UNIQUE_KEY));
    let rejection = jwt_verifier("not a key").verify(&Inbound::new(&headers, KAT_BODY), now()).await.unwrap_err();
    assert_eq!(rejection.status(), 503);
}

#[tokio::test]
async fn a_signed_sample_verifies_with_its_ids_unique_key_as_the_event_id() {
    let ids = sample_ids();
    let body = SAMPLES.event("invoice.payment_status_updated", &ids).unwrap();
    let signed = crate::providers::sign_sample(Provider::Lago, body.as_bytes(), &ids, "k-new, k-old", now()).unwrap();
    let verifier = crate::providers::verifier(
        Provider::Lago,
        keys("k-old, k-new"),
        &crate::providers::VerifierSettings::default(),
    );
    let verified = verifier.verify(&Inbound::new(&signed.headers, body.as_bytes()), now()).await.unwrap();
    assert_eq!(verified.event_id.as_str(), ids.event_id);
    assert_eq!(verified.event.kind, EventKind::Renewal);
}

#[test]
fn every_sample_parses_into_the_kind_it_illustrates() {
    let ids = sample_ids();
    assert!(uuid::Uuid::parse_str(&ids.event_id).is_ok());
    let expected = [
        ("subscription.started", EventKind::Purchase),
        ("invoice.created", EventKind::Other),
        ("invoice.payment_status_updated", EventKind::Renewal),
        ("invoice.payment_failure", EventKind::PaymentFailed),
        ("credit_note.created", EventKind::Refund),
        ("subscription.terminated", EventKind::Cancellation),
        ("subscription.started.upgrade", EventKind::SubscriptionUpdated),
        ("invoice.payment_status_updated.upgrade", EventKind::Renewal),
        ("credit_note.created.upgrade", EventKind::Refund),
    ];
    assert_eq!(SAMPLES.types().count(), expected.len());
    for (sample, kind) in expected {
        let event_type = sample.strip_suffix(".upgrade").unwrap_or(sample);
        let body = SAMPLES.event(sample, &ids).unwrap();
        assert!(!body.contains("{{"), "{sample} keeps a placeholder");
        let verified = parse_event(&ids.event_id, body.as_bytes(), now()).unwrap();
        assert_eq!(verified.event_id.as_str(), ids.event_id);
        let event = verified.event;
        assert_eq!(event.event_type, event_type);
        assert_eq!(event.kind, kind, "{event_type}");
        assert_eq!(event.account.as_deref(), Some(ids.customer_id.as_str()), "{event_type}");
        if event_type != "invoice.payment_failure" {
            assert_eq!(event.subscription.as_deref(), Some(ids.subscription_id.as_str()), "{event_type}");
            assert_ne!(event.occurred_at, now(), "{event_type} has its own time");
        }
    }
}

fn sample(event_type: &str) -> DomainEvent {
    sample_of(event_type, &sample_ids())
}

fn sample_of(event_type: &str, ids: &crate::providers::SampleIds) -> DomainEvent {
    let body = SAMPLES.event(event_type, ids).unwrap();
    parse_event(&ids.event_id, body.as_bytes(), now()).unwrap().event
}

fn datetime(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap()
}

#[test]
fn a_paid_renewal_carries_its_period_amount_and_plan() {
    let event = sample("invoice.payment_status_updated");
    assert_eq!(event.amount_minor, Some(5880));
    assert_eq!(event.currency.as_deref(), Some("EUR"));
    assert_eq!(event.plan.as_deref(), Some("pro_monthly"));
    assert_eq!(
        event.period,
        Some(Period { start: datetime("2026-03-15T00:00:00Z"), end: datetime("2026-04-14T23:59:59Z") })
    );
    assert_eq!(event.occurred_at, datetime("2026-03-15T00:05:40Z"));
}

#[test]
fn both_events_of_one_paid_invoice_name_the_same_period() {
    let ids = sample_ids();
    let created = SAMPLES
        .event("invoice.created", &ids)
        .unwrap()
        .replace(r#""payment_status": "pending""#, r#""payment_status": "succeeded""#);
    let created = parse_event(&ids.event_id, created.as_bytes(), now()).unwrap().event;
    let updated = sample("invoice.payment_status_updated");
    assert_eq!(created.kind, EventKind::Renewal);
    assert_eq!((created.period, created.amount_minor), (updated.period, updated.amount_minor));
}

#[test]
fn a_refund_is_keyed_by_its_credit_note() {
    let event = sample("credit_note.created");
    assert!(event.refund_id.as_deref().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
    assert!(event.payment.as_deref().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
    assert_eq!(event.amount_minor, Some(2940));
    assert_eq!(event.currency.as_deref(), Some("EUR"));
}

#[test]
fn a_note_that_gives_nothing_back_refunds_nothing() {
    let ids = sample_ids();
    let body = SAMPLES
        .event("credit_note.created", &ids)
        .unwrap()
        .replace(r#""refund_amount_cents": 2940"#, r#""refund_amount_cents": 0"#);
    let event = parse_event(&ids.event_id, body.as_bytes(), now()).unwrap().event;
    assert_eq!((event.kind, event.refund_id), (EventKind::Other, None));
}

#[test]
fn a_note_crediting_the_balance_gives_back_as_a_refund_does() {
    let ids = sample_ids();
    let event = sample_of("credit_note.created.upgrade", &ids);
    assert_eq!(event.kind, EventKind::Refund);
    // Pro's unused 16 days of 31, with tax: credited, not refunded.
    assert_eq!(event.amount_minor, Some(3035));
    assert_eq!(event.payment.as_deref(), Some(ids.payment_id.as_str()), "the Pro invoice it credits");
    assert_eq!(event.refund_id, Some(format!("{}_upgrade", ids.refund_id)));
}

#[test]
fn an_upgrades_invoice_pays_the_new_plan_for_the_share_of_the_period_left() {
    let upgrade = sample("subscription.started.upgrade");
    assert_eq!((upgrade.kind, upgrade.plan.as_deref()), (EventKind::SubscriptionUpdated, Some("team_monthly")));
    let invoice = sample("invoice.payment_status_updated.upgrade");
    assert_eq!(invoice.plan.as_deref(), Some("team_monthly"));
    assert_eq!(invoice.period, upgrade.period, "the new subscription's first period: the days left");
    // 5110 of Team's 9900: 16 days of 31.
    assert_eq!(invoice.period_share, Some(516_161_616));
    assert_eq!(sample("invoice.payment_status_updated").period_share, None, "a whole period is paid in full");
    let ids = sample_ids();
    let unstated = SAMPLES
        .event("invoice.payment_status_updated.upgrade", &ids)
        .unwrap()
        .replace(r#""plan_amount_cents": 9900"#, r#""plan_amount_cents": 0"#);
    let unstated = parse_event(&ids.event_id, unstated.as_bytes(), now()).unwrap().event;
    assert_eq!(unstated.period_share, None, "no plan price: a whole period, as Lago before amount_details");
}

#[test]
fn a_purchase_and_a_cancellation_carry_plan_period_and_time() {
    let started = sample("subscription.started");
    assert_eq!(started.plan.as_deref(), Some("pro_monthly"));
    assert_eq!(started.occurred_at, datetime("2026-01-15T09:30:00.120Z"));
    assert!(started.period.is_some());
    let terminated = sample("subscription.terminated");
    assert_eq!(terminated.occurred_at, datetime("2026-04-02T17:45:10Z"));
}

#[test]
fn a_plan_change_is_an_update_not_a_cancellation_and_a_purchase() {
    let ids = sample_ids();
    let terminated = SAMPLES
        .event("subscription.terminated", &ids)
        .unwrap()
        .replace(r#""next_plan_code": null"#, r#""next_plan_code": "team_monthly""#);
    let terminated = parse_event(&ids.event_id, terminated.as_bytes(), now()).unwrap().event;
    assert_eq!(terminated.kind, EventKind::SubscriptionUpdated);
    assert_eq!(terminated.plan.as_deref(), Some("team_monthly"));
    assert_eq!(terminated.status.as_deref(), Some("active"), "the subscription lives on");
    let started = SAMPLES
        .event("subscription.started", &ids)
        .unwrap()
        .replace(r#""previous_plan_code": null"#, r#""previous_plan_code": "basic_monthly""#);
    let started = parse_event(&ids.event_id, started.as_bytes(), now()).unwrap().event;
    assert_eq!(started.kind, EventKind::SubscriptionUpdated);
}

#[test]
fn a_plan_with_a_trial_starts_a_trial() {
    let ids = sample_ids();
    let body = SAMPLES
        .event("subscription.started", &ids)
        .unwrap()
        .replace(r#""trial_period": 0.0"#, r#""trial_period": 14.0"#);
    let event = parse_event(&ids.event_id, body.as_bytes(), now()).unwrap().event;
    assert_eq!(event.kind, EventKind::TrialStarted);
}

#[test]
fn a_failed_payment_without_a_time_takes_the_time_of_receipt() {
    let event = sample("invoice.payment_failure");
    assert_eq!(event.occurred_at, now());
}

#[test]
fn the_fingerprint_covers_the_type_and_every_body_byte() {
    let fp = |body: &[u8]| parse_event(UNIQUE_KEY, body, now()).unwrap().fingerprint;
    let other = br#"{"webhook_type":"customer.created","object_type":"customer","customer":{"external_id":"cus_2"}}"#;
    assert_eq!(fp(KAT_BODY), fp(KAT_BODY));
    assert_ne!(fp(KAT_BODY), fp(other));
}

#[test]
fn bodies_that_are_not_lago_envelopes_are_refused_without_quoting_them() {
    for body in [
        &b"not json"[..],
        b"[1,2]",
        br#"{"object_type":"customer","customer":{}}"#,
        br#"{"webhook_type":"x","object_type":"customer"}"#,
        br#"{"webhook_type":"x","object_type":"customer","customer":"zzz-payload-zzz"}"#,
    ] {
        let rejection = parse_event(UNIQUE_KEY, body, now()).unwrap_err();
        assert_eq!(rejection.code(), "invalid_payload");
        assert!(!rejection.to_string().contains("zzz-payload-zzz"));
    }
}

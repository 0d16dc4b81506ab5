use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use rsa::PrivateKey;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::event::{EventKind, Provider};
use crate::providers::{Inbound, Rejection, SampleIds, SignError, VerifiedEvent, Verifier};
use crate::secret::{Secret, SecretSet};

use super::*;

/// PayPal-Java-SDK `ValidateCertTest` (exact bytes, no trailing newline).
const KAT_BODY: &[u8] = include_bytes!("../../../../tests/fixtures/paypal-java-BILLING.PLAN.CREATED.json");
const KAT_CERT: &str = include_str!("../../../../tests/fixtures/paypal-java-testClientCert.pem");
const KAT_ID: &str = "071f7d20-1584-11e7-abf0-6b62a8a99ac4";
const KAT_TIME: &str = "2017-03-30T20:04:05Z";
const KAT_SIG: &str = "aBjgm5/xljRYu3G64Q0axISrP2xcy7WbW1u4UTCKnQvyprOZ1a1BBmqn2Jdr6ce8E76I3Ti/AL9y4VYSHyGSEaoE6dVQcCDebLbOXLH0fjTAbTc1/rmfdWmsk0DPltW84Y8W8jOHe3CLWDOwg5zmozyt+AceG2x5eOiw7mLSycaEoj/5RG+dOIWXnmWcLEArbG3VFshy0wuhZrKuGa9C/bD4Ku+Y9gK7Bv5I5IuGRVnTGpcFnVG0KxOyJxccLGyBVCIUMY5IZS7LkmJszQ3HZZFDTNihvgJHECSLwLhzUaysIye5G6CbbLdtAmeeb6wiDciEAvr2dFf+SplOR4Lrng==";
const KAT_WEBHOOK_ID: &str = "96605875FF6516633";
const KAT_CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-kat-java-sdk";
const TOLERANCE: Duration = Duration::from_secs(300);

fn kat_now() -> OffsetDateTime {
    OffsetDateTime::parse(KAT_TIME, &Rfc3339).unwrap() + time::Duration::seconds(10)
}

fn kat_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("PAYPAL-TRANSMISSION-ID", KAT_ID),
        ("PAYPAL-TRANSMISSION-TIME", KAT_TIME),
        ("PAYPAL-TRANSMISSION-SIG", KAT_SIG),
        ("PAYPAL-CERT-URL", KAT_CERT_URL),
        ("PAYPAL-AUTH-ALGO", SHA256_WITH_RSA),
    ] {
        headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    headers
}

fn ids(list: &str) -> SecretSet {
    SecretSet::from_comma_separated(list).unwrap()
}

fn offline(webhook_ids: &str, tolerance: Duration) -> (PaypalVerifier, Arc<MemoryCertificateSource>) {
    let source = Arc::new(MemoryCertificateSource::new());
    source.insert(KAT_CERT_URL, KAT_CERT);
    let check = Arc::new(OfflineCheck::new(source.clone()));
    (PaypalVerifier::new(ids(webhook_ids), tolerance, check), source)
}

async fn verify(
    verifier: &PaypalVerifier,
    headers: &HeaderMap,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<VerifiedEvent, Rejection> {
    verifier.verify(&Inbound::new(headers, body), now).await
}

/// One key for the whole test run: generating RSA keys is slow.
fn test_key() -> PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::Generate as _;
        PrivateKey::try_generate().unwrap()
    })
    .clone()
}

const LOCAL_URL: &str = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-test-local";

/// A signer with a certificate valid over `[not_before, not_after]`,
/// served by a memory source under an allowed URL: a local fake of
/// PayPal's certificate host through the same port.
fn local(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> (LocalSigner, PaypalVerifier, Arc<MemoryCertificateSource>) {
    let signer = LocalSigner::from_key(test_key(), "WH-TEST-HOOK", LOCAL_URL);
    let source = Arc::new(MemoryCertificateSource::new());
    source.insert(LOCAL_URL, signer.certificate_pem(not_before, not_after).unwrap());
    let verifier = PaypalVerifier::new(ids("WH-TEST-HOOK"), TOLERANCE, Arc::new(OfflineCheck::new(source.clone())));
    (signer, verifier, source)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn valid_local() -> (LocalSigner, PaypalVerifier, Arc<MemoryCertificateSource>) {
    local(now() - time::Duration::days(1), now() + time::Duration::days(30))
}

#[tokio::test]
async fn the_java_sdk_vector_verifies_with_its_webhook_id() {
    let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
    let verified = verify(&verifier, &kat_headers(), KAT_BODY, kat_now()).await.unwrap();
    assert_eq!(verified.event_id.as_str(), "WH-2MW4820926242972J-6SG447389E205703U");
    assert_eq!(verified.event.event_type, "BILLING.PLAN.CREATED");
    assert_eq!(verified.event.kind, EventKind::Other);
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn the_java_sdk_vector_fails_with_another_webhook_id() {
    let (verifier, _) = offline("NotToBeFound", TOLERANCE);
    let rejection = verify(&verifier, &kat_headers(), KAT_BODY, kat_now()).await.unwrap_err();
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
}

#[tokio::test]
async fn any_active_webhook_id_verifies() {
    let (verifier, _) = offline("NotToBeFound, 96605875FF6516633", TOLERANCE);
    assert!(verify(&verifier, &kat_headers(), KAT_BODY, kat_now()).await.is_ok());
}

#[tokio::test]
async fn the_java_sdk_certificate_is_refused_as_expired_today() {
    // A window wide enough that only the certificate's dates can refuse it.
    let (verifier, _) = offline(KAT_WEBHOOK_ID, Duration::from_secs(100 * 365 * 24 * 3600));
    let rejection = verify(&verifier, &kat_headers(), KAT_BODY, OffsetDateTime::now_utc()).await.unwrap_err();
    assert_eq!(rejection, Rejection::InvalidCertificate { reason: "the certificate has expired" });
    assert_eq!((rejection.status(), rejection.code()), (401, "invalid_certificate"));
}

#[test]
fn the_crc32_is_printed_unsigned() {
    assert_eq!(crc32fast::hash(KAT_BODY), 3_494_065_244);
    assert!(3_494_065_244_u64 > i32::MAX as u64, "a signed int32 would print it negative");
    assert_eq!(
        signed_string(KAT_ID, KAT_TIME, KAT_WEBHOOK_ID, KAT_BODY),
        "071f7d20-1584-11e7-abf0-6b62a8a99ac4|2017-03-30T20:04:05Z|96605875FF6516633|3494065244"
    );
}

#[tokio::test]
async fn a_changed_body_byte_is_an_invalid_signature() {
    let (verifier, _) = offline(KAT_WEBHOOK_ID, TOLERANCE);
    let mut body = KAT_BODY.to_vec();
    let last = body.len() - 2;
    body[last] ^= 0x01;
    let rejection = verify(&verifier, &kat_headers(), &body, kat_now()).await.unwrap_err();
    assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
}

#[tokio::test]
async fn an_algorithm_other_than_sha256_with_rsa_is_refused_before_any_fetch() {
    let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
    for algo in ["SHA1withRSA", "sha256withrsa", "HS256", ""] {
        let mut headers = kat_headers();
        headers.insert(AUTH_ALGO, algo.parse().unwrap());
        let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (400, "unsupported_algorithm"), "{algo:?}");
    }
    assert_eq!(source.fetches(), 0);
}

#[tokio::test]
async fn every_missing_header_is_named_in_a_400() {
    let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
    for name in [TRANSMISSION_ID, TRANSMISSION_TIME, TRANSMISSION_SIG, CERT_URL, AUTH_ALGO] {
        let mut headers = kat_headers();
        headers.remove(name);
        let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
        assert_eq!(rejection, Rejection::MissingSignature { header: name });
        assert_eq!((rejection.status(), rejection.code()), (400, "missing_signature"));
    }
    assert_eq!(source.fetches(), 0);
}

#[tokio::test]
async fn malformed_headers_are_told_apart_from_bad_signatures() {
    let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
    for (name, value) in [
        (TRANSMISSION_TIME, "yesterday"),
        (TRANSMISSION_TIME, "1490904245"),
        (TRANSMISSION_SIG, "not base64 !"),
        (TRANSMISSION_ID, "a|b"),
    ] {
        let mut headers = kat_headers();
        headers.insert(name, value.parse().unwrap());
        let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
        assert_eq!(rejection.code(), "malformed_signature", "{name}: {value}");
    }
    assert_eq!(source.fetches(), 0);
}

#[tokio::test]
async fn certificate_urls_off_the_allowlist_are_refused_before_any_fetch() {
    let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
    for url in [
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-kat-java-sdk",
        "https://evil.example/v1/notifications/certs/CERT-kat-java-sdk",
        "https://api.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
        "https://user:pass@api.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://203.0.113.7/v1/notifications/certs/CERT-1",
        "https://[2001:db8::1]/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v1/notifications/webhooks",
        "https://api.paypal.com/v1/notifications/certs/",
        "https://api.paypal.com/v1/notifications/certs/../../oauth2/token",
        "https://api.paypal.com/v1/notifications/certs/%2e%2e/%2e%2e/oauth2/token",
        "file:///etc/passwd",
        "not a url",
    ] {
        let mut headers = kat_headers();
        headers.insert(CERT_URL, url.parse().unwrap());
        let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (400, "certificate_url_not_allowed"), "{url}");
    }
    assert_eq!(source.fetches(), 0, "nothing may be fetched for a refused URL");
}

#[test]
fn paypal_certificate_urls_are_allowed() {
    for url in [
        "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-df8cd2d5",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
        "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
        "https://API-M.SANDBOX.PAYPAL.COM:443/v1/notifications/certs/CERT-1",
    ] {
        assert!(allowed_certificate_url(url).is_ok(), "{url}");
    }
}

#[tokio::test]
async fn a_transmission_time_outside_the_tolerance_is_refused_both_ways() {
    let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
    let sent = kat_now() - time::Duration::seconds(10);
    for now in [sent + time::Duration::seconds(301), sent - time::Duration::seconds(301)] {
        let rejection = verify(&verifier, &kat_headers(), KAT_BODY, now).await.unwrap_err();
        assert_eq!(rejection, Rejection::TimestampOutOfTolerance { tolerance_secs: 300 });
    }
    assert_eq!(source.fetches(), 0);
    assert!(verify(&verifier, &kat_headers(), KAT_BODY, sent + time::Duration::seconds(300)).await.is_ok());
}

#[tokio::test]
async fn a_locally_signed_event_verifies_and_a_second_one_uses_the_cached_certificate() {
    let (signer, verifier, source) = valid_local();
    let ids = SampleIds::random("WH");
    for event_type in ["PAYMENT.SALE.COMPLETED", "BILLING.SUBSCRIPTION.CANCELLED"] {
        let body = SAMPLES.event(event_type, &ids).unwrap();
        let headers = signer.headers(body.as_bytes(), now()).unwrap();
        let verified = verify(&verifier, &headers, body.as_bytes(), now()).await.unwrap();
        assert_eq!(verified.event.event_type, event_type);
    }
    assert_eq!(source.fetches(), 1, "the certificate is fetched once per URL");
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    let day = time::Duration::days(1);
    for ((not_before, not_after), reason) in [
        ((now() - 30 * day, now() - day), "the certificate has expired"),
        ((now() + day, now() + 30 * day), "the certificate is not valid yet"),
    ] {
        let (signer, verifier, _) = local(not_before, not_after);
        let body = br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":{}}"#;
        let headers = signer.headers(body, now()).unwrap();
        let rejection = verify(&verifier, &headers, body, now()).await.unwrap_err();
        assert_eq!(rejection, Rejection::InvalidCertificate { reason });
    }
}

#[tokio::test]
async fn an_unknown_certificate_url_is_a_retryable_503() {
    let (signer, _, _) = valid_local();
    let verifier = PaypalVerifier::new(
        ids("WH-TEST-HOOK"),
        TOLERANCE,
        Arc::new(OfflineCheck::new(Arc::new(MemoryCertificateSource::new()))),
    );
    let body = br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":{}}"#;
    let rejection = verify(&verifier, &signer.headers(body, now()).unwrap(), body, now()).await.unwrap_err();
    assert_eq!((rejection.status(), rejection.code()), (503, "verification_unavailable"));
}

#[tokio::test]
async fn trigger_signs_with_the_file_the_local_server_wrote() {
    let dir = std::env::temp_dir();
    let local = LocalPaypal::start("WH-LOCAL-TEST", TOLERANCE, &dir).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&local.signing_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let path = local.signing_file.to_str().unwrap().to_owned();
    let ids = sample_ids();
    let body = SAMPLES.event("PAYMENT.SALE.COMPLETED", &ids).unwrap();
    let signed = super::super::sign_sample(Provider::Paypal, body.as_bytes(), &ids, &path, now()).unwrap();
    let verified = verify(&local.verifier, &signed.headers, body.as_bytes(), now()).await;
    std::fs::remove_file(&local.signing_file).unwrap();
    assert_eq!(verified.unwrap().event_id.as_str(), ids.event_id);
    assert!(matches!(
        super::super::sign_sample(
            Provider::Paypal,
            b"{}",
            &SampleIds::random("WH"),
            "/nonexistent/payhooks-signing.pem",
            now()
        ),
        Err(SignError::Unusable(_))
    ));
}

/// A local stand-in for PayPal's API on 127.0.0.1: a token endpoint and
/// verify-webhook-signature, answering SUCCESS only for the signature
/// `good` with the webhook id `WH-API` and the event as sent.
async fn fake_paypal_api() -> (Url, Arc<AtomicUsize>) {
    use axum::Json;
    use axum::routing::post;
    let tokens = Arc::new(AtomicUsize::new(0));
    let issued = tokens.clone();
    let app = axum::Router::new()
        .route(
            "/v1/oauth2/token",
            post(move |headers: HeaderMap, body: String| {
                let issued = issued.clone();
                async move {
                    let expected = format!("Basic {}", BASE64.encode("client-id:client-secret"));
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())
                        || body != "grant_type=client_credentials"
                    {
                        return (http::StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_client"})));
                    }
                    issued.fetch_add(1, Ordering::SeqCst);
                    (http::StatusCode::OK, Json(serde_json::json!({"access_token": "A21-token", "token_type": "Bearer", "expires_in": 32400})))
                }
            }),
        )
        .route(
            "/v1/notifications/verify-webhook-signature",
            post(|headers: HeaderMap, Json(request): Json<Value>| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer A21-token") {
                    return (http::StatusCode::UNAUTHORIZED, Json(serde_json::json!({})));
                }
                let ok = request["transmission_sig"] == "good"
                    && request["webhook_id"] == "WH-API"
                    && request["auth_algo"] == "SHA256withRSA"
                    && request["transmission_id"] == KAT_ID
                    && request["webhook_event"]["id"] == "WH-2MW4820926242972J-6SG447389E205703U";
                let status = if ok { "SUCCESS" } else { "FAILURE" };
                (http::StatusCode::OK, Json(serde_json::json!({"verification_status": status})))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (Url::parse(&format!("http://{addr}")).unwrap(), tokens)
}

#[tokio::test]
async fn api_mode_accepts_what_paypal_calls_success_and_refuses_failure() {
    let (base, tokens) = fake_paypal_api().await;
    let check = Arc::new(ApiCheck::new(base, "client-id".into(), Secret::new("client-secret")));
    let verifier = PaypalVerifier::new(ids("WH-API"), TOLERANCE, check);
    let mut headers = kat_headers();
    headers.insert(TRANSMISSION_SIG, "good".parse().unwrap());
    let verified = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap();
    assert_eq!(verified.event.event_type, "BILLING.PLAN.CREATED");

    headers.insert(TRANSMISSION_SIG, "bad0".parse().unwrap());
    let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
    assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
    assert_eq!(tokens.load(Ordering::SeqCst), 1, "the token is reused");
}

#[tokio::test]
async fn api_mode_with_wrong_credentials_is_a_retryable_503() {
    let (base, _) = fake_paypal_api().await;
    let check = Arc::new(ApiCheck::new(base, "client-id".into(), Secret::new("wrong")));
    let verifier = PaypalVerifier::new(ids("WH-API"), TOLERANCE, check);
    let mut headers = kat_headers();
    headers.insert(TRANSMISSION_SIG, "good".parse().unwrap());
    let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
    assert_eq!(rejection.status(), 503);
    assert!(!rejection.to_string().contains("wrong"));
}

#[test]
fn verification_modes_parse_from_their_names() {
    assert_eq!("offline".parse(), Ok(VerificationMode::Offline));
    assert_eq!("".parse(), Ok(VerificationMode::Offline));
    assert_eq!("api".parse(), Ok(VerificationMode::Api));
    assert_eq!("API".parse::<VerificationMode>(), Err(UnknownVerificationMode));
}

#[test]
fn decimal_amounts_become_exact_minor_units() {
    for (value, currency, expected) in [
        ("20.00", "USD", Some(2000)),
        ("9.99", "EUR", Some(999)),
        ("0.5", "USD", Some(50)),
        ("1000", "USD", Some(100_000)),
        ("1500", "JPY", Some(1500)),
        ("1500.00", "JPY", Some(1500)),
        ("1500.5", "JPY", None),
        ("0.07", "usd", Some(7)),
        ("19.999", "USD", None),
        ("19.990", "USD", Some(1999)),
        ("-1.00", "USD", None),
        ("1e3", "USD", None),
        ("", "USD", None),
        (".5", "USD", None),
        ("5.", "USD", None),
        ("99999999999999999999", "USD", None),
    ] {
        assert_eq!(minor_units(value, currency), expected, "{value} {currency}");
    }
}

#[test]
fn every_sample_parses_into_the_kind_it_illustrates() {
    let ids = sample_ids();
    assert!(ids.event_id.starts_with("WH-") && ids.subscription_id.starts_with("I-"));
    // (type, kind, subscription, customer, account, amount, currency, refund id)
    let sub = Some(ids.subscription_id.as_str());
    let payer = Some(ids.customer_id.as_str());
    let expected = [
        ("PAYMENT.SALE.COMPLETED", EventKind::Renewal, sub, None, Some("acct-demo-001"), Some(2000), Some("USD"), None),
        (
            "BILLING.SUBSCRIPTION.ACTIVATED",
            EventKind::Purchase,
            sub,
            payer,
            Some("acct-demo-001"),
            Some(2000),
            Some("USD"),
            None,
        ),
        (
            "BILLING.SUBSCRIPTION.UPDATED",
            EventKind::SubscriptionUpdated,
            sub,
            payer,
            Some("acct-demo-001"),
            None,
            None,
            None,
        ),
        (
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
            EventKind::PaymentFailed,
            sub,
            payer,
            Some("acct-demo-001"),
            Some(2000),
            Some("USD"),
            None,
        ),
        (
            "BILLING.SUBSCRIPTION.CANCELLED",
            EventKind::Cancellation,
            sub,
            payer,
            Some("acct-demo-001"),
            None,
            None,
            None,
        ),
        (
            "BILLING.SUBSCRIPTION.SUSPENDED",
            EventKind::SubscriptionUpdated,
            sub,
            payer,
            Some("acct-demo-001"),
            None,
            None,
            None,
        ),
        (
            "BILLING.SUBSCRIPTION.RE-ACTIVATED",
            EventKind::SubscriptionUpdated,
            sub,
            payer,
            Some("acct-demo-001"),
            None,
            None,
            None,
        ),
        (
            "PAYMENT.SALE.REFUNDED",
            EventKind::Refund,
            sub,
            None,
            Some("acct-demo-001"),
            Some(2000),
            Some("USD"),
            Some(ids.refund_id.as_str()),
        ),
        (
            "PAYMENT.CAPTURE.COMPLETED",
            EventKind::Purchase,
            None,
            None,
            Some("acct-demo-002"),
            Some(1500),
            Some("JPY"),
            None,
        ),
        (
            "PAYMENT.CAPTURE.REFUNDED",
            EventKind::Refund,
            None,
            None,
            Some("acct-demo-003"),
            Some(1250),
            Some("EUR"),
            Some(ids.refund_id.as_str()),
        ),
        (
            "BILLING.SUBSCRIPTION.UPDATED.upgrade",
            EventKind::SubscriptionUpdated,
            sub,
            payer,
            Some("acct-demo-001"),
            None,
            None,
            None,
        ),
        (
            "PAYMENT.SALE.COMPLETED.upgrade",
            EventKind::Renewal,
            sub,
            None,
            Some("acct-demo-001"),
            Some(5000),
            Some("USD"),
            None,
        ),
    ];
    assert_eq!(SAMPLES.types().count(), expected.len());
    for (sample, kind, subscription, customer, account, amount, currency, refund) in expected {
        let event_type = sample.strip_suffix(".upgrade").unwrap_or(sample);
        let body = SAMPLES.event(sample, &ids).unwrap();
        assert!(!body.contains("{{"), "{event_type} keeps a placeholder");
        let verified = parse_event(body.as_bytes()).unwrap();
        let event = verified.event;
        assert_eq!(verified.event_id.as_str(), ids.event_id);
        assert_eq!(event.event_type, event_type);
        assert_eq!(event.kind, kind, "{event_type}");
        assert_eq!(event.subscription.as_deref(), subscription, "{event_type}");
        assert_eq!(event.customer.as_deref(), customer, "{event_type}");
        assert_eq!(event.account.as_deref(), account, "{event_type}");
        assert_eq!(event.amount_minor, amount, "{event_type}");
        assert_eq!(event.currency.as_deref(), currency, "{event_type}");
        assert_eq!(event.refund_id.as_deref(), refund, "{event_type}");
    }
}

/// A suspension and an expiry are statuses that end access (a suspended
/// subscription can be reactivated); only a cancellation is one.
#[test]
fn suspensions_expiries_and_reactivations_are_statuses() {
    let ids = sample_ids();
    let body = SAMPLES.event("BILLING.SUBSCRIPTION.CANCELLED", &ids).unwrap();
    let expired = body
        .replace("BILLING.SUBSCRIPTION.CANCELLED", "BILLING.SUBSCRIPTION.EXPIRED")
        .replace("\"status\": \"CANCELLED\"", "\"status\": \"EXPIRED\"");
    for (event_type, status) in [
        ("BILLING.SUBSCRIPTION.EXPIRED", "EXPIRED"),
        ("BILLING.SUBSCRIPTION.SUSPENDED", "SUSPENDED"),
        ("BILLING.SUBSCRIPTION.RE-ACTIVATED", "ACTIVE"),
    ] {
        let body = SAMPLES.event(event_type, &ids).unwrap_or_else(|| expired.clone());
        let event = parse_event(body.as_bytes()).unwrap().event;
        assert_eq!(event.event_type, event_type);
        assert_eq!(event.kind, EventKind::SubscriptionUpdated, "{event_type}");
        assert_eq!(event.status, Some(status.to_ascii_lowercase()), "{event_type}");
    }
    assert_eq!(parse_event(body.as_bytes()).unwrap().event.kind, EventKind::Cancellation);
}

#[test]
fn the_account_falls_back_to_the_payer_id() {
    let ids = sample_ids();
    let body =
        SAMPLES.event("BILLING.SUBSCRIPTION.ACTIVATED", &ids).unwrap().replace("\"custom_id\": \"acct-demo-001\",", "");
    let event = parse_event(body.as_bytes()).unwrap().event;
    assert_eq!(event.account.as_deref(), Some(ids.customer_id.as_str()));
}

#[test]
fn the_fingerprint_covers_the_type_and_the_resource_only() {
    let a = br#"{"id":"WH-1","event_type":"PAYMENT.SALE.COMPLETED","create_time":"2025-01-01T00:00:00Z","summary":"one","resource":{"id":"S1"}}"#;
    let b = br#"{"id":"WH-1","event_type":"PAYMENT.SALE.COMPLETED","create_time":"2025-01-01T00:00:00Z","summary":"two","resource":{"id":"S1"}}"#;
    let c = br#"{"id":"WH-1","event_type":"PAYMENT.SALE.COMPLETED","create_time":"2025-01-01T00:00:00Z","summary":"two","resource":{"id":"S2"}}"#;
    let fp = |body: &[u8]| parse_event(body).unwrap().fingerprint;
    assert_eq!(fp(a), fp(b));
    assert_ne!(fp(b), fp(c));
}

#[test]
fn bodies_without_a_usable_id_time_or_resource_are_refused() {
    for body in [
        &b"not json"[..],
        br#"[1]"#,
        br#"{"event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":{}}"#,
        br#"{"id":"WH-1","create_time":"2025-01-01T00:00:00Z","resource":{}}"#,
        br#"{"id":"WH-1","event_type":"X","create_time":"yesterday","resource":{}}"#,
        br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z"}"#,
        br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":[]}"#,
    ] {
        let rejection = parse_event(body).unwrap_err();
        assert_eq!(rejection.status(), 400, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn debug_output_of_the_local_signer_hides_the_key() {
    let signer = LocalSigner::from_key(test_key(), "WH-TEST-HOOK", LOCAL_URL);
    let printed = format!("{signer:?}");
    assert!(!printed.contains("PRIVATE") && !printed.contains("key:"), "{printed}");
}

/// PayPal bills a revised plan from the next cycle on and prorates
/// nothing: the revision states the new plan, and the next sale, naming
/// none, is granted by it.
#[test]
fn a_plan_revision_states_the_plan_the_next_sale_pays_for() {
    let ids = sample_ids();
    let event = |sample: &str| parse_event(SAMPLES.event(sample, &ids).unwrap().as_bytes()).unwrap().event;
    let revised = event("BILLING.SUBSCRIPTION.UPDATED.upgrade");
    assert_eq!(revised.plan.as_deref(), Some("P-2TM4271244454362WXNWU5NQ"));
    assert_eq!(revised.status.as_deref(), Some("active"));
    assert!(revised.prorations.is_empty());
    let sale = event("PAYMENT.SALE.COMPLETED");
    let next = event("PAYMENT.SALE.COMPLETED.upgrade");
    assert!(sale.occurred_at < revised.occurred_at && revised.occurred_at < next.occurred_at);
    assert!(revised.occurred_at < event("BILLING.SUBSCRIPTION.CANCELLED").occurred_at);
    assert_eq!(next.plan, None, "the sale names no plan: the subscription's does");
    assert_eq!(next.payment, Some(format!("{}_upgrade", ids.payment_id)));
}

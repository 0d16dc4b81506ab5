//! Arbitrary bytes and headers, fed to every provider's verifier and parser:
//! never a panic, and never an accepted event without the provider's secret.

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use payhooks::event::Provider;
use payhooks::providers::paypal::LocalPaypal;
use payhooks::providers::{self, Inbound, Verifier, VerifierSettings};
use payhooks::secret::SecretSet;
use payhooks_tests::requests::SECRET;
use proptest::prelude::*;
use time::OffsetDateTime;

/// Each provider's headers, so that generated requests reach the code
/// behind the "missing header" checks.
const HEADERS: &[&str] = &[
    "stripe-signature",
    "paypal-transmission-id",
    "paypal-transmission-time",
    "paypal-transmission-sig",
    "paypal-cert-url",
    "paypal-auth-algo",
    "x-paystack-signature",
    "verif-hash",
    "flutterwave-signature",
    "x-lago-signature",
    "x-lago-signature-algorithm",
    "x-lago-unique-key",
    "paddle-signature",
    "x-razorpay-signature",
    "x-razorpay-event-id",
];

fn verifiers() -> &'static Vec<Arc<dyn Verifier>> {
    static VERIFIERS: OnceLock<Vec<Arc<dyn Verifier>>> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        let settings = VerifierSettings::default();
        Provider::ALL
            .iter()
            .map(|&provider| match provider {
                // Its certificates come from memory: no request leaves the machine.
                Provider::Paypal => Arc::new(
                    LocalPaypal::start("WH-PROPERTY", settings.tolerance, &std::env::temp_dir())
                        .expect("paypal")
                        .verifier,
                ) as Arc<dyn Verifier>,
                _ => providers::verifier(provider, SecretSet::from_comma_separated(SECRET).expect("secret"), &settings),
            })
            .collect()
    })
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,200}",
        "t=[0-9]{1,12},v1=[0-9a-f]{64}",
        "(hmac|jwt|HMAC|none)",
        "https://api(-m)?(\\.sandbox)?\\.paypal\\.com[ -~]{0,60}",
        "SHA256withRSA",
        "ts=[0-9]{1,12};h1=[0-9a-f]{64}",
        "[A-Za-z0-9+/=]{0,400}",
        "[a-zA-Z0-9_-]{1,40}\\.[a-zA-Z0-9_-]{1,80}\\.[a-zA-Z0-9_-]{0,80}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(usize, String)>> {
    prop::collection::vec((0..HEADERS.len(), header_value()), 0..8)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        "\\{\"(id|event|type|eventType|webhook_type)\":\"[ -~]{0,40}\",\"(data|resource|object_type)\":\\{[ -~]{0,200}\\}\\}"
            .prop_map(String::into_bytes),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_verifier_accepts_or_panics_on_arbitrary_requests(
        headers in headers(),
        body in body(),
        token in proptest::option::of("[ -~]{0,64}"),
        ip in proptest::option::of(any::<[u8; 4]>()),
    ) {
        let mut map = HeaderMap::new();
        for (index, value) in &headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.append(HeaderName::from_static(HEADERS[*index]), value);
            }
        }
        let inbound = Inbound {
            headers: &map,
            body: &body,
            source_ip: ip.map(std::net::IpAddr::from),
            path_token: token.as_deref(),
        };
        let now = OffsetDateTime::now_utc();
        let runtime = runtime();
        for verifier in verifiers() {
            let result = runtime.block_on(verifier.verify(&inbound, now));
            prop_assert!(result.is_err(), "{:?} accepted a request it never signed", verifier.provider());
        }
    }

    #[test]
    fn no_parser_panics_on_arbitrary_bytes(body in body()) {
        let now = OffsetDateTime::now_utc();
        let _ = providers::stripe::parse_event(&body);
        let _ = providers::paypal::parse_event(&body);
        let _ = providers::paystack::parse_event(&body, now);
        let _ = providers::flutterwave::parse_event(&body, now);
        let _ = providers::killbill::parse_event(&body, now);
        let _ = providers::lago::parse_event("3f2504e0-4f89-41d3-9a0c-0305e82c3301", &body, now);
    }
}

//! The bad-input suite: requests a careless or hostile sender makes, for
//! every provider, each answered with its status and error code, none
//! writing or enqueuing anything (I1, I2).

use axum::body::Body;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use payhooks::event::Provider;
use payhooks::providers::{self, SignedRequest, paypal};
use time::OffsetDateTime;

use crate::providers::{Local, request, send};

struct Case {
    name: &'static str,
    request: Request<Body>,
    status: StatusCode,
    code: &'static str,
}

fn case(name: &'static str, request: Request<Body>, status: u16, code: &'static str) -> Case {
    Case { name, request, status: StatusCode::from_u16(status).expect("a status"), code }
}

/// A sample of `provider` and its correct signature, to be spoiled.
fn signed(local: &Local, provider: Provider, sample: &str) -> (Vec<u8>, SignedRequest) {
    let ids = providers::sample_ids(provider);
    let body = providers::sample_event(provider, sample, &ids).expect("sample").into_bytes();
    let signed = providers::sign_sample(provider, &body, &ids, local.secret(provider), OffsetDateTime::now_utc())
        .expect("signed");
    (body, signed)
}

fn with_header(mut signed: SignedRequest, name: &'static str, value: &str) -> SignedRequest {
    signed.headers.insert(name, HeaderValue::from_str(value).expect("a header value"));
    signed
}

fn header(signed: &SignedRequest, name: &str) -> String {
    signed.headers[name].to_str().expect("ascii").to_owned()
}

/// `body` signed correctly as Stripe would at `at`.
fn stripe_at(local: &Local, body: &[u8], at: OffsetDateTime) -> SignedRequest {
    providers::sign_sample(
        Provider::Stripe,
        body,
        &providers::sample_ids(Provider::Stripe),
        local.secret(Provider::Stripe),
        at,
    )
    .expect("signed")
}

/// A Stripe header whose `t` is `timestamp` (not a signing time at all).
fn stripe_t(good: &SignedRequest, timestamp: &str) -> SignedRequest {
    let v1 = header(good, "stripe-signature").split("v1=").nth(1).expect("v1").to_owned();
    with_header(good.clone(), "stripe-signature", &format!("t={timestamp},v1={v1}"))
}

fn stripe_signed_body(local: &Local, body: Vec<u8>) -> Request<Body> {
    let signed = providers::sign_sample(
        Provider::Stripe,
        &body,
        &providers::sample_ids(Provider::Stripe),
        local.secret(Provider::Stripe),
        OffsetDateTime::now_utc(),
    )
    .expect("signed");
    request(Provider::Stripe, &signed, body)
}

fn nested(depth: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

fn stripe_cases(local: &Local) -> Vec<Case> {
    let (body, good) = signed(local, Provider::Stripe, "invoice.paid");
    let signature = header(&good, "stripe-signature");
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut repeated = good.clone();
    repeated.headers.append("stripe-signature", HeaderValue::from_static("t=1,v1=00"));
    let truncated = body[..body.len() / 2].to_vec();
    let v1 = signature.split("v1=").nth(1).expect("v1").to_owned();
    let t = signature.split(',').next().expect("t").to_owned();
    vec![
        case(
            "stripe: no signature header",
            request(Provider::Stripe, &SignedRequest::default(), body.clone()),
            400,
            "missing_signature",
        ),
        case(
            "stripe: body truncated after signing",
            request(Provider::Stripe, &good, truncated),
            401,
            "invalid_signature",
        ),
        case(
            "stripe: body with a byte changed",
            request(Provider::Stripe, &good, {
                let mut b = body.clone();
                b[10] ^= 1;
                b
            }),
            401,
            "invalid_signature",
        ),
        case(
            "stripe: oversized body",
            request(Provider::Stripe, &good, vec![b' '; 1024 * 1024 + 1]),
            413,
            "payload_too_large",
        ),
        case("stripe: empty body", request(Provider::Stripe, &good, Vec::new()), 401, "invalid_signature"),
        case(
            "stripe: signed invalid UTF-8",
            stripe_signed_body(local, b"{\"id\": \"evt_\xff\xfe\"}".to_vec()),
            400,
            "invalid_payload",
        ),
        case("stripe: signed JSON nesting bomb", stripe_signed_body(local, nested(100_000)), 400, "invalid_payload"),
        case(
            "stripe: signed duplicate keys",
            stripe_signed_body(
                local,
                br#"{"id":"evt_a","id":"evt_b","type":"invoice.paid","created":1,"data":{"object":{}}}"#.to_vec(),
            ),
            400,
            "invalid_payload",
        ),
        case(
            "stripe: signed huge number",
            stripe_signed_body(
                local,
                br#"{"id":"evt_a","type":"invoice.paid","created":1e400,"data":{"object":{}}}"#.to_vec(),
            ),
            400,
            "invalid_payload",
        ),
        case(
            "stripe: signed, not JSON",
            stripe_signed_body(local, b"id=evt_a&type=invoice.paid".to_vec()),
            400,
            "invalid_payload",
        ),
        case("stripe: header repeated", request(Provider::Stripe, &repeated, body.clone()), 400, "malformed_signature"),
        case(
            "stripe: whitespace around the signature",
            request(
                Provider::Stripe,
                &with_header(good.clone(), "stripe-signature", &format!("{t}, v1= {v1} ")),
                body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        // (Uppercase hex is accepted: the bytes are the same MAC, as stripe-go decodes them.)
        case(
            "stripe: a signature of another timestamp",
            request(
                Provider::Stripe,
                &with_header(good.clone(), "stripe-signature", &format!("t={},v1={v1}", now - 1)),
                body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "stripe: signature one byte short",
            request(
                Provider::Stripe,
                &with_header(good.clone(), "stripe-signature", &format!("{t},v1={}", &v1[..62])),
                body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "stripe: signature not hex",
            request(
                Provider::Stripe,
                &with_header(good.clone(), "stripe-signature", &format!("{t},v1={}", "zz".repeat(32))),
                body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "stripe: no v1 scheme",
            request(
                Provider::Stripe,
                &with_header(good.clone(), "stripe-signature", &format!("{t},v0={v1}")),
                body.clone(),
            ),
            400,
            "malformed_signature",
        ),
        case(
            "stripe: timestamp far in the past",
            request(
                Provider::Stripe,
                &stripe_at(local, &body, OffsetDateTime::now_utc() - time::Duration::days(1)),
                body.clone(),
            ),
            401,
            "timestamp_out_of_tolerance",
        ),
        case(
            "stripe: timestamp far in the future",
            request(
                Provider::Stripe,
                &stripe_at(local, &body, OffsetDateTime::now_utc() + time::Duration::days(1)),
                body.clone(),
            ),
            401,
            "timestamp_out_of_tolerance",
        ),
        case(
            "stripe: timestamp not a number",
            request(Provider::Stripe, &stripe_t(&good, "yesterday"), body.clone()),
            400,
            "malformed_signature",
        ),
        case(
            "stripe: timestamp overflowing",
            request(Provider::Stripe, &stripe_t(&good, "99999999999999999999999"), body.clone()),
            400,
            "malformed_signature",
        ),
        case(
            "stripe: signed with another secret",
            request(
                Provider::Stripe,
                &providers::sign_sample(
                    Provider::Stripe,
                    &body,
                    &providers::sample_ids(Provider::Stripe),
                    "whsec_test_another_one",
                    OffsetDateTime::now_utc(),
                )
                .expect("signed"),
                body.clone(),
            ),
            401,
            "invalid_signature",
        ),
    ]
}

fn hmac_cases(local: &Local) -> Vec<Case> {
    let (body, good) = signed(local, Provider::Paystack, "charge.success");
    let signature = header(&good, "x-paystack-signature");
    let (fw_body, fw_good) = signed(local, Provider::Flutterwave, "charge.completed");
    // A v4 event whose signature has a `+` or `/` (three in four do), so
    // the URL-safe alphabet really writes it differently.
    let (v4_body, v4_good) = std::iter::repeat_with(|| signed(local, Provider::Flutterwave, "v4.charge.completed"))
        .find(|(_, good)| good.headers.values().any(|v| v.as_bytes().iter().any(|b| matches!(b, b'+' | b'/'))))
        .expect("a signature with + or /");
    let v4_header = v4_good.headers.keys().next().expect("a header").as_str().to_owned();
    let v4_signature = header(&v4_good, &v4_header);
    let v4_bytes = base64::engine::general_purpose::STANDARD.decode(&v4_signature).expect("base64");
    let (lago_body, lago_good) = signed(local, Provider::Lago, "invoice.created");
    let lago_signature = header(&lago_good, "x-lago-signature");
    let (stripe_body, stripe_good) = signed(local, Provider::Stripe, "invoice.paid");
    vec![
        case(
            "paystack: no signature header",
            request(Provider::Paystack, &SignedRequest::default(), body.clone()),
            400,
            "missing_signature",
        ),
        case(
            "paystack: body changed",
            request(Provider::Paystack, &good, {
                let mut b = body.clone();
                b[5] ^= 1;
                b
            }),
            401,
            "invalid_signature",
        ),
        case(
            "paystack: the signature of another body",
            request(
                Provider::Paystack,
                &with_header(
                    good.clone(),
                    "x-paystack-signature",
                    &payhooks::providers::paystack::signature(
                        b"{}",
                        &payhooks::secret::Secret::new(local.secret(Provider::Paystack)),
                    ),
                ),
                body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        // (Spaces around a header value are not part of it in HTTP: trimmed.)
        case(
            "paystack: signature with a space inside",
            request(
                Provider::Paystack,
                &with_header(
                    good.clone(),
                    "x-paystack-signature",
                    &format!("{} {}", &signature[..20], &signature[20..]),
                ),
                body.clone(),
            ),
            400,
            "malformed_signature",
        ),
        case(
            "paystack: SHA-256 length",
            request(
                Provider::Paystack,
                &with_header(good.clone(), "x-paystack-signature", &signature[..64]),
                body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "paystack: signed JSON nesting bomb",
            {
                let b = nested(50_000);
                let s = providers::sign_sample(
                    Provider::Paystack,
                    &b,
                    &providers::sample_ids(Provider::Paystack),
                    local.secret(Provider::Paystack),
                    OffsetDateTime::now_utc(),
                )
                .expect("signed");
                request(Provider::Paystack, &s, b)
            },
            400,
            "invalid_payload",
        ),
        case(
            "paystack: a Stripe request posted here",
            request(Provider::Paystack, &stripe_good, stripe_body.clone()),
            400,
            "missing_signature",
        ),
        case(
            "flutterwave: no verif-hash",
            request(Provider::Flutterwave, &SignedRequest::default(), fw_body.clone()),
            400,
            "missing_signature",
        ),
        case(
            "flutterwave: wrong hash",
            request(
                Provider::Flutterwave,
                &with_header(fw_good.clone(), "verif-hash", "not-the-secret-hash"),
                fw_body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "flutterwave: hash in another case",
            request(
                Provider::Flutterwave,
                &with_header(fw_good.clone(), "verif-hash", &header(&fw_good, "verif-hash").to_uppercase()),
                fw_body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "flutterwave: hash with a space inside",
            request(
                Provider::Flutterwave,
                &with_header(fw_good.clone(), "verif-hash", &format!("{} x", header(&fw_good, "verif-hash"))),
                fw_body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "flutterwave v4: base64 without padding",
            request(
                Provider::Flutterwave,
                &with_header(v4_good.clone(), "flutterwave-signature", v4_signature.trim_end_matches('=')),
                v4_body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "flutterwave v4: base64 with extra padding",
            request(
                Provider::Flutterwave,
                &with_header(v4_good.clone(), "flutterwave-signature", &format!("{v4_signature}==")),
                v4_body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "flutterwave v4: url-safe alphabet",
            request(
                Provider::Flutterwave,
                &with_header(
                    v4_good.clone(),
                    "flutterwave-signature",
                    &base64::engine::general_purpose::URL_SAFE.encode(&v4_bytes),
                ),
                v4_body.clone(),
            ),
            401,
            "invalid_signature",
        ),
        case(
            "flutterwave v4: body changed",
            request(Provider::Flutterwave, &v4_good, {
                let mut b = v4_body.clone();
                b[3] ^= 1;
                b
            }),
            401,
            "invalid_signature",
        ),
        case(
            "lago: no signature",
            request(Provider::Lago, &SignedRequest::default(), lago_body.clone()),
            400,
            "missing_signature",
        ),
        case(
            "lago: base64 without padding",
            request(
                Provider::Lago,
                &with_header(lago_good.clone(), "x-lago-signature", lago_signature.trim_end_matches('=')),
                lago_body.clone(),
            ),
            400,
            "malformed_signature",
        ),
        case(
            "lago: base64 with whitespace",
            request(
                Provider::Lago,
                &with_header(
                    lago_good.clone(),
                    "x-lago-signature",
                    &format!("{} {}", &lago_signature[..10], &lago_signature[10..]),
                ),
                lago_body.clone(),
            ),
            400,
            "malformed_signature",
        ),
        case(
            "lago: body changed",
            request(Provider::Lago, &lago_good, {
                let mut b = lago_body.clone();
                b[4] ^= 1;
                b
            }),
            401,
            "invalid_signature",
        ),
        case(
            "lago: unknown algorithm",
            request(
                Provider::Lago,
                &with_header(lago_good.clone(), "x-lago-signature-algorithm", "md5"),
                lago_body.clone(),
            ),
            400,
            "malformed_signature",
        ),
        case(
            "lago: a JWT where only hmac is configured",
            request(
                Provider::Lago,
                &with_header(lago_good.clone(), "x-lago-signature-algorithm", "jwt"),
                lago_body.clone(),
            ),
            400,
            "malformed_signature",
        ),
        case(
            "lago: no unique key",
            {
                let mut s = lago_good.clone();
                s.headers.remove("x-lago-unique-key");
                request(Provider::Lago, &s, lago_body.clone())
            },
            400,
            "missing_signature",
        ),
    ]
}

/// A compact JWT with `header` and `data` = the body, and `signature`.
fn jwt(header: &str, body: &[u8], signature: &str) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let claims = serde_json::json!({"data": String::from_utf8_lossy(body), "iss": "https://lago.example"});
    format!("{}.{}.{signature}", b64(header.as_bytes()), b64(claims.to_string().as_bytes()))
}

fn killbill_cases(local: &Local) -> Vec<Case> {
    let (body, good) = signed(local, Provider::Killbill, "INVOICE_PAYMENT_SUCCESS");
    let token = good.path_token.clone().expect("a token");
    let mut one_off = token.clone().into_bytes();
    let last = one_off.len() - 1;
    one_off[last] = if one_off[last] == b'a' { b'b' } else { b'a' };
    let one_off = String::from_utf8(one_off).expect("utf-8");
    let to = |token: &str, body: Vec<u8>| {
        Request::post(format!("/webhooks/killbill/{token}")).body(Body::from(body)).expect("request")
    };
    vec![
        case(
            "killbill: no token",
            Request::post("/webhooks/killbill").body(Body::from(body.clone())).expect("request"),
            401,
            "missing_token",
        ),
        case("killbill: token differing in its last character", to(&one_off, body.clone()), 401, "invalid_token"),
        case("killbill: token one character short", to(&token[..token.len() - 1], body.clone()), 401, "invalid_token"),
        case("killbill: token with a character more", to(&format!("{token}x"), body.clone()), 401, "invalid_token"),
        case("killbill: token with an encoded space", to(&format!("{token}%20"), body.clone()), 401, "invalid_token"),
        case("killbill: token in another case", to(&token.to_uppercase(), body.clone()), 401, "invalid_token"),
        case("killbill: valid token, body not JSON", to(&token, b"not json".to_vec()), 400, "invalid_payload"),
        case("killbill: valid token, nesting bomb", to(&token, nested(50_000)), 400, "invalid_payload"),
    ]
}

fn paypal_cases(local: &Local) -> Vec<Case> {
    let (body, good) = signed(local, Provider::Paypal, "PAYMENT.SALE.COMPLETED");
    let cert = |url: &str| request(Provider::Paypal, &with_header(good.clone(), paypal::CERT_URL, url), body.clone());
    let mut missing_id = good.clone();
    missing_id.headers.remove(paypal::TRANSMISSION_ID);
    vec![
        case(
            "paypal: no transmission id",
            request(Provider::Paypal, &missing_id, body.clone()),
            400,
            "missing_signature",
        ),
        case(
            "paypal: cert URL over http",
            cert("http://api.paypal.com/v1/notifications/certs/CERT-1"),
            400,
            "certificate_url_not_allowed",
        ),
        case(
            "paypal: cert URL with userinfo",
            cert("https://api.paypal.com@attacker.example/v1/notifications/certs/CERT-1"),
            400,
            "certificate_url_not_allowed",
        ),
        case(
            "paypal: cert URL with a port",
            cert("https://api.paypal.com:8443/v1/notifications/certs/CERT-1"),
            400,
            "certificate_url_not_allowed",
        ),
        case(
            "paypal: cert URL on an IP literal",
            cert("https://203.0.113.7/v1/notifications/certs/CERT-1"),
            400,
            "certificate_url_not_allowed",
        ),
        case(
            "paypal: cert URL on a look-alike host",
            cert("https://api.paypal.com.attacker.example/v1/notifications/certs/CERT-1"),
            400,
            "certificate_url_not_allowed",
        ),
        case(
            "paypal: cert URL escaping its path",
            cert("https://api.paypal.com/v1/notifications/certs/../../oauth2/token"),
            400,
            "certificate_url_not_allowed",
        ),
        case(
            "paypal: cert URL bouncing through a redirect",
            cert("https://api.paypal.com/v1/notifications/certs/CERT-1?next=https://attacker.example/"),
            400,
            "certificate_url_not_allowed",
        ),
        case(
            "paypal: unsupported algorithm",
            request(Provider::Paypal, &with_header(good.clone(), paypal::AUTH_ALGO, "SHA1withRSA"), body.clone()),
            400,
            "unsupported_algorithm",
        ),
        case(
            "paypal: transmission time far in the past",
            request(
                Provider::Paypal,
                &with_header(good.clone(), paypal::TRANSMISSION_TIME, "2001-01-01T00:00:00Z"),
                body.clone(),
            ),
            401,
            "timestamp_out_of_tolerance",
        ),
        case(
            "paypal: transmission time not a time",
            request(Provider::Paypal, &with_header(good.clone(), paypal::TRANSMISSION_TIME, "soon"), body.clone()),
            400,
            "malformed_signature",
        ),
        case(
            "paypal: body changed",
            request(Provider::Paypal, &good, {
                let mut b = body.clone();
                b[7] ^= 1;
                b
            }),
            401,
            "invalid_signature",
        ),
        case(
            "paypal: signature not base64",
            request(
                Provider::Paypal,
                &with_header(good.clone(), paypal::TRANSMISSION_SIG, "%%%not-base64%%%"),
                body.clone(),
            ),
            400,
            "malformed_signature",
        ),
    ]
}

/// `body` signed as Paddle signs it at `at`, with the local secret.
fn paddle_at(local: &Local, body: &[u8], at: OffsetDateTime) -> SignedRequest {
    let ids = providers::sample_ids(Provider::Paddle);
    providers::sign_sample(Provider::Paddle, body, &ids, local.secret(Provider::Paddle), at).expect("signed")
}

fn paddle_cases(local: &Local) -> Vec<Case> {
    let (body, good) = signed(local, Provider::Paddle, "transaction.completed");
    let signature = header(&good, "paddle-signature");
    let (ts, h1) = signature.split_once(';').expect("ts;h1");
    let ts: i64 = ts.trim_start_matches("ts=").parse().expect("a number");
    let now = OffsetDateTime::now_utc();
    let hour = time::Duration::hours(1);
    let spoil = |value: String| with_header(good.clone(), "paddle-signature", &value);
    let mut repeated = good.clone();
    repeated.headers.append("paddle-signature", HeaderValue::from_static("ts=1;h1=00"));
    let without_id = String::from_utf8(body.clone()).expect("utf-8").replacen("\"event_id\"", "\"no_event_id\"", 1);
    let to = |signed: &SignedRequest, body: &[u8]| request(Provider::Paddle, signed, body.to_vec());
    vec![
        case("paddle: no signature header", to(&SignedRequest::default(), &body), 400, "missing_signature"),
        case(
            "paddle: body changed",
            to(&good, &{
                let mut b = body.clone();
                b[12] ^= 1;
                b
            }),
            401,
            "invalid_signature",
        ),
        // The timestamp is signed: moving it breaks the signature.
        case(
            "paddle: timestamp moved, h1 kept",
            to(&spoil(format!("ts={};{h1}", ts + 1)), &body),
            401,
            "invalid_signature",
        ),
        case(
            "paddle: signed an hour ago",
            to(&paddle_at(local, &body, now - hour), &body),
            401,
            "timestamp_out_of_tolerance",
        ),
        case(
            "paddle: signed an hour ahead",
            to(&paddle_at(local, &body, now + hour), &body),
            401,
            "timestamp_out_of_tolerance",
        ),
        case("paddle: no h1", to(&spoil(format!("ts={ts}")), &body), 400, "malformed_signature"),
        case("paddle: no ts", to(&spoil(h1.to_owned()), &body), 400, "malformed_signature"),
        case("paddle: ts twice", to(&spoil(format!("ts={ts};ts={};{h1}", ts + 9)), &body), 400, "malformed_signature"),
        case("paddle: ts not a number", to(&spoil(format!("ts=+{ts};{h1}")), &body), 400, "malformed_signature"),
        case("paddle: h1 not hex", to(&spoil(format!("ts={ts};h1=zz")), &body), 401, "invalid_signature"),
        case("paddle: header twice", to(&repeated, &body), 400, "malformed_signature"),
        case(
            "paddle: signed with another secret",
            to(
                &providers::sign_sample(
                    Provider::Paddle,
                    &body,
                    &providers::sample_ids(Provider::Paddle),
                    "other",
                    now,
                )
                .expect("signed"),
                &body,
            ),
            401,
            "invalid_signature",
        ),
        case(
            "paddle: signed, no event_id",
            to(&paddle_at(local, without_id.as_bytes(), now), without_id.as_bytes()),
            400,
            "invalid_event_id",
        ),
        case("paddle: signed, not JSON", to(&paddle_at(local, b"not json", now), b"not json"), 400, "invalid_payload"),
    ]
}

fn razorpay_cases(local: &Local) -> Vec<Case> {
    let (body, good) = signed(local, Provider::Razorpay, "subscription.charged");
    let signature = header(&good, "x-razorpay-signature");
    let spoil = |name: &'static str, value: &str| with_header(good.clone(), name, value);
    let mut without_id = good.clone();
    without_id.headers.remove("x-razorpay-event-id");
    let to = |signed: &SignedRequest, body: &[u8]| request(Provider::Razorpay, signed, body.to_vec());
    let resigned = |body: &[u8]| {
        let ids = providers::sample_ids(Provider::Razorpay);
        providers::sign_sample(
            Provider::Razorpay,
            body,
            &ids,
            local.secret(Provider::Razorpay),
            OffsetDateTime::now_utc(),
        )
        .expect("signed")
    };
    vec![
        case("razorpay: no signature header", to(&SignedRequest::default(), &body), 400, "missing_signature"),
        case("razorpay: no event id header", to(&without_id, &body), 400, "missing_signature"),
        case(
            "razorpay: event id with a space",
            to(&spoil("x-razorpay-event-id", "a b"), &body),
            400,
            "invalid_event_id",
        ),
        case(
            "razorpay: body changed",
            to(&good, &{
                let mut b = body.clone();
                b[9] ^= 1;
                b
            }),
            401,
            "invalid_signature",
        ),
        case(
            "razorpay: body with a trailing newline",
            to(&good, &[body.as_slice(), b"\n"].concat()),
            401,
            "invalid_signature",
        ),
        case(
            "razorpay: signature not hex",
            to(&spoil("x-razorpay-signature", "not-hex"), &body),
            400,
            "malformed_signature",
        ),
        case(
            "razorpay: signature truncated",
            to(&spoil("x-razorpay-signature", &signature[..32]), &body),
            401,
            "invalid_signature",
        ),
        case(
            "razorpay: signed with another secret",
            to(
                &providers::sign_sample(
                    Provider::Razorpay,
                    &body,
                    &providers::sample_ids(Provider::Razorpay),
                    "other",
                    OffsetDateTime::now_utc(),
                )
                .expect("signed"),
                &body,
            ),
            401,
            "invalid_signature",
        ),
        case("razorpay: signed, not JSON", to(&resigned(b"not json"), b"not json"), 400, "invalid_payload"),
        case("razorpay: signed, nesting bomb", to(&resigned(&nested(50_000)), &nested(50_000)), 400, "invalid_payload"),
    ]
}

#[tokio::test]
async fn every_bad_request_is_refused_with_its_reason_and_writes_nothing() {
    let local = Local::start();
    let mut cases = stripe_cases(&local);
    cases.extend(hmac_cases(&local));
    cases.extend(killbill_cases(&local));
    cases.extend(paypal_cases(&local));
    cases.extend(paddle_cases(&local));
    cases.extend(razorpay_cases(&local));
    assert!(cases.len() >= 70, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in cases {
        let (status, answer) = send(&local.app, case.request).await;
        let code = answer["error"].as_str().unwrap_or_default().to_owned();
        if (status, code.as_str()) != (case.status, case.code) {
            wrong.push(format!("{}: {status} {code} (want {} {})", case.name, case.status, case.code));
        }
        if !local.app.store.all().is_empty() || local.app.queue.depth() != 0 {
            wrong.push(format!("{}: something was written or enqueued", case.name));
            break;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Lago in `jwt` mode: tokens that are not RS256 never reach a key, and an
/// RS256 token that does not verify is refused.
#[tokio::test]
async fn lago_tokens_not_signed_with_its_key_are_refused_and_write_nothing() {
    use std::sync::Arc;

    use payhooks::providers::lago::{JwtVerification, LagoVerifier, StaticPublicKeySource};

    let public_key = include_str!("../fixtures/lago-test-public-key.pem");
    let jwt_mode =
        JwtVerification::new(Arc::new(StaticPublicKeySource::new(public_key)), Some("https://lago.example".into()));
    let verifier = LagoVerifier::new(None, Some(jwt_mode)).expect("a verifier");
    let app = payhooks::local::LocalApp::with_verifiers(
        vec![Arc::new(verifier)],
        None,
        payhooks::ingest::IngestSettings::default(),
        payhooks::process::ProcessorSettings::default(),
    );
    let ids = providers::sample_ids(Provider::Lago);
    let body = providers::sample_event(Provider::Lago, "invoice.created", &ids).expect("sample").into_bytes();
    let signature = |token: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("x-lago-signature-algorithm", HeaderValue::from_static("jwt"));
        headers.insert("x-lago-signature", HeaderValue::from_str(token).expect("ascii"));
        headers.insert("x-lago-unique-key", HeaderValue::from_str(&ids.event_id).expect("ascii"));
        SignedRequest { headers, path_token: None }
    };
    let fake_rsa = "A".repeat(342);
    let cases = [
        ("alg none", jwt(r#"{"alg":"none"}"#, &body, ""), 400, "unsupported_algorithm"),
        (
            "HS256 keyed with the public key",
            jwt(r#"{"alg":"HS256","typ":"JWT"}"#, &body, "c2lnbmVkLXdpdGgtdGhlLXB1YmxpYy1rZXk"),
            400,
            "unsupported_algorithm",
        ),
        ("alg missing", jwt(r#"{"typ":"JWT"}"#, &body, "AAAA"), 400, "unsupported_algorithm"),
        (
            "RS256 with a signature of nobody's key",
            jwt(r#"{"alg":"RS256"}"#, &body, &fake_rsa),
            401,
            "invalid_signature",
        ),
        ("two parts only", "eyJhbGciOiJSUzI1NiJ9.e30".to_owned(), 400, "malformed_signature"),
        (
            "critical header parameters",
            jwt(r#"{"alg":"RS256","crit":["exp"]}"#, &body, &fake_rsa),
            400,
            "malformed_signature",
        ),
    ];
    for (name, token, status, code) in cases {
        let (answer_status, answer) = send(&app, request(Provider::Lago, &signature(&token), body.clone())).await;
        assert_eq!((answer_status.as_u16(), answer["error"].as_str()), (status, Some(code)), "{name}: {answer}");
    }
    assert!(app.store.all().is_empty());
    assert_eq!(app.queue.depth(), 0);
}

//! Signed Stripe requests built from the project's sample events.

use http::{HeaderMap, HeaderValue};
use payhooks::providers::{SampleIds, stripe};
use payhooks::secret::Secret;

/// A test secret: obviously not a real one.
pub const SECRET: &str = "whsec_test_only_not_a_real_secret";

/// A sample Stripe event of `event_type` with fresh ids.
pub fn stripe_event(event_type: &str) -> (SampleIds, Vec<u8>) {
    let ids = SampleIds::random("evt");
    let body = stripe::SAMPLES.event(event_type, &ids).expect("a sample of this type");
    (ids, body.into_bytes())
}

/// Headers signing `body` at `timestamp` with `secret`.
pub fn stripe_headers(body: &[u8], secret: &str, timestamp: i64) -> HeaderMap {
    let secret = Secret::new(secret);
    let mut headers = HeaderMap::new();
    headers.insert(
        stripe::SIGNATURE_HEADER,
        HeaderValue::from_str(&stripe::signature_header(body, &[&secret], timestamp)).expect("ASCII header"),
    );
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

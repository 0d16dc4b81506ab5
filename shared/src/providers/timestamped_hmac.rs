//! The signature header Stripe and Paddle share in all but spelling: a
//! timestamp and one or more hex HMAC-SHA256 signatures over
//! `"{timestamp}{joiner}{raw body}"` (Stripe `t=…,v1=…`, joined with `.`;
//! Paddle `ts=…;h1=…`, joined with `:`), one signature per secret while a
//! secret is rolled.
//!
//! Every signature is compared in constant time against every active
//! secret; keys other than the timestamp and the signature are ignored (a
//! new scheme cannot break delivery) and a repeated timestamp is refused.
//! The signature is checked first, as the providers' SDKs do, then the
//! timestamp window in both directions.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;

use super::Rejection;
use crate::secret::{Secret, SecretSet};

type HmacSha256 = Hmac<Sha256>;

/// One provider's spelling of the scheme, and the reasons its malformed
/// headers are refused with.
#[derive(Debug, Clone, Copy)]
pub struct TimestampedHmac {
    pub header: &'static str,
    /// Between the header's `key=value` items.
    pub separator: char,
    pub timestamp_key: &'static str,
    pub signature_key: &'static str,
    /// Between the timestamp and the body in the signed bytes.
    pub joiner: &'static str,
    pub no_timestamp: &'static str,
    pub no_signature: &'static str,
}

struct Parsed<'a> {
    /// The timestamp exactly as sent: it is part of the signed bytes.
    timestamp_text: &'a str,
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

impl TimestampedHmac {
    fn malformed(&self, reason: &'static str) -> Rejection {
        Rejection::MalformedSignature { header: self.header, reason }
    }

    fn parse<'a>(&self, value: &'a str) -> Result<Parsed<'a>, Rejection> {
        let mut timestamp_text = None;
        let mut signatures = Vec::new();
        let mut signature_seen = false;
        for item in value.split(self.separator) {
            let (key, value) = item.trim().split_once('=').ok_or_else(|| self.malformed("an item has no '='"))?;
            if key == self.timestamp_key {
                if timestamp_text.is_some() {
                    return Err(self.malformed("the timestamp appears more than once"));
                }
                timestamp_text = Some(value);
            } else if key == self.signature_key {
                signature_seen = true;
                // Like stripe-go: an entry that is not hex cannot match, skip it.
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
        }
        let timestamp_text = timestamp_text.ok_or_else(|| self.malformed(self.no_timestamp))?;
        if !signature_seen {
            return Err(self.malformed(self.no_signature));
        }
        let timestamp =
            if timestamp_text.bytes().all(|b| b.is_ascii_digit()) { timestamp_text.parse::<i64>().ok() } else { None }
                .ok_or_else(|| self.malformed("the timestamp is not a number of seconds"))?;
        Ok(Parsed { timestamp_text, timestamp, signatures })
    }

    fn mac(&self, secret: &Secret, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret.expose()).expect("HMAC takes any key length");
        mac.update(timestamp.as_bytes());
        mac.update(self.joiner.as_bytes());
        mac.update(body);
        mac
    }

    /// Checks the header's `value` against the raw body.
    pub fn verify(
        &self,
        value: &str,
        body: &[u8],
        secrets: &SecretSet,
        now: OffsetDateTime,
        tolerance: Duration,
    ) -> Result<(), Rejection> {
        let parsed = self.parse(value)?;
        // Every candidate against every secret, without an early exit, so the
        // time taken does not depend on which (if any) matched.
        let mut matched = Choice::from(0);
        for secret in secrets.iter() {
            let expected = self.mac(secret, parsed.timestamp_text, body).finalize().into_bytes();
            for candidate in &parsed.signatures {
                matched |= expected.as_slice().ct_eq(candidate.as_slice());
            }
        }
        if !bool::from(matched) {
            return Err(Rejection::SignatureMismatch);
        }
        if now.unix_timestamp().abs_diff(parsed.timestamp) > tolerance.as_secs() {
            return Err(Rejection::TimestampOutOfTolerance { tolerance_secs: tolerance.as_secs() });
        }
        Ok(())
    }

    /// The header's value for `body` at `timestamp`, one signature per secret.
    pub fn sign(&self, body: &[u8], secrets: &[&Secret], timestamp: i64) -> String {
        let timestamp = timestamp.to_string();
        let mut value = format!("{}={timestamp}", self.timestamp_key);
        for secret in secrets {
            let signature = hex::encode(self.mac(secret, &timestamp, body).finalize().into_bytes());
            value.push(self.separator);
            value.push_str(self.signature_key);
            value.push('=');
            value.push_str(&signature);
        }
        value
    }
}

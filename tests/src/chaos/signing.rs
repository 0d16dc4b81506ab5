//! The simulated providers' keys: each signs as its provider does (PayPal
//! with a certificate made for the run, served from memory), and the
//! verifiers ingest checks them with.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderMap;
use payhooks::event::{EventKey, Provider};
use payhooks::providers::paypal::{LocalSigner, MemoryCertificateSource, OfflineCheck, PaypalVerifier};
use payhooks::providers::{self, Inbound, Verifier, VerifierSettings};
use payhooks::secret::SecretSet;
use time::OffsetDateTime;

use super::scenario::SimEvent;
use crate::requests::SECRET;

const PAYPAL_WEBHOOK_ID: &str = "WH-CHAOS-TEST-ONLY";

#[derive(Debug)]
pub struct Signing {
    paypal: LocalSigner,
    verifiers: BTreeMap<Provider, Arc<dyn Verifier>>,
}

/// A signed delivery: its headers, and the token Kill Bill's URL carries.
pub struct Signed {
    pub headers: HeaderMap,
    pub path_token: Option<String>,
}

/// Names only: the headers and the token are credentials.
impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("path_token", &self.path_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Default for Signing {
    /// Keys and a certificate made for this run.
    fn default() -> Self {
        let settings = VerifierSettings::default();
        let secrets = || SecretSet::from_comma_separated(SECRET).expect("secret");
        let paypal = LocalSigner::generate(PAYPAL_WEBHOOK_ID).expect("a PayPal signing key");
        let now = OffsetDateTime::now_utc();
        let certificate = paypal
            .certificate_pem(now - time::Duration::hours(1), now + time::Duration::days(365))
            .expect("a certificate");
        let certificates = Arc::new(MemoryCertificateSource::new());
        certificates.insert(&paypal.cert_url, certificate);
        let mut verifiers = BTreeMap::new();
        for &provider in Provider::ALL {
            let verifier: Arc<dyn Verifier> = match provider {
                Provider::Paypal => Arc::new(PaypalVerifier::new(
                    SecretSet::from_comma_separated(PAYPAL_WEBHOOK_ID).expect("webhook id"),
                    settings.tolerance,
                    Arc::new(OfflineCheck::new(certificates.clone())),
                )),
                other => providers::verifier(other, secrets(), &settings),
            };
            verifiers.insert(provider, verifier);
        }
        Self { paypal, verifiers }
    }
}

impl Signing {
    pub fn verifiers(&self) -> Vec<Arc<dyn Verifier>> {
        self.verifiers.values().cloned().collect()
    }

    /// `event` signed as its provider would send it at `now`.
    pub fn sign(&self, event: &SimEvent, now: OffsetDateTime) -> Signed {
        let signed = match event.provider {
            Provider::Paypal => providers::SignedRequest {
                headers: self.paypal.headers(&event.body, now).expect("signs"),
                path_token: None,
            },
            other => providers::sign_sample(other, &event.body, &event.ids, SECRET, now).expect("signs"),
        };
        Signed {
            headers: signed.headers,
            path_token: signed.path_token,
        }
    }

    /// The key ingest records `event` under, as its verifier reads it.
    pub async fn event_key(&self, event: &SimEvent, now: OffsetDateTime) -> EventKey {
        let signed = self.sign(event, now);
        let inbound = Inbound {
            path_token: signed.path_token.as_deref(),
            ..Inbound::new(&signed.headers, &event.body)
        };
        let verified = self.verifiers[&event.provider].verify(&inbound, now).await.expect("verifies");
        EventKey::new(event.provider, verified.event_id)
    }
}

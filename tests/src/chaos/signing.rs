//! The simulated providers' keys: each signs as its provider does (PayPal
//! with a certificate made for the run, served from memory), and the
//! verifiers ingest checks them with.

use std::collections::BTreeMap;
use std::sync::Arc;

use payhooks::event::{EventKey, Provider};
use payhooks::providers::paypal::LocalSigner;
use payhooks::providers::{self, Inbound, SignedRequest, Verifier, VerifierSettings};
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

impl Default for Signing {
    /// Keys and a certificate made for this run.
    fn default() -> Self {
        let settings = VerifierSettings::default();
        let secrets = || SecretSet::from_comma_separated(SECRET).expect("secret");
        let (paypal, paypal_verifier) =
            LocalSigner::with_verifier(PAYPAL_WEBHOOK_ID, settings.tolerance).expect("a PayPal signer");
        let mut verifiers: BTreeMap<Provider, Arc<dyn Verifier>> = Provider::ALL
            .iter()
            .filter(|p| **p != Provider::Paypal)
            .map(|&p| (p, providers::verifier(p, secrets(), &settings)))
            .collect();
        verifiers.insert(Provider::Paypal, Arc::new(paypal_verifier));
        Self { paypal, verifiers }
    }
}

impl Signing {
    pub fn verifiers(&self) -> Vec<Arc<dyn Verifier>> {
        self.verifiers.values().cloned().collect()
    }

    /// `event` signed as its provider would send it at `now` (Kill Bill:
    /// the token its URL carries).
    pub fn sign(&self, event: &SimEvent, now: OffsetDateTime) -> SignedRequest {
        match event.provider {
            Provider::Paypal => {
                SignedRequest { headers: self.paypal.headers(&event.body, now).expect("signs"), path_token: None }
            }
            other => providers::sign_sample(other, &event.body, &event.ids, SECRET, now).expect("signs"),
        }
    }

    /// The key ingest records `event` under, as its verifier reads it.
    pub async fn event_key(&self, event: &SimEvent, now: OffsetDateTime) -> EventKey {
        let signed = self.sign(event, now);
        let inbound =
            Inbound { path_token: signed.path_token.as_deref(), ..Inbound::new(&signed.headers, &event.body) };
        let verified = self.verifiers[&event.provider].verify(&inbound, now).await.expect("verifies");
        EventKey::new(event.provider, verified.event_id)
    }
}

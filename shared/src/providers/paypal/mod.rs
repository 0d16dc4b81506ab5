//! PayPal (REST webhooks): an RSA signature (PKCS#1 v1.5, SHA-256) over
//! `transmission_id|transmission_time|webhook_id|crc32(raw body)`, made with
//! the key of the X.509 certificate that `PAYPAL-CERT-URL` points at, and
//! the mapping of PayPal's event types onto the domain's events.
//!
//! PayPal has no shared secret: the per-endpoint *webhook id* goes into the
//! signed string instead. It is not secret, but it is what ties a delivery
//! to this endpoint, so it travels through the same [`SecretSet`] plumbing
//! as other providers' secrets (several ids may be active).
//!
//! Two ways to check a signature, behind [`SignatureCheck`]:
//!
//! - [`OfflineCheck`] (the default): fetch the certificate through a
//!   [`CertificateSource`] (after the URL passed [`allowed_certificate_url`]),
//!   cache it per URL for the life of the process, refuse it outside its
//!   validity window, verify the RSA signature locally.
//! - [`ApiCheck`]: ask PayPal's `verify-webhook-signature` API, with an
//!   OAuth token from the app's client credentials.
//!
//! Stricter than PayPal's SDKs: the transmission time is checked against a
//! window in both directions (PayPal signs it but nothing checks it), and
//! the certificate URL must be one of PayPal's own before anything is
//! fetched, so a forged header cannot make the function call elsewhere.
//! The certificate chain is not validated against a bundled CA: the
//! certificate is only ever fetched over verified TLS from PayPal's API
//! hosts, which is what vouches for it.
//!
//! Layout: [`verify`] (the transmission and its window), [`certificates`]
//! (the offline check), [`api`] (PayPal's REST API and its check),
//! [`local_signer`] (a key and certificate made at start), [`events`]
//! (samples and the mapping), `subscriptions` (the read-back that
//! confirms an event's subscription and plan).

use std::time::Duration;

mod api;
mod certificates;
mod events;
mod integration;
mod local_signer;
mod subscriptions;
#[cfg(test)]
mod tests;
mod verify;

pub use api::*;
pub use certificates::*;
pub use events::*;
pub use integration::{API_BASE, ApiAccess, CLIENT_ID, CLIENT_SECRET, Paypal, VERIFICATION};
pub use local_signer::*;
pub use subscriptions::PaypalSubscriptions;
pub use verify::*;

pub const TRANSMISSION_ID: &str = "paypal-transmission-id";
pub const TRANSMISSION_TIME: &str = "paypal-transmission-time";
pub const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
pub const CERT_URL: &str = "paypal-cert-url";
pub const AUTH_ALGO: &str = "paypal-auth-algo";
/// The only `PAYPAL-AUTH-ALGO` PayPal sends (and the only one accepted).
pub const SHA256_WITH_RSA: &str = "SHA256withRSA";

/// Hosts PayPal serves its signing certificates from, live and sandbox.
pub const CERTIFICATE_HOSTS: &[&str] =
    &["api.paypal.com", "api.sandbox.paypal.com", "api-m.paypal.com", "api-m.sandbox.paypal.com"];
pub const CERTIFICATE_PATH: &str = "/v1/notifications/certs/";

/// PayPal's API, live; `https://api-m.sandbox.paypal.com` for the sandbox.
pub const LIVE_API_BASE: &str = "https://api-m.paypal.com";

/// Certificates are a few KiB; anything much larger is not one.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

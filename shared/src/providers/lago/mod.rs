//! Lago: `X-Lago-Signature` in one of two modes, chosen per webhook endpoint
//! and announced in `X-Lago-Signature-Algorithm`, and the mapping of Lago's
//! webhook types onto the domain's events.
//!
//! # Verification
//!
//! - `hmac`: `X-Lago-Signature` is the standard, padded base64 of
//!   HMAC-SHA256 over the raw body, keyed with the organization's HMAC key.
//!   It is compared in constant time against every active key (several
//!   while a key is rotated; Lago itself signs each attempt with its current
//!   key, so there is no overlap on its side).
//! - `jwt`: `X-Lago-Signature` is a compact JWS signed RS256 with Lago's RSA
//!   key, whose claims are `{"data": <the body as a string>, "iss": <Lago's
//!   API URL>}`. The header's `alg` must be exactly `RS256` (no `none`, no
//!   HS256 keyed with the public key, no other RSA digest), the signature
//!   must verify with Lago's public key, `data` must equal the received body
//!   byte for byte (lago-go-client's `ValidateSignature` skips this, which
//!   lets any old token vouch for any body), and `iss` must equal the
//!   configured API URL when one is configured. The public key comes from a
//!   [`PublicKeySource`]: configured text (PEM, or base64 of a PEM as Lago's
//!   endpoint returns it) or Lago's `GET /api/v1/webhooks/public_key`,
//!   fetched once and kept for the life of the process.
//!
//! A deployment accepts only the modes it is configured for: an HMAC key
//! enables `hmac`, a public key source enables `jwt`. Lago signs no
//! timestamp (nor does the JWT carry `exp`/`iat`), so replays are stopped
//! only by dedupe.
//!
//! # Event id
//!
//! The `X-Lago-Unique-Key` header (the UUID of Lago's webhook record, the
//! same across its retries); nothing in the body identifies the delivery.
//! The header is **not** covered by either signature: a replayed body under
//! a new key is a new event to the store, and only the effects' business
//! keys (I4) make it harmless. The fingerprint is SHA-256 over the webhook
//! type and the exact body.
//!
//! # Mapping
//!
//! | `webhook_type` | condition | kind | ids and amounts |
//! |---|---|---|---|
//! | `subscription.started` | `previous_plan_code` set (an up/downgrade: same `external_id`, new Lago subscription) | SubscriptionUpdated | plan = `plan_code` |
//! | `subscription.started` | `plan.trial_period` > 0 | TrialStarted | |
//! | `subscription.started` | otherwise | Purchase | |
//! | `subscription.terminated` | `next_plan_code` set (the old half of an up/downgrade) | SubscriptionUpdated | plan = `next_plan_code`, status `active` (the subscription lives on: both halves, stamped alike, state the same) |
//! | `subscription.terminated` | otherwise | Cancellation | |
//! | `subscription.trial_ended`, `subscription.updated` | | SubscriptionUpdated | |
//! | `invoice.created`, `invoice.payment_status_updated` | `invoice_type` = `subscription`, `payment_status` = `succeeded` | Renewal | amount = `total_amount_cents`; share of the period = fee `amount_cents` ÷ `amount_details.plan_amount_cents` where below one |
//! | `invoice.payment_status_updated` | `payment_status` = `failed` | PaymentFailed | amount = `total_amount_cents` |
//! | `invoice.payment_failure` | | PaymentFailed | invoice in `lago_invoice_id` only |
//! | `credit_note.created` | `refund_amount_cents` + `credit_amount_cents` > 0 | Refund | refund id = credit note `lago_id`, amount = that sum |
//! | anything else | | Other | |
//!
//! Subscription events take the subscription from `subscription.external_id`,
//! the account from `subscription.external_customer_id`, the plan from
//! `plan_code` and the period from `current_billing_period_started_at` /
//! `_ending_at`. Invoices take the account from `invoice.customer.external_id`,
//! the currency from `invoice.currency`, and the subscription and period from
//! the first subscription fee (`fees[].item.type` = `subscription`:
//! `external_subscription_id`, `from_date`, `to_date`), else from
//! `billing_periods[0]` (`subscription_from_datetime` / `_to_datetime`).
//! Both invoice events carry `fees`, only `invoice.created` carries
//! `billing_periods`, so the fee comes first: the two events of one paid
//! invoice then name the same period and grant once.
//!
//! Lago sends `invoice.created` when an invoice is finalized, usually before
//! the payment provider has charged it (`payment_status` = `pending`); such
//! an invoice grants nothing (Other) until `invoice.payment_status_updated`
//! says `succeeded`. A first purchase is provisioned by `subscription.started`
//! (Purchase) and its first paid invoice grants the first period (Renewal),
//! whatever the invoice's `invoicing_reason`; a fee that bills less than its
//! plan's price (a subscription started mid-period, an upgrade's new plan
//! among them) pays for that share of the period. A credit note gives back
//! what it refunds and what it credits to the customer's balance (an
//! upgrade's unused days among them); one that gives back nothing is Other.
//!
//! Every amount is in integer cents (`*_amount_cents`). The provider time is
//! the object's `updated_at`, else its `created_at` (`terminated_at` /
//! `started_at` for those subscription events), else the time of receipt
//! (`invoice.payment_failure` carries no time at all).
//!
//! # Layout
//!
//! [`keys`] (where the public key comes from), [`verify`] (both modes),
//! [`events`] (samples and the mapping).

mod events;
mod integration;
mod keys;
#[cfg(test)]
mod tests;
mod verify;

pub use events::*;
pub use integration::{API_KEY, API_URL, Lago, PUBLIC_KEY};
pub use keys::*;
pub use verify::*;

pub const SIGNATURE_HEADER: &str = "x-lago-signature";
pub const ALGORITHM_HEADER: &str = "x-lago-signature-algorithm";
pub const UNIQUE_KEY_HEADER: &str = "x-lago-unique-key";

/// Where Lago serves its webhook public key (base64 of a PEM, as text).
pub const PUBLIC_KEY_PATH: &str = "/api/v1/webhooks/public_key";

//! The Lambda edges end to end on the emulators: an API Gateway event (body
//! base64-encoded, as API Gateway may send it) → the ingest handler →
//! SQS → an SQS event → the processor handler → a completed record.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use base64::Engine;
use payhooks::event::{EventId, EventKey, EventStatus, Provider};
use payhooks_tests::Backend;
use payhooks_tests::requests::{SECRET, stripe_event};
use serde_json::json;

use crate::support::{Rig, VISIBILITY};

/// An API Gateway HTTP API (payload 2.0) event for a Stripe webhook.
fn api_gateway_event(body: &[u8], signature: &str) -> String {
    json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/stripe",
        "rawPath": "/webhooks/stripe",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": signature,
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "testapi",
            "domainName": "testapi.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "testapi",
            "http": {
                "method": "POST",
                "path": "/webhooks/stripe",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "Stripe/1.0"
            },
            "requestId": "test-request",
            "routeKey": "POST /webhooks/stripe",
            "stage": "$default",
            "time": "24/Nov/2026:07:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_i64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
    .to_string()
}

/// The event Lambda's SQS trigger hands the processor.
fn sqs_event(deliveries: &[payhooks::ports::Delivery]) -> SqsEvent {
    let records: Vec<_> = deliveries
        .iter()
        .map(|d| {
            json!({
                "messageId": d.message_id,
                "receiptHandle": d.receipt,
                "body": d.body,
                "attributes": {"ApproximateReceiveCount": d.receive_count.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).expect("an SQS event")
}

#[tokio::test]
async fn a_signed_webhook_goes_from_api_gateway_through_sqs_to_a_completed_record() {
    let mut backends = vec![Backend::memory(VISIBILITY)];
    backends.extend(Backend::emulators(VISIBILITY).await);
    for backend in backends {
        let rig = Rig::new(backend);
        let (ids, body) = stripe_event("invoice.payment_succeeded");
        let signature = payhooks::providers::stripe::signature_header(
            &body,
            &[&payhooks::secret::Secret::new(SECRET)],
            rig.now().unix_timestamp(),
        );
        let request = lambda_http::request::from_str(&api_gateway_event(&body, &signature)).expect("a request");
        let response = payhooks::edge::http::lambda(&rig.ingest, Provider::Stripe, request).await.expect("infallible");
        assert_eq!(response.status(), 200, "{}", rig.backend.name);
        let answer: serde_json::Value = serde_json::from_slice(response.body().as_ref()).expect("JSON");
        assert_eq!(answer, json!({"status": "accepted"}));
        assert_eq!(response.headers()["content-type"], "application/json");

        let deliveries = rig.backend.queue.receive(10, Duration::from_secs(2)).await.expect("receive");
        assert_eq!(deliveries.len(), 1);
        let batch = payhooks::edge::sqs::handle(&rig.processor, sqs_event(&deliveries), None).await;
        assert!(batch.batch_item_failures.is_empty(), "{batch:?}");
        // Lambda's trigger deletes what the batch response does not list.
        rig.backend.queue.delete(&deliveries[0].receipt).await.expect("delete");

        let key = EventKey::new(Provider::Stripe, EventId::parse(&ids.event_id).expect("id"));
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Completed, "{}", rig.backend.name);
        assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty());
        assert!(Backend::drain(rig.backend.dead_letters.as_ref()).await.is_empty());
    }
}

#[tokio::test]
async fn a_retryable_message_is_reported_as_a_batch_item_failure() {
    let rig = Rig::new(Backend::memory(VISIBILITY));
    let key = EventKey::new(Provider::Stripe, EventId::parse("evt_leased_elsewhere").expect("id"));
    // Leased elsewhere: the processor must ask for a retry of this message.
    let new = payhooks::event::NewEvent {
        key: key.clone(),
        fingerprint: "fp".into(),
        event: payhooks::providers::stripe::parse_event(
            payhooks::providers::stripe::SAMPLES
                .event("invoice.paid", &payhooks::providers::SampleIds::random("evt"))
                .expect("sample")
                .as_bytes(),
        )
        .expect("parse")
        .event,
        received_at: rig.now(),
    };
    rig.backend.store.claim(&new).await.expect("claim");
    rig.backend.store.lease(&key, "elsewhere", rig.now(), rig.now() + VISIBILITY).await.expect("lease");
    rig.backend.queue.send(&key.message_body()).await.expect("send");
    let deliveries = rig.backend.queue.receive(10, Duration::from_secs(1)).await.expect("receive");
    let batch = payhooks::edge::sqs::handle(&rig.processor, sqs_event(&deliveries), None).await;
    let failed: Vec<_> = batch.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, vec![deliveries[0].message_id.clone()]);
}

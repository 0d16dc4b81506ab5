//! Every provider's samples, signed as the provider would sign them, go
//! through the local server's routes: accepted once, duplicates answered as
//! such, processed to a final state; tampered copies refused with nothing
//! written. A new provider is covered by this file without touching it.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use payhooks::event::{EventStatus, Provider};
use payhooks::ingest::IngestSettings;
use payhooks::local::LocalApp;
use payhooks::process::ProcessorSettings;
use std::sync::Arc;

use payhooks::providers::paypal::LocalPaypal;
use payhooks::providers::{self, SignedRequest, Verifier, VerifierSettings};
use payhooks::secret::SecretSet;
use payhooks_tests::requests::SECRET;
use tower::ServiceExt;

/// The local server with every provider, and what `sign_sample` needs to
/// sign for each: the shared secret, or for PayPal the signing file of a
/// key and certificate made for this test.
pub(crate) struct Local {
    pub(crate) app: LocalApp,
    paypal_file: String,
    /// A signing file for the same certificate but another webhook id.
    paypal_other_file: String,
}

impl Local {
    pub(crate) fn start() -> Self {
        Self::start_with(None)
    }

    /// With `plans`, the processor applies effects.
    fn start_with(billing: Option<payhooks::local::Billing>) -> Self {
        let settings = VerifierSettings::default();
        let paypal =
            LocalPaypal::start("WH-TEST-ONLY", settings.tolerance, &std::env::temp_dir()).expect("paypal signer");
        let paypal_file = paypal.signing_file.display().to_string();
        let other = std::fs::read_to_string(&paypal.signing_file)
            .expect("signing file")
            .replace("WH-TEST-ONLY", "WH-SOMEONE-ELSE");
        let paypal_other_file = format!("{paypal_file}.other");
        std::fs::write(&paypal_other_file, other).expect("write");
        let verifiers = Provider::ALL
            .iter()
            .map(|&provider| match provider {
                Provider::Paypal => Arc::new(paypal.verifier.clone()) as Arc<dyn Verifier>,
                _ => providers::verifier(provider, SecretSet::from_comma_separated(SECRET).expect("secret"), &settings),
            })
            .collect();
        let app = LocalApp::with_verifiers(verifiers, billing, IngestSettings::default(), ProcessorSettings::default());
        Self { app, paypal_file, paypal_other_file }
    }

    pub(crate) fn secret(&self, provider: Provider) -> &str {
        match provider {
            Provider::Paypal => &self.paypal_file,
            _ => SECRET,
        }
    }

    fn other_secret(&self, provider: Provider) -> &str {
        match provider {
            Provider::Paypal => &self.paypal_other_file,
            _ => "another_secret_for_tests",
        }
    }
}

fn local_app() -> LocalApp {
    Local::start().app
}

pub(crate) fn request(provider: Provider, signed: &SignedRequest, body: Vec<u8>) -> Request<Body> {
    let uri = match &signed.path_token {
        Some(token) => format!("/webhooks/{provider}/{token}"),
        None => format!("/webhooks/{provider}"),
    };
    let mut request = Request::post(uri).body(Body::from(body)).expect("request");
    request.headers_mut().extend(signed.headers.clone());
    request
}

pub(crate) async fn send(app: &LocalApp, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.router().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

#[tokio::test]
async fn every_sample_of_every_provider_is_accepted_once_and_processed() {
    let local = Local::start();
    let app = &local.app;
    let mut sent = 0;
    for &provider in Provider::ALL {
        let types = providers::sample_event_types(provider);
        assert!(
            types.len() >= 5,
            "{provider}: samples for a purchase, renewal, refund, cancellation and failed payment"
        );
        for event_type in types {
            let ids = providers::sample_ids(provider);
            let body = providers::sample_event(provider, event_type, &ids).expect("sample").into_bytes();
            let now = time::OffsetDateTime::now_utc();
            let signed = providers::sign_sample(provider, &body, &ids, local.secret(provider), now).expect("signed");
            let (status, answer) = send(app, request(provider, &signed, body.clone())).await;
            assert_eq!(
                (status, answer["status"].as_str()),
                (StatusCode::OK, Some("accepted")),
                "{provider} {event_type}: {answer}"
            );
            let (_, again) = send(app, request(provider, &signed, body)).await;
            assert_eq!(again["status"], "duplicate", "{provider} {event_type}");
            sent += 1;
        }
    }
    while app.processor.poll_once(Duration::from_millis(100)).await.expect("poll").processed > 0 {}
    let records = app.store.all();
    assert_eq!(records.len(), sent);
    for record in records {
        assert!(
            matches!(record.status, EventStatus::Completed | EventStatus::Ignored),
            "{}/{} {}: {}",
            record.provider,
            record.event_id,
            record.event_type,
            record.status
        );
    }
}

#[tokio::test]
async fn a_tampered_or_unsigned_sample_of_every_provider_is_refused_and_writes_nothing() {
    let local = Local::start();
    let app = &local.app;
    for &provider in Provider::ALL {
        let event_type = providers::sample_event_types(provider)[0];
        let ids = providers::sample_ids(provider);
        let body = providers::sample_event(provider, event_type, &ids).expect("sample").into_bytes();
        let now = time::OffsetDateTime::now_utc();

        if providers::signs_body(provider) {
            let signed = providers::sign_sample(provider, &body, &ids, local.secret(provider), now).expect("signed");
            let mut tampered = body.clone();
            let at = tampered.iter().rposition(|b| b.is_ascii_digit()).expect("a digit");
            tampered[at] = if tampered[at] == b'9' { b'8' } else { tampered[at] + 1 };
            let (status, answer) = send(app, request(provider, &signed, tampered)).await;
            assert!(status.is_client_error(), "{provider}: a changed byte answered {status} {answer}");
        }

        let other = providers::sign_sample(provider, &body, &ids, local.other_secret(provider), now).expect("signed");
        let (status, answer) = send(app, request(provider, &other, body.clone())).await;
        assert!(status.is_client_error(), "{provider}: another secret answered {status} {answer}");

        let (status, answer) = send(app, request(provider, &SignedRequest::default(), body)).await;
        assert!(status.is_client_error(), "{provider}: no signature answered {status} {answer}");
        assert!(answer["error"].is_string() && answer["message"].is_string(), "{provider}: {answer}");
    }
    assert!(app.store.all().is_empty(), "nothing recorded for refused requests");
    assert_eq!(app.queue.depth(), 0, "nothing enqueued");
}

#[tokio::test]
async fn a_kill_bill_token_anywhere_but_the_path_or_one_character_off_is_refused() {
    let app = local_app();
    let ids = providers::sample_ids(Provider::Killbill);
    let body = providers::sample_event(Provider::Killbill, "INVOICE_PAYMENT_SUCCESS", &ids).expect("sample");
    let send_to = |uri: String, header: Option<(&'static str, &'static str)>| {
        let mut request = Request::post(uri).body(Body::from(body.clone())).expect("request");
        if let Some((name, value)) = header {
            request.headers_mut().insert(name, http::HeaderValue::from_static(value));
        }
        request
    };
    let mut off_by_one = SECRET.to_owned();
    off_by_one.pop();
    off_by_one.push('x');
    for (case, request, code) in [
        ("query string", send_to(format!("/webhooks/killbill?token={SECRET}"), None), "missing_token"),
        ("header", send_to("/webhooks/killbill".into(), Some(("x-killbill-token", SECRET))), "missing_token"),
        ("one character off", send_to(format!("/webhooks/killbill/{off_by_one}"), None), "invalid_token"),
        ("a prefix", send_to(format!("/webhooks/killbill/{}", &SECRET[..SECRET.len() - 1]), None), "invalid_token"),
    ] {
        let (status, answer) = send(&app, request).await;
        assert_eq!((status, answer["error"].as_str()), (StatusCode::UNAUTHORIZED, Some(code)), "{case}: {answer}");
        assert!(!answer.to_string().contains(SECRET), "{case}: the answer echoes the token");
    }
    assert!(app.store.all().is_empty());
    let (status, answer) = send(&app, send_to(format!("/webhooks/killbill/{SECRET}"), None)).await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::OK, Some("accepted")));
}

#[test]
fn every_providers_scenario_names_its_own_samples() {
    for &provider in Provider::ALL {
        let samples = providers::sample_event_types(provider);
        let scenario = providers::scenario(provider);
        assert!(scenario.len() >= 5, "{provider}: purchase, failed charge, renewal, refund, cancellation");
        for name in scenario {
            assert!(samples.contains(name), "{provider}: {name} is not a sample");
        }
    }
}

/// Credits per period for every plan the scenarios' samples name: 100, and
/// 250 for the plan the scenarios upgrade to.
fn sample_plans() -> payhooks::effects::Plans {
    let mut plans: serde_json::Map<String, serde_json::Value> = Provider::ALL
        .iter()
        .filter_map(|&p| providers::integration(p).sample_plan())
        .map(|plan| (plan.to_owned(), serde_json::json!(100)))
        .collect();
    plans.insert("price_1TestPlanTeam".to_owned(), serde_json::json!(250));
    for team in [
        "pri_test_team_monthly",
        "team_monthly",
        "P-2TM4271244454362WXNWU5NQ",
        "plan_test_team_monthly",
        "3808",
        "PLN_testteam0001",
        "team-monthly",
    ] {
        plans.insert(team.to_owned(), serde_json::json!(250));
    }
    payhooks::effects::Plans::from_json(&serde_json::Value::Object(plans).to_string()).expect("plans")
}

#[tokio::test]
async fn every_providers_scenario_grants_claws_back_and_cancels_one_account() {
    for &provider in Provider::ALL {
        let ids = providers::sample_ids(provider);
        // Kill Bill's notifications name no plan: they are confirmed against
        // the local server's stand-in for its API, filled as `trigger` does.
        let billing = payhooks::local::Billing { killbill_stand_in: true, ..sample_plans().into() };
        let local = Local::start_with(Some(billing));
        let app = &local.app;
        for (i, sample) in providers::scenario(provider).iter().enumerate() {
            let event = providers::SampleIds { event_id: providers::sample_ids(provider).event_id, ..ids.clone() };
            for (path, object) in providers::sample_api_objects(provider, sample, &event) {
                let put = Request::put(format!("/killbill-api/1.0/kb/{path}"))
                    .header("content-type", "application/json")
                    .body(Body::from(object.to_string()))
                    .expect("request");
                assert_eq!(send(app, put).await.0, StatusCode::OK, "{provider} {sample}: {path}");
            }
            let body = providers::sample_event(provider, sample, &event).expect("sample").into_bytes();
            let now = time::OffsetDateTime::now_utc();
            let signed = providers::sign_sample(provider, &body, &event, local.secret(provider), now).expect("signed");
            let (status, answer) = send(app, request(provider, &signed, body)).await;
            assert_eq!(
                (status, answer["status"].as_str()),
                (StatusCode::OK, Some("accepted")),
                "{provider} {sample}: {answer}"
            );
            // One at a time, in the scenario's order, as a person would watch it.
            while app.processor.poll_once(Duration::from_millis(50)).await.expect("poll").processed > 0 {}
            let unfinished: Vec<_> =
                app.store.all().into_iter().filter(|r| r.status != EventStatus::Completed).collect();
            assert!(unfinished.is_empty(), "{provider}: step {i} ({sample}): {unfinished:#?}");
        }
        let renewal = app
            .store
            .all()
            .into_iter()
            .find(|r| r.event.kind == payhooks::event::EventKind::Renewal)
            .expect("a renewal");
        use payhooks::ports::Balances;
        let account = payhooks::ports::AccountRef::new(provider, renewal.event.account.clone().expect("account"));
        let state = app.store.account(&account).await.expect("account").expect("an account");
        let entries = app.store.entries(&account).await.expect("entries");
        let deltas: Vec<i64> = entries.iter().map(|e| e.delta).collect();
        assert_eq!(state.balance, deltas.iter().sum::<i64>(), "{provider}: the balance is the sum of its ledger");
        let mut grants: Vec<i64> = deltas.iter().copied().filter(|d| *d > 0).collect();
        grants.sort_unstable();
        let expected = match provider {
            // An upgrade halfway through the period, invoiced at once: half
            // of the 150 more that Team is worth (Kill Bill: Team's 25.00
            // of 49.99 less Pro's 10.00 of 19.99 given back).
            Provider::Stripe | Provider::Paddle | Provider::Killbill => vec![75, 100],
            // Lago starts Team for the days left (16 of 31, paid 5110 of
            // 9900: 129) and credits Pro's unused days (a claw-back).
            Provider::Lago => vec![100, 129],
            // PayPal and Razorpay bill the new plan from the next cycle;
            // on Flutterwave the customer subscribes to Team's payment plan.
            Provider::Paypal | Provider::Razorpay | Provider::Flutterwave => vec![100, 250],
            // Paystack's first payment, its renewal (told by its charge and
            // its invoice, granted once), and Team, a new subscription paid
            // in full.
            Provider::Paystack => vec![100, 100, 250],
        };
        assert_eq!(grants, expected, "{provider}: the paid periods, and a top-up: {deltas:?}");
        let clawed: i64 = -deltas.iter().filter(|d| **d < 0).sum::<i64>();
        assert!(clawed > 0 && clawed <= 100, "{provider}: the refund claws back part of the grant: {deltas:?}");
        let statuses: Vec<_> = state.subscriptions.iter().map(|(id, s)| (id.as_str(), s.status.as_str())).collect();
        if provider == Provider::Flutterwave {
            // Pro is cancelled; Team, a subscription of its own, lives on.
            assert_eq!(statuses, [("plan-3807", "cancelled"), ("plan-3808", "active")]);
            assert_eq!(state.entitlement.expect("entitlement").status, "active", "{provider}");
        } else if provider == Provider::Paystack {
            let team = format!("{}team", ids.subscription_id);
            assert_eq!(statuses, [(ids.subscription_id.as_str(), "cancelled"), (team.as_str(), "active")]);
            assert_eq!(state.entitlement.expect("entitlement").status, "active", "{provider}");
        } else {
            assert_eq!(state.entitlement.expect("entitlement").status, "cancelled", "{provider}");
        }
        assert_eq!(state.failed_payments, 1, "{provider}: the renewal's first charge failed");
        // Downstream hears the upgrade: a plan change, or (where a new plan
        // is a new subscription) the new one provisioned.
        let actions: Vec<_> = app.provisioner.received().into_iter().map(|r| r.action).collect();
        use payhooks::ports::Action;
        let told = match provider {
            Provider::Flutterwave | Provider::Paystack => {
                actions.iter().filter(|a| **a == Action::Provision).count() == 2
            }
            _ => actions.contains(&Action::ChangePlan),
        };
        assert!(told, "{provider}: the upgrade reaches downstream: {actions:?}");
    }
}

use std::process::ExitCode;

use clap::Args;
use payhooks::event::Provider;
use payhooks::providers;

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The provider whose event to send (stripe, paystack, flutterwave, killbill, lago, paypal).
    provider: Provider,
    /// The event type, e.g. invoice.payment_succeeded; `list` shows them all.
    event_type: String,
    /// Where to send it; default: the local server's route for the provider.
    #[arg(long)]
    url: Option<String>,
    /// The signing secret; default: the provider's <PROVIDER>_WEBHOOK_SECRET.
    /// For paypal: the signing file the local server printed
    /// (default: PAYHOOKS_PAYPAL_SIGNING_FILE).
    #[arg(long)]
    secret: Option<String>,
    /// Customer id to put in the event (default: a fresh one).
    #[arg(long)]
    customer: Option<String>,
    /// Subscription id to put in the event (default: a fresh one).
    #[arg(long)]
    subscription: Option<String>,
}

pub async fn run(args: TriggerArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let provider = args.provider;
    let types = providers::sample_event_types(provider);
    if args.event_type == "list" {
        for event_type in types {
            println!("{event_type}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut ids = providers::sample_ids(provider);
    if let Some(customer) = args.customer {
        ids.customer_id = customer;
    }
    if let Some(subscription) = args.subscription {
        ids.subscription_id = subscription;
    }
    let body = providers::sample_event(provider, &args.event_type, &ids).ok_or_else(|| {
        format!(
            "no sample for {provider} event type {:?}; known: {}",
            args.event_type,
            types.join(", ")
        )
    })?;
    let variable = match provider {
        Provider::Paypal => "PAYHOOKS_PAYPAL_SIGNING_FILE".to_owned(),
        _ => format!("{}_WEBHOOK_SECRET", provider.env_prefix()),
    };
    let secret = args.secret.or_else(|| std::env::var(&variable).ok()).ok_or_else(|| {
        format!("no signing secret: pass --secret or set {variable} (the local server prints its secret at start)")
    })?;
    let signed = providers::sign_sample(provider, body.as_bytes(), &ids, &secret, time::OffsetDateTime::now_utc())?;
    let mut url = args.url.unwrap_or_else(|| {
        let addr = std::env::var("PAYHOOKS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        format!("http://{addr}/webhooks/{provider}")
    });
    if let Some(token) = &signed.path_token {
        url = format!("{}/{token}", url.trim_end_matches('/'));
    }

    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .headers(signed.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("could not reach {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{provider} {} {} → {status}", args.event_type, ids.event_id);
    println!("{text}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

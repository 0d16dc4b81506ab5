use std::process::ExitCode;

use clap::Args;
use clap::builder::TypedValueParser;
use payhooks::event::Provider;
use payhooks::providers;

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The provider whose event to send.
    #[arg(value_parser = providers_parser())]
    provider: Provider,
    /// The event type, e.g. invoice.payment_succeeded; `list` shows them all;
    /// `scenario` sends one customer's story: a purchase, a renewal whose
    /// first charge fails, a refund, an upgrade, a cancellation.
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

/// Every provider, named in `--help` and its errors.
fn providers_parser() -> impl clap::builder::TypedValueParser<Value = Provider> {
    clap::builder::PossibleValuesParser::new(Provider::ALL.iter().map(|p| p.as_str()))
        .map(|name| name.parse::<Provider>().expect("one of Provider::ALL"))
}

pub async fn run(args: TriggerArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let provider = args.provider;
    let types = providers::sample_event_types(provider);
    if args.event_type == "list" {
        for event_type in types {
            println!("{event_type}");
        }
        println!("scenario   (sends {} for one customer)", providers::scenario(provider).join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let mut ids = providers::sample_ids(provider);
    if let Some(customer) = args.customer {
        ids.customer_id = customer;
    }
    if let Some(subscription) = args.subscription {
        ids.subscription_id = subscription;
    }
    let variable = providers::integration(provider).trigger_secret_variable();
    let secret = args.secret.or_else(|| std::env::var(&variable).ok()).ok_or_else(|| {
        format!("no signing secret: pass --secret or set {variable} (the local server prints its secret at start)")
    })?;
    // The local server also stands in for Kill Bill's API: what it answers
    // about each sample's objects is put there first.
    let local = args.url.is_none().then(|| {
        let addr = std::env::var("PAYHOOKS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        format!("http://{addr}")
    });
    let url = match (&args.url, &local) {
        (Some(url), _) => url.clone(),
        (None, Some(local)) => format!("{local}/webhooks/{provider}"),
        (None, None) => unreachable!("local is set when no URL is"),
    };
    let client = reqwest::Client::new();
    let target = Target { client: &client, provider, secret: &secret, url: &url, local: local.as_deref() };

    if args.event_type == "scenario" {
        let mut all_ok = true;
        for sample in providers::scenario(provider) {
            // Each its own event, all about one customer and subscription.
            let event = providers::SampleIds { event_id: providers::sample_ids(provider).event_id, ..ids.clone() };
            all_ok &= target.send(sample, &event).await?;
        }
        println!(
            "watch it: GET /accounts/{provider}/<account> on the local server (the samples' account, or the customer id {})",
            ids.customer_id
        );
        return Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    if !types.contains(&args.event_type.as_str()) {
        return Err(format!(
            "no sample for {provider} event type {:?}; known: {}, scenario",
            args.event_type,
            types.join(", ")
        )
        .into());
    }
    let ok = target.send(&args.event_type, &ids).await?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Where and as whom samples are sent.
struct Target<'a> {
    client: &'a reqwest::Client,
    provider: Provider,
    secret: &'a str,
    url: &'a str,
    /// The local server's root, when sending to it.
    local: Option<&'a str>,
}

impl Target<'_> {
    /// Signs and sends one sample; prints the answer. True for a 2xx.
    async fn send(&self, sample: &str, ids: &providers::SampleIds) -> Result<bool, Box<dyn std::error::Error>> {
        let provider = self.provider;
        let body = providers::sample_event(provider, sample, ids).ok_or_else(|| format!("no sample {sample:?}"))?;
        if let Some(local) = self.local {
            self.put_api_objects(local, sample, ids).await?;
        }
        let signed =
            providers::sign_sample(provider, body.as_bytes(), ids, self.secret, time::OffsetDateTime::now_utc())?;
        let url = match &signed.path_token {
            Some(token) => format!("{}/{token}", self.url.trim_end_matches('/')),
            None => self.url.to_owned(),
        };
        let response = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .headers(signed.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("could not reach {url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        println!("{provider} {sample} {} → {status}", ids.event_id);
        println!("{text}");
        Ok(status.is_success())
    }

    /// Puts what the provider's API answers about the sample's objects into
    /// the local server's stand-in (Kill Bill's).
    async fn put_api_objects(
        &self,
        local: &str,
        sample: &str,
        ids: &providers::SampleIds,
    ) -> Result<(), Box<dyn std::error::Error>> {
        for (path, object) in providers::sample_api_objects(self.provider, sample, ids) {
            let url = format!("{local}/killbill-api/1.0/kb/{path}");
            let response =
                self.client.put(&url).json(&object).send().await.map_err(|e| format!("could not reach {url}: {e}"))?;
            if !response.status().is_success() {
                println!(
                    "the local server keeps no Kill Bill objects ({}): start it with PAYHOOKS_PLANS to confirm Kill Bill's samples",
                    response.status()
                );
                return Ok(());
            }
        }
        Ok(())
    }
}

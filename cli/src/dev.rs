use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use payhooks::config;
use payhooks::effects::{NegativeBalances, PlanChanges};
use payhooks::event::Provider;
use payhooks::local::{Billing, LocalApp};
use payhooks::process::ProcessorSettings;
use payhooks::providers;
use payhooks::secret::SecretSet;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Address to listen on.
    #[arg(long, env = "PAYHOOKS_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
}

pub async fn run(args: DevArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    payhooks::telemetry::init_local();
    let env = config::Env::process();
    let mut verifiers = Vec::new();
    let mut banner = Vec::new();
    for &provider in Provider::ALL {
        let integration = providers::integration(provider);
        if let Some(local) = integration.local_signing(&env, &std::env::temp_dir())? {
            banner.push(format!(
                "  POST http://{}/webhooks/{provider}   {}\n    (send with: cargo run --bin payhooks -- trigger {provider} <event-type> --secret {})",
                args.addr, local.description, local.secret
            ));
            verifiers.push(local.verifier);
            continue;
        }
        let variable = config::secret_variable(provider);
        let route = format!("http://{}/webhooks/{provider}", args.addr);
        let set = match env.var(&variable) {
            Some(value) => {
                let set = SecretSet::from_comma_separated(&value).map_err(|_| format!("{variable} holds no secret"))?;
                banner.push(format!("  POST {route}{}   secret from {variable}", token_hint(provider)));
                set
            }
            None => {
                // A fresh secret per start: nothing to leak, nothing to reuse.
                let generated = format!("{}_dev_{}", provider.as_str(), uuid::Uuid::new_v4().simple());
                let set = SecretSet::from_comma_separated(&generated)?;
                let ids = providers::sample_ids(provider);
                let signed =
                    providers::sign_sample(provider, b"{}", &ids, &generated, time::OffsetDateTime::now_utc())?;
                let route = match signed.path_token {
                    Some(token) => format!("{route}/{token}"),
                    None => route,
                };
                banner.push(format!(
                    "  POST {route}   development secret: {generated}\n    (set {variable} to choose one; send with: cargo run --bin payhooks -- trigger {provider} <event-type> --secret {generated})"
                ));
                set
            }
        };
        verifiers.push(providers::verifier(provider, set, &config::verifier_settings(provider, &env)?));
    }
    let plans = env.var(config::PLANS).map(|json| config::parse_plans(json.as_bytes())).transpose()?;
    let billing = match plans {
        Some(plans) => {
            let plan_changes = env.parsed(config::PLAN_CHANGES, PlanChanges::default(), "prorate, full or none")?;
            let negative_balances =
                env.parsed(config::NEGATIVE_BALANCES, NegativeBalances::default(), "allow or forbid")?;
            println!(
                "effects on: credits per period from {}; plan changes {plan_changes:?}, negative balances {negative_balances:?} ({}, {})",
                config::PLANS,
                config::PLAN_CHANGES,
                config::NEGATIVE_BALANCES
            );
            // Kill Bill's notifications are hints: confirmed here against
            // the stand-in `trigger killbill …` fills.
            Some(Billing { plans, plan_changes, negative_balances, killbill_stand_in: true })
        }
        None => {
            println!("effects off: set {} (JSON: plan id -> credits per period) to apply them", config::PLANS);
            None
        }
    };
    let app = LocalApp::with_verifiers(
        verifiers,
        billing,
        config::ingest_settings(&env)?,
        ProcessorSettings {
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            ..ProcessorSettings::default()
        },
    );
    println!("payhooks local server (in-memory store and queue; the processor runs in this process)");
    for line in banner {
        println!("{line}");
    }
    println!("  GET  http://{}/events/{{provider}}/{{event_id}}   an event's record", args.addr);
    println!(
        "  GET  http://{}/accounts/{{provider}}/{{account}}[/ledger]   an account's balance and entitlement, or its ledger",
        args.addr
    );
    app.serve(args.addr).await?;
    Ok(ExitCode::SUCCESS)
}

/// Providers whose secret is a token at the end of the callback URL.
fn token_hint(provider: Provider) -> &'static str {
    if providers::integration(provider).token_in_path() { "/<token>" } else { "" }
}

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use payhooks::config;
use payhooks::event::Provider;
use payhooks::local::LocalApp;
use payhooks::process::ProcessorSettings;
use payhooks::providers::paypal::LocalPaypal;
use payhooks::providers::{self, Verifier};
use payhooks::secret::SecretSet;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Address to listen on.
    #[arg(long, env = "PAYHOOKS_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
}

pub async fn run(args: DevArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    payhooks::telemetry::init_local();
    let tolerance = config::tolerance()?;
    let mut verifiers = Vec::new();
    let mut banner = Vec::new();
    for &provider in Provider::ALL {
        if provider == Provider::Paypal {
            // No shared secret to print: a key and certificate made now, the
            // certificate served from memory, the key in a file for trigger.
            let webhook_id = std::env::var("PAYPAL_WEBHOOK_ID")
                .unwrap_or_else(|_| format!("WH-LOCAL-{}", uuid::Uuid::new_v4().simple()));
            let local = LocalPaypal::start(&webhook_id, tolerance, &std::env::temp_dir())
                .map_err(|e| format!("PayPal local signer: {e}"))?;
            let file = local.signing_file.display();
            banner.push(format!(
                "  POST http://{}/webhooks/paypal   webhook id {webhook_id}, signing file (0600): {file}\n    (send with: cargo run --bin payhooks -- trigger paypal <event-type> --secret {file})",
                args.addr
            ));
            verifiers.push(Arc::new(local.verifier) as Arc<dyn Verifier>);
            continue;
        }
        let variable = config::secret_variable(provider);
        let set = match config::secrets_from_env(provider)? {
            Some(set) => {
                banner.push(format!("  POST http://{}/webhooks/{provider}   secret from {variable}", args.addr));
                set
            }
            None => {
                // A fresh secret per start: nothing to leak, nothing to reuse.
                let generated = format!("whsec_dev_{}", uuid::Uuid::new_v4().simple());
                banner.push(format!(
                    "  POST http://{}/webhooks/{provider}   development secret: {generated}\n    (set {variable} to choose one; send with: cargo run --bin payhooks -- trigger {provider} <event-type> --secret {generated})",
                    args.addr
                ));
                SecretSet::from_comma_separated(&generated)?
            }
        };
        verifiers.push(providers::verifier(provider, set, tolerance));
    }
    let app = LocalApp::with_verifiers(
        verifiers,
        config::ingest_settings()?,
        ProcessorSettings {
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        },
    );
    println!("payhooks local server (in-memory store and queue; the processor runs in this process)");
    for line in banner {
        println!("{line}");
    }
    println!("  GET  http://{}/events/{{provider}}/{{event_id}}   an event's record", args.addr);
    app.serve(args.addr).await?;
    Ok(ExitCode::SUCCESS)
}

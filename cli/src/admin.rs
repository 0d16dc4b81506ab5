//! The operator's commands: `health`, `events show`, `accounts show`,
//! `replay`, `sweep`, `reconcile`. Each calls the admin routes of the local
//! server (the default) or of a deployed stack (`--url` = the stack's
//! `AdminUrl` output), signing with SigV4 from the caller's AWS credentials
//! when the URL is API Gateway's, since those routes are IAM-authorized.

use std::process::ExitCode;
use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

#[derive(Debug, Args)]
pub struct Target {
    /// The local server (default: http://$PAYHOOKS_ADDR, 127.0.0.1:3000) or
    /// a stack's AdminUrl.
    #[arg(long)]
    url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    target: Target,
    /// Only this provider's dead letters.
    #[arg(long)]
    provider: Option<String>,
    /// Only this event (needs --provider).
    #[arg(long = "event")]
    event_id: Option<String>,
    /// List what would move; move nothing.
    #[arg(long)]
    dry_run: bool,
    /// Messages per request; requests repeat until the DLQ holds no match.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// One event's record: status, attempts, times, last error, the event.
    Show {
        provider: String,
        event_id: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// An account: balance, entitlement, flags, ledger and audits.
    Show {
        provider: String,
        account: String,
        #[command(flatten)]
        target: Target,
    },
}

fn base(target: &Target) -> String {
    target.url.clone().unwrap_or_else(|| {
        let addr = std::env::var("PAYHOOKS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        format!("http://{addr}")
    })
}

/// `{api}.execute-api.{region}.amazonaws.com`: API Gateway, so sign.
fn api_gateway_region(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    let mut labels = host.split('.');
    let (_, service, region) = (labels.next()?, labels.next()?, labels.next()?);
    (service == "execute-api").then(|| region.to_owned())
}

async fn call(target: &Target, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
    let url = reqwest::Url::parse(&format!("{}{path}", base(target).trim_end_matches('/')))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = http::Request::builder()
        .method(method.as_str())
        .uri(url.as_str())
        .header("content-type", "application/json")
        .body(body.clone())?;
    if let Some(region) = api_gateway_region(&url) {
        sign_request(&mut request, &region).await?;
    }
    let client = reqwest::Client::new();
    let mut outgoing = client.request(method, url.clone()).body(body);
    for (name, value) in request.headers() {
        outgoing = outgoing.header(name.as_str(), value.as_bytes());
    }
    let response = outgoing.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let answer: Value = response.json().await.map_err(|e| format!("{url}: not a JSON answer ({status}): {e}"))?;
    if !status.is_success() {
        return Err(format!("{status}: {}", answer["message"].as_str().unwrap_or(&answer.to_string())).into());
    }
    Ok(answer)
}

async fn sign_request(request: &mut http::Request<String>, region: &str) -> Result<(), Error> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let provider = config.credentials_provider().ok_or("no AWS credentials configured to sign the request")?;
    let credentials = provider.provide_credentials().await?;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body().as_bytes()),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

fn print(value: &Value) -> Result<ExitCode, Error> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn health(target: Target) -> Result<ExitCode, Error> {
    let answer = call(&target, reqwest::Method::GET, "/admin/health", None).await?;
    print(&answer)?;
    Ok(if answer["healthy"] == true { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub async fn events(command: EventsCommand) -> Result<ExitCode, Error> {
    let EventsCommand::Show { provider, event_id, target } = command;
    print(&call(&target, reqwest::Method::GET, &format!("/admin/events/{provider}/{event_id}"), None).await?)
}

pub async fn accounts(command: AccountsCommand) -> Result<ExitCode, Error> {
    let AccountsCommand::Show { provider, account, target } = command;
    print(&call(&target, reqwest::Method::GET, &format!("/admin/accounts/{provider}/{account}"), None).await?)
}

pub async fn sweep(target: Target) -> Result<ExitCode, Error> {
    print(&call(&target, reqwest::Method::POST, "/admin/sweep", None).await?)
}

/// Reconciles until every account was checked (each request goes on where
/// the last stopped), printing each request's report; 1 on any mismatch.
pub async fn reconcile(target: Target) -> Result<ExitCode, Error> {
    let mut mismatched = 0;
    loop {
        let answer = call(&target, reqwest::Method::POST, "/admin/reconcile", None).await?;
        print(&answer)?;
        mismatched += answer["mismatched"].as_u64().unwrap_or(0);
        if answer["complete"] == false {
            continue;
        }
        return Ok(if mismatched == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
}

/// Replays in requests of `limit`, printing progress after each, until no
/// match is left (a dry run lists one request's worth).
pub async fn replay(args: ReplayArgs) -> Result<ExitCode, Error> {
    let request = json!({
        "provider": args.provider,
        "event_id": args.event_id,
        "dry_run": args.dry_run,
        "limit": args.limit,
    });
    let (mut moved, mut reopened) = (0, 0);
    loop {
        let answer = call(&args.target, reqwest::Method::POST, "/admin/replay", Some(request.clone())).await?;
        for letter in answer["matched"].as_array().into_iter().flatten() {
            println!(
                "{} {} {}/{} {}",
                if args.dry_run { "would move" } else { "moved" },
                letter["status"].as_str().unwrap_or("no record"),
                letter["provider"].as_str().unwrap_or_default(),
                letter["event_id"].as_str().unwrap_or_default(),
                letter["last_error"].as_str().unwrap_or_default(),
            );
        }
        moved += answer["moved"].as_u64().unwrap_or(0);
        reopened += answer["reopened"].as_u64().unwrap_or(0);
        let more = answer["more"] == true;
        if args.dry_run {
            if answer["matched"].as_array().is_none_or(Vec::is_empty) {
                println!("nothing in the dead-letter queue matches");
            }
            if more {
                println!("… and more (raise --limit to list them)");
            }
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("replay: {moved} moved ({reopened} failed events reopened) so far");
        if !more {
            println!("{moved} moved, {reopened} reopened; {} kept in the DLQ", answer["kept"]);
            return Ok(ExitCode::SUCCESS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_gateway_urls_are_signed() {
        let region = |url: &str| api_gateway_region(&reqwest::Url::parse(url).expect("a URL"));
        assert_eq!(
            region("https://abc123.execute-api.eu-west-1.amazonaws.com/admin/health").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region("http://127.0.0.1:3000/admin/health"), None);
        assert_eq!(region("https://example.com/admin/health"), None);
    }
}

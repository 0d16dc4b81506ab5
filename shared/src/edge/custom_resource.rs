//! The register function's edge: a CloudFormation custom resource request
//! in, the provider's callback ensured or removed, and the answer PUT to the
//! request's pre-signed `ResponseURL`.
//!
//! CloudFormation waits for that answer (up to an hour) and knows nothing
//! else, so every request that names a response URL gets one: `SUCCESS`
//! only when the registration is done, `FAILED` with the reason otherwise,
//! including when the work runs out of the invocation's time. The physical
//! id is the registration ([`Registered::physical_id`]); a `Delete` removes
//! only what its physical id names.
//!
//! Resource properties: `Provider` (`killbill` or `stripe`), `CallbackUrl`
//! (for Kill Bill the route without its token, which is read from Secrets
//! Manager and appended here), `EnabledEvents` (Stripe).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest as Request, CloudFormationCustomResourceResponse as Response,
    CloudFormationCustomResourceResponseStatus as Status,
};
use serde::Deserialize;
use serde_json::Value;

use crate::event::Provider;
use crate::providers::api::http_client;
use crate::registration::{Callback, Registered, Registrars, RegistrationError};

/// Kept back from the invocation's time for sending the answer.
const RESPONSE_RESERVE: Duration = Duration::from_secs(20);
const RESPONSE_ATTEMPTS: u32 = 3;
/// CloudFormation takes answers of up to 4 KiB; the reason is most of it.
const MAX_REASON_CHARS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CustomResourceError {
    #[error("the event is not a CloudFormation custom resource request with a response URL")]
    Malformed(#[source] Option<serde_json::Error>),
    #[error("the answer could not be serialized")]
    Unserializable(#[source] serde_json::Error),
    #[error("the answer could not be sent to CloudFormation's response URL")]
    Unsent(#[source] reqwest::Error),
    #[error("CloudFormation's response URL refused the answer with HTTP {0}")]
    Refused(u16),
}

/// Why a request was answered `FAILED`.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the resource's properties are invalid: {0}")]
    Properties(String),
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error("the request could not be read: {0}")]
    Unreadable(String),
    #[error("the request type is not Create, Update or Delete")]
    UnknownRequestType,
    #[error("the registration did not finish within the {0:?} this invocation had left")]
    TimedOut(Duration),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Properties {
    provider: String,
    callback_url: String,
    #[serde(default)]
    enabled_events: Vec<String>,
}

/// The fields every answer repeats from its request.
struct Envelope {
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    physical_resource_id: Option<String>,
}

impl Envelope {
    /// Read from the raw event rather than the parsed request, so that a
    /// request that does not parse can still be answered.
    fn read(event: &Value) -> Option<Self> {
        let field = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            response_url: field("ResponseURL")?,
            stack_id: field("StackId").unwrap_or_default(),
            request_id: field("RequestId").unwrap_or_default(),
            logical_resource_id: field("LogicalResourceId").unwrap_or_default(),
            physical_resource_id: field("PhysicalResourceId"),
        })
    }

    /// A failed create has no registration to name; the `Delete` that rolls
    /// it back finds this id and removes nothing.
    fn physical_id_on_failure(&self) -> String {
        self.physical_resource_id.clone().unwrap_or_else(|| format!("{}-not-registered", self.logical_resource_id))
    }

    fn answer(&self, status: Status, reason: String, physical_resource_id: String) -> Response {
        let mut response = Response::default();
        response.status = status;
        response.reason = Some(reason.chars().take(MAX_REASON_CHARS).collect());
        response.physical_resource_id = physical_resource_id;
        response.stack_id = self.stack_id.clone();
        response.request_id = self.request_id.clone();
        response.logical_resource_id = self.logical_resource_id.clone();
        response
    }
}

/// An error and its causes, as one line: the reason CloudFormation shows.
pub fn explain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `base` with `token` as its last path segment (encoded as a segment).
fn with_token(base: &str, token: &[u8]) -> Result<String, Failure> {
    let mut url = url::Url::parse(base).map_err(|_| Failure::Properties("CallbackUrl is not a URL".into()))?;
    url.path_segments_mut()
        .map_err(|_| Failure::Properties("CallbackUrl cannot take a path".into()))?
        .pop_if_empty()
        .push(&String::from_utf8_lossy(token));
    Ok(url.into())
}

#[derive(Debug)]
pub struct CustomResources {
    registrars: Arc<dyn Registrars>,
    http: reqwest::Client,
}

impl CustomResources {
    pub fn new(registrars: Arc<dyn Registrars>) -> Self {
        Self { registrars, http: http_client() }
    }

    /// Handles one request and sends its answer, which it returns. `Err`
    /// only when there is nowhere to answer or the answer could not be sent
    /// (Lambda then retries the invocation, and the registration, which is
    /// idempotent, runs again).
    pub async fn handle(&self, event: Value, time_left: Duration) -> Result<Response, CustomResourceError> {
        let parsed = Request::deserialize(&event);
        let Some(envelope) = Envelope::read(&event) else {
            return Err(CustomResourceError::Malformed(parsed.err()));
        };
        let result = match &parsed {
            Ok(request) => {
                let budget = time_left.saturating_sub(RESPONSE_RESERVE);
                tokio::time::timeout(budget, self.run(request)).await.unwrap_or(Err(Failure::TimedOut(budget)))
            }
            Err(error) => Err(Failure::Unreadable(error.to_string())),
        };
        let response = match result {
            Ok((physical_id, reason)) => envelope.answer(Status::Success, reason, physical_id),
            Err(failure) => envelope.answer(Status::Failed, explain(&failure), envelope.physical_id_on_failure()),
        };
        tracing::info!(
            resource = %envelope.logical_resource_id,
            physical_id = %response.physical_resource_id,
            status = ?response.status,
            reason = response.reason.as_deref().unwrap_or_default(),
            "custom resource answered"
        );
        self.send(&envelope.response_url, &response).await?;
        Ok(response)
    }

    /// The registration a request asks for: its physical id and what was done.
    async fn run(&self, request: &Request) -> Result<(String, String), Failure> {
        match request {
            Request::Create(r) => self.ensure(&r.resource_properties).await,
            Request::Update(r) => self.ensure(&r.resource_properties).await,
            Request::Delete(r) => self.remove(&r.physical_resource_id).await,
            _ => Err(Failure::UnknownRequestType),
        }
    }

    async fn ensure(&self, properties: &Value) -> Result<(String, String), Failure> {
        let properties = Properties::deserialize(properties).map_err(|e| Failure::Properties(e.to_string()))?;
        let provider: Provider = properties
            .provider
            .parse()
            .map_err(|_| Failure::Properties(format!("Provider {:?} is not a provider", properties.provider)))?;
        let url = match self.registrars.url_token(provider).await? {
            Some(token) => with_token(&properties.callback_url, token.expose())?,
            None => properties.callback_url,
        };
        let callback = Callback::new(url).with_events(properties.enabled_events);
        let registered = self.registrars.registrar(provider).await?.ensure(&callback).await?;
        let physical_id = registered.physical_id();
        Ok((physical_id.clone(), format!("{physical_id} is registered")))
    }

    /// A registration whose provider is no longer configured (its
    /// parameters were cleared in the update that deletes it) cannot be
    /// removed from here: the delete succeeds, saying so, rather than
    /// leaving the stack unable to ever finish deleting the resource.
    async fn remove(&self, physical_id: &str) -> Result<(String, String), Failure> {
        let Some(registered) = Registered::from_physical_id(physical_id) else {
            return Ok((physical_id.to_owned(), "nothing was registered".into()));
        };
        let registrar = match self.registrars.registrar(registered.provider).await {
            Ok(registrar) => registrar,
            Err(error @ (RegistrationError::Unconfigured { .. } | RegistrationError::Unsupported(_))) => {
                let reason = format!(
                    "{physical_id} was left registered: {}; remove it in the provider's dashboard if it should go",
                    explain(&error)
                );
                tracing::warn!(physical_id, reason = %reason, "registration not removed");
                return Ok((physical_id.to_owned(), reason));
            }
            Err(other) => return Err(other.into()),
        };
        registrar.remove(&registered).await?;
        Ok((physical_id.to_owned(), format!("{physical_id} is removed")))
    }

    /// PUTs the answer with an empty `Content-Type`: the URL is pre-signed
    /// for exactly that. The URL itself is never logged (it grants the write).
    async fn send(&self, url: &str, response: &Response) -> Result<(), CustomResourceError> {
        let body = serde_json::to_vec(response).map_err(CustomResourceError::Unserializable)?;
        let mut attempt = 1;
        loop {
            let sent = self.http.put(url).header(http::header::CONTENT_TYPE, "").body(body.clone()).send().await;
            let error = match sent {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) => CustomResourceError::Refused(answer.status().as_u16()),
                Err(error) => CustomResourceError::Unsent(error.without_url()),
            };
            if attempt == RESPONSE_ATTEMPTS {
                return Err(error);
            }
            tracing::warn!(attempt, error = %explain(&error), "answer to CloudFormation not sent; retrying");
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            attempt += 1;
        }
    }
}

/// The register function's Lambda handler: the invocation's deadline bounds
/// the work, so an answer is always sent in time.
pub async fn lambda(
    resources: &CustomResources,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<(), lambda_runtime::Error> {
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let time_left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    match resources.handle(event.payload, time_left).await {
        Ok(_) => Ok(()),
        Err(error) => {
            tracing::error!(error = %explain(&error), "custom resource request not answered");
            Err(error.into())
        }
    }
}

//! Every AWS call a function's code makes, caught on the wire: an HTTP
//! client for the SDK that notes each request's operation (`x-amz-target`)
//! and JSON body before sending it on. DynamoDB, SQS and Secrets Manager
//! all speak JSON with a target header, so one reader serves the three.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use serde_json::Value;

/// One request: its service and operation (`DynamoDB_20120810.PutItem`,
/// `AmazonSQS.SendMessage`, `secretsmanager.GetSecretValue`) and body.
#[derive(Debug, Clone)]
pub struct Call {
    pub target: String,
    pub body: Value,
}

impl Call {
    pub fn operation(&self) -> &str {
        self.target.rsplit('.').next().unwrap_or_default()
    }

    pub fn service(&self) -> &str {
        self.target.split('.').next().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<Call>>>);

impl Calls {
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }

    fn push(&self, call: Call) {
        self.0.lock().expect("lock").push(call);
    }
}

/// Wraps the SDK's own HTTP client.
#[derive(Debug, Clone)]
pub struct Recording {
    inner: SharedHttpClient,
    calls: Calls,
}

impl Recording {
    pub fn new(inner: SharedHttpClient, calls: Calls) -> Self {
        Self { inner, calls }
    }
}

impl HttpClient for Recording {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(RecordingConnector {
            inner: self.inner.http_connector(settings, components),
            calls: self.calls.clone(),
        })
    }
}

#[derive(Debug)]
struct RecordingConnector {
    inner: SharedHttpConnector,
    calls: Calls,
}

impl HttpConnector for RecordingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if let Some(target) = request.headers().get("x-amz-target") {
            let body =
                request.body().bytes().and_then(|bytes| serde_json::from_slice(bytes).ok()).unwrap_or(Value::Null);
            self.calls.push(Call { target: target.to_owned(), body });
        }
        self.inner.call(request)
    }
}

//! Maps an HTTP request onto [`Ingest`] and its result onto a status and a
//! JSON body. Error bodies are `{"error": code, "message": text}` and never
//! quote the payload or a secret.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::event::Provider;
use crate::ingest::{Ingest, IngestError};
use crate::providers::Inbound;

/// A status and a JSON body, independent of the HTTP library serving it.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonResponse {
    pub status: StatusCode,
    pub body: Value,
}

impl JsonResponse {
    pub fn ok(body: Value) -> Self {
        Self { status: StatusCode::OK, body }
    }

    pub fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Self {
        Self { status, body: json!({"error": code, "message": message.to_string()}) }
    }

    pub fn not_found(what: &str) -> Self {
        Self::error(StatusCode::NOT_FOUND, "not_found", format!("no {what} here"))
    }
}

/// Handles `POST /webhooks/{provider}[/{token}]` with the raw body as
/// received (already base64-decoded when API Gateway encoded it).
pub async fn webhook(ingest: &Ingest, method: &Method, provider: &str, inbound: &Inbound<'_>) -> JsonResponse {
    let Ok(provider) = provider.parse::<Provider>() else {
        return JsonResponse::error(StatusCode::NOT_FOUND, "unknown_provider", "no webhook route for this provider");
    };
    if method != Method::POST {
        return JsonResponse::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "webhooks are delivered with POST",
        );
    }
    match ingest.ingest(provider, inbound).await {
        Ok(outcome) => JsonResponse::ok(json!({"status": outcome.as_str()})),
        Err(error) => error_response(&error),
    }
}

fn error_response(error: &IngestError) -> JsonResponse {
    match error {
        IngestError::Rejected(rejection) => JsonResponse::error(
            StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST),
            rejection.code(),
            rejection,
        ),
        IngestError::PayloadTooLarge { .. } => {
            JsonResponse::error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", error)
        }
        IngestError::UnknownProvider => JsonResponse::error(StatusCode::NOT_FOUND, "unknown_provider", error),
        IngestError::InProgress => JsonResponse::error(StatusCode::SERVICE_UNAVAILABLE, "in_progress", error),
        // The cause goes to the log, not to the caller.
        IngestError::Store(_) | IngestError::Queue(_) => JsonResponse::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the event could not be recorded; retry later",
        ),
    }
}

/// The Lambda handler of one provider's ingest function.
pub async fn lambda(
    ingest: &Ingest,
    provider: Provider,
    request: lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>, std::convert::Infallible> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    let source_ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
        _ => None,
    };
    let path_parameters = request.path_parameters();
    let inbound = Inbound {
        headers: request.headers(),
        // lambda_http hands the body over as received, base64-decoded when
        // API Gateway set `isBase64Encoded`: exactly the bytes the provider signed.
        body: request.body().as_ref(),
        source_ip,
        path_token: path_parameters.first("token"),
    };
    let response = webhook(ingest, request.method(), provider.as_str(), &inbound).await;
    Ok(to_lambda(response))
}

/// The admin function's edge: any `/admin/...` route behind API Gateway's
/// IAM authorization.
pub async fn lambda_admin(
    admin: &crate::edge::admin::Admin,
    request: lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>, std::convert::Infallible> {
    let response = admin.handle(request.method(), request.uri().path(), request.body().as_ref()).await;
    Ok(to_lambda(response))
}

pub fn to_lambda(response: JsonResponse) -> lambda_http::Response<lambda_http::Body> {
    let mut out = lambda_http::Response::new(lambda_http::Body::Text(response.body.to_string()));
    *out.status_mut() = response.status;
    out.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    out
}

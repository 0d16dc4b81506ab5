//! What the providers' API clients share (confirmers, registrars, Lago's
//! key, the provisioner): one HTTP client with short timeouts, and one
//! error for a provider API that could not be asked.

use std::time::Duration;

use crate::ports::EffectError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request to {api} failed")]
    Request {
        api: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{api} answered HTTP {status}")]
    Status { api: &'static str, status: u16 },
    #[error("{api} answered with a body that is not what its documentation describes")]
    Body { api: &'static str },
}

impl From<ApiError> for EffectError {
    /// An API that cannot be asked now may be asked later: retried with backoff.
    fn from(error: ApiError) -> Self {
        EffectError::Transient(Box::new(error))
    }
}

/// A client with timeouts short enough that a stuck API cannot hold a
/// processor invocation until Lambda kills it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// GETs `url` and reads the JSON body; `Ok(None)` for a 404.
pub async fn get_json(
    api: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<Option<serde_json::Value>, ApiError> {
    let response = request.send().await.map_err(|source| ApiError::Request { api, source })?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(ApiError::Status { api, status: status.as_u16() });
    }
    response.json().await.map(Some).map_err(|_| ApiError::Body { api })
}

//! Provider callbacks registered exactly once (I11), at deploy time and
//! never at start-up: a [`Registrar`] per provider API reads what is
//! registered, writes only what differs, removes the duplicates it finds,
//! and can remove what it registered. [`Locked`] serializes registrars
//! across concurrent deploys with a [`crate::ports::Lock`].
//!
//! The registrars live with their providers (Kill Bill's
//! `PUSH_NOTIFICATION_CB`, one value per tenant, in
//! [`crate::providers::killbill`]; Stripe's webhook endpoints, one per URL,
//! in [`crate::providers::stripe`]); [`locked`] is the lock around any
//! registrar.

pub mod locked;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::event::Provider;
use crate::ports::StoreError;
use crate::secret::Secret;
use crate::settings::ConfigError;

pub use locked::{LockSettings, Locked};

/// The callback a provider should call: a URL and, where the provider lets
/// a callback choose, the event types it wants.
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    url: String,
    events: Vec<String>,
}

impl Callback {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), events: Vec::new() }
    }

    pub fn with_events(mut self, events: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.events = events.into_iter().map(Into::into).collect();
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn events(&self) -> &[String] {
        &self.events
    }
}

/// The URL may end with a secret token (Kill Bill's route), so it is never
/// printed.
impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback").field("url", &"[redacted]").field("events", &self.events).finish()
    }
}

/// What a registrar registered: enough to find it again and remove it, and
/// nothing secret, since it becomes the custom resource's physical id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub provider: Provider,
    /// Kill Bill: a digest of the callback URL (which holds the token);
    /// Stripe: the webhook endpoint's id.
    pub id: String,
}

impl Registered {
    /// `{provider}:{id}`, e.g. `stripe:we_123` or `killbill:sha256:0a1b…`.
    pub fn physical_id(&self) -> String {
        format!("{}:{}", self.provider, self.id)
    }

    /// Reads a physical id written by [`Registered::physical_id`]; `None` for
    /// anything else (such as the placeholder of a failed create).
    pub fn from_physical_id(physical_id: &str) -> Option<Self> {
        let (provider, id) = physical_id.split_once(':')?;
        let provider = provider.parse().ok()?;
        (!id.is_empty()).then(|| Self { provider, id: id.to_owned() })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{api} could not be reached to {action}: {why}")]
    Unreachable {
        api: &'static str,
        action: String,
        why: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{api} answered HTTP {status} to {action}{detail}")]
    Refused {
        api: &'static str,
        action: String,
        status: u16,
        /// The provider's own explanation, prefixed with ": ", when it gives
        /// one that cannot hold a secret.
        detail: String,
    },
    #[error("{api} answered {action} with a body that is not what its documentation describes")]
    Unreadable { api: &'static str, action: String },
    #[error("{api} does not list exactly the registered callback after registering it ({found} listed)")]
    NotVerified { api: &'static str, found: usize },
    #[error("another deploy held the registration lock {name} for more than {waited:?}; nothing was changed")]
    LockTimeout { name: String, waited: std::time::Duration },
    #[error("the registration lock {name} could not be taken")]
    Lock {
        name: String,
        #[source]
        source: StoreError,
    },
    #[error("payhooks registers no {0} callbacks (only killbill and stripe)")]
    Unsupported(Provider),
    #[error("{provider} callbacks cannot be registered: the function is not configured for it")]
    Unconfigured {
        provider: Provider,
        #[source]
        source: ConfigError,
    },
}

/// Makes sure a provider calls one callback, once.
#[async_trait]
pub trait Registrar: Send + Sync + fmt::Debug {
    /// Leaves exactly one registration of `desired`, creating or correcting
    /// it only when what is registered differs, and removing duplicates.
    async fn ensure(&self, desired: &Callback) -> Result<Registered, RegistrationError>;

    /// Removes `registered` if it is still there; leaves every other
    /// callback alone.
    async fn remove(&self, registered: &Registered) -> Result<(), RegistrationError>;
}

/// The registrars of a deployment, built when asked so that credentials
/// and tokens are read at each deploy, not at start-up.
#[async_trait]
pub trait Registrars: Send + Sync + fmt::Debug {
    async fn registrar(&self, provider: Provider) -> Result<Arc<dyn Registrar>, RegistrationError>;

    /// The secret last path segment of `provider`'s callback URL, when its
    /// route has one (Kill Bill's token), so the template never holds it.
    async fn url_token(&self, provider: Provider) -> Result<Option<Secret>, RegistrationError>;
}

/// Sends `request`, turning transport failures and non-2xx answers into
/// errors that name the API and the action, and never the URL (Kill Bill's
/// carries the token). `detail` reads a provider's error body when it is
/// safe to quote.
pub(crate) async fn send(
    api: &'static str,
    action: impl Into<String>,
    request: reqwest::RequestBuilder,
    detail: fn(&[u8]) -> Option<String>,
) -> Result<reqwest::Response, RegistrationError> {
    let action = action.into();
    let response = match request.send().await {
        Ok(response) => response,
        Err(source) => {
            let why = if source.is_timeout() {
                "it timed out"
            } else if source.is_connect() {
                "the connection failed"
            } else {
                "the request failed"
            };
            return Err(RegistrationError::Unreachable { api, action, why, source: source.without_url() });
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(RegistrationError::Refused {
        api,
        action,
        status: status.as_u16(),
        detail: detail(&body).map(|d| format!(": {d}")).unwrap_or_default(),
    })
}

/// Reads a JSON answer as `T`.
pub(crate) async fn read<T: serde::de::DeserializeOwned>(
    api: &'static str,
    action: &str,
    response: reqwest::Response,
) -> Result<T, RegistrationError> {
    response.json().await.map_err(|_| RegistrationError::Unreadable { api, action: action.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_physical_id_round_trips_and_anything_else_is_not_a_registration() {
        let registered = Registered { provider: Provider::Stripe, id: "we_123".into() };
        assert_eq!(registered.physical_id(), "stripe:we_123");
        assert_eq!(Registered::from_physical_id("stripe:we_123"), Some(registered));
        for other in ["", "stripe:", "nobody:x", "KillbillCallbackRegistration-not-registered"] {
            assert_eq!(Registered::from_physical_id(other), None, "{other}");
        }
    }

    #[test]
    fn a_callbacks_debug_output_hides_its_url() {
        let printed = format!("{:?}", Callback::new("https://example.test/webhooks/killbill/kb-token-test"));
        assert!(!printed.contains("kb-token-test"), "{printed}");
    }
}

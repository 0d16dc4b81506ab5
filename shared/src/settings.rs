//! Reading settings: a lookup from a name to its value. In Lambda that is
//! the process environment; in tests a map, so every setting is read
//! without touching the process environment, and the template contract
//! test can record which names each function asks for. Secrets are named
//! here ([`SecretSource`]) and read through the [`SecretStore`] port when a
//! function is built.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::ports::{SecretStore, SecretsError};
use crate::secret::{Secret, SecretSet};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(String),
    #[error("environment variable {name} must be {expected}")]
    Invalid { name: String, expected: &'static str },
    #[error("neither {0}_ARN nor {0} is set")]
    NoSecret(String),
    #[error("{0} holds no secret")]
    EmptySecret(String),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(
        "Lago needs LAGO_WEBHOOK_SECRET[_ARN] (hmac) or LAGO_PUBLIC_KEY / LAGO_API_URL with LAGO_API_KEY[_ARN] (jwt)"
    )]
    NoLagoVerification,
    /// A feature is asked of a function whose settings do not turn it on.
    #[error("{0} is not configured")]
    NotConfigured(String),
    /// The local server could not set a provider up.
    #[error("{0}")]
    Local(String),
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + Send + Sync + 'a;

/// A source of settings by name.
pub struct Env<'a> {
    lookup: Box<Lookup<'a>>,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env")
    }
}

impl Env<'static> {
    /// The process environment.
    pub fn process() -> Self {
        Self::from_fn(|name| std::env::var(name).ok())
    }

    /// A fixed set of names and values.
    pub fn from_pairs<'p>(pairs: impl IntoIterator<Item = (&'p str, &'p str)>) -> Self {
        let map: HashMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Self::from_fn(move |name| map.get(name).cloned())
    }
}

impl<'a> Env<'a> {
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'a) -> Self {
        Self { lookup: Box::new(lookup) }
    }

    /// A setting's value; blank counts as unset (CloudFormation passes an
    /// empty parameter as an empty string).
    pub fn var(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.var(name).ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    /// A whole number, `default` when unset.
    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        self.parsed(name, default, "a whole number")
    }

    /// A value parsed by its type's `FromStr`, `default` when unset.
    pub fn parsed<T: FromStr>(&self, name: &str, default: T, expected: &'static str) -> Result<T, ConfigError> {
        match self.var(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid { name: name.to_owned(), expected }),
        }
    }

    /// A secret named `name`: in Secrets Manager when `{name}_ARN` is set,
    /// else the variable itself (the local server, tests).
    pub fn secret(&self, name: &str) -> Option<SecretSource> {
        if let Some(arn) = self.var(&format!("{name}_ARN")) {
            return Some(SecretSource::Arn(arn.trim().to_owned()));
        }
        self.var(name).map(|value| SecretSource::Value(Secret::new(value)))
    }

    pub fn required_secret(&self, name: &str) -> Result<SecretSource, ConfigError> {
        self.secret(name).ok_or_else(|| ConfigError::NoSecret(name.to_owned()))
    }
}

/// Where a secret is: named by an ARN, fetched once per cold start, or given
/// as a value. `Debug` never shows a value.
#[derive(Clone)]
pub enum SecretSource {
    Arn(String),
    Value(Secret),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Arn(arn) => write!(f, "SecretSource::Arn({arn})"),
            SecretSource::Value(_) => f.write_str("SecretSource::Value([redacted])"),
        }
    }
}

impl SecretSource {
    /// The secret's string as stored (a key, a token list, a JSON document).
    pub async fn read(&self, secrets: &dyn SecretStore) -> Result<Secret, ConfigError> {
        match self {
            SecretSource::Arn(arn) => Ok(Secret::new(secrets.secret_string(arn).await?)),
            SecretSource::Value(value) => Ok(value.clone()),
        }
    }

    /// The secret as text, trimmed (a key pasted with a newline).
    pub async fn read_trimmed(&self, secrets: &dyn SecretStore) -> Result<Secret, ConfigError> {
        let value = self.read(secrets).await?;
        Ok(Secret::new(String::from_utf8_lossy(value.expose()).trim()))
    }

    /// One secret, or several separated by commas while it is rotated.
    pub async fn read_set(&self, secrets: &dyn SecretStore, name: &str) -> Result<SecretSet, ConfigError> {
        let value = self.read(secrets).await?;
        let empty = || match self {
            SecretSource::Arn(arn) => ConfigError::EmptySecret(format!("{name} (secret {arn})")),
            SecretSource::Value(_) => ConfigError::EmptySecret(name.to_owned()),
        };
        SecretSet::from_comma_separated(&String::from_utf8_lossy(value.expose())).map_err(|_| empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let env = Env::from_pairs([("A", "  "), ("B", "x")]);
        assert_eq!(env.var("A"), None);
        assert_eq!(env.var("B").as_deref(), Some("x"));
        assert!(matches!(env.required("A"), Err(ConfigError::Missing(name)) if name == "A"));
    }

    #[test]
    fn numbers_default_when_unset_and_refuse_what_is_not_one() {
        let env = Env::from_pairs([("N", " 42 "), ("BAD", "4x")]);
        assert_eq!(env.number("N", 1u32).ok(), Some(42));
        assert_eq!(env.number("UNSET", 7u32).ok(), Some(7));
        assert!(matches!(env.number("BAD", 1u32), Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn a_secret_is_named_by_its_arn_before_its_value() {
        let env =
            Env::from_pairs([("S_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf"), ("S", "v")]);
        assert!(matches!(env.secret("S"), Some(SecretSource::Arn(arn)) if arn.ends_with("s-AbCdEf")));
        let env = Env::from_pairs([("S", "v")]);
        assert!(matches!(env.secret("S"), Some(SecretSource::Value(_))));
        assert!(matches!(env.required_secret("T"), Err(ConfigError::NoSecret(name)) if name == "T"));
    }

    #[test]
    fn a_secret_value_never_shows_in_debug() {
        let env = Env::from_pairs([("S", "very-secret")]);
        let shown = format!("{:?}", env.secret("S"));
        assert!(!shown.contains("very-secret"), "{shown}");
    }
}

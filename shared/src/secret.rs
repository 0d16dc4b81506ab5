//! Signing secrets, kept out of logs and error messages (I12).

use std::fmt;

use subtle::ConstantTimeEq;

/// One secret. `Debug` and `Display` print `[redacted]` so a stray `{:?}` in a
/// log line can never leak it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes, for keying a MAC or a constant-time comparison.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Constant-time equality with a presented value (for schemes where the
    /// header *is* the shared secret).
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Every secret that is currently accepted for one provider. Several are
/// active while a secret is rotated, so deliveries signed with either the old
/// or the new one keep verifying.
#[derive(Clone, Debug)]
pub struct SecretSet(Vec<Secret>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no signing secret configured (the value was empty)")]
pub struct EmptySecretSet;

impl SecretSet {
    pub fn new(secrets: Vec<Secret>) -> Result<Self, EmptySecretSet> {
        if secrets.is_empty() {
            return Err(EmptySecretSet);
        }
        Ok(Self(secrets))
    }

    /// Parses a comma-separated list, the form used by environment variables
    /// and by the Secrets Manager secret during a rotation.
    pub fn from_comma_separated(value: &str) -> Result<Self, EmptySecretSet> {
        Self::new(value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Secret> {
        self.0.iter()
    }

    /// The secret new signatures are made with (the first one listed).
    pub fn primary(&self) -> &Secret {
        &self.0[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let set = SecretSet::from_comma_separated("s3cr3t-one, s3cr3t-two").unwrap();
        let printed = format!("{set:?} {:?}", set.primary());
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert_eq!(set.iter().count(), 2);
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert_eq!(SecretSet::from_comma_separated(" , ").unwrap_err(), EmptySecretSet);
    }

    #[test]
    fn matches_compares_whole_values() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b"abcd"));
    }
}

//! Logging set-up. Log lines carry the provider, the event id and the state
//! as fields; never a secret or a payload.
//!
//! In Lambda the level (`PAYHOOKS_LOG_LEVEL`, the template's `LogLevel`)
//! applies to payhooks' own lines only. The libraries underneath (the AWS
//! SDK, the HTTP stack, the Lambda runtime) log warnings and errors only,
//! whatever the level: their debug and trace lines can hold a raw request
//! (a Kill Bill token in the path, a Flutterwave `verif-hash`, signatures,
//! payloads). Lambda itself is told to pass every line (the template's
//! `ApplicationLogLevel: TRACE`), because it files a JSON line without a
//! `level` under INFO and a metric line has none: at WARN it would drop
//! every metric, and every alarm built on them would go silent.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::settings::{ConfigError, Env};

pub const LOG_LEVEL: &str = "PAYHOOKS_LOG_LEVEL";

/// The library crate's target prefix: payhooks' own lines.
const OWN_TARGET: &str = "payhooks";

/// The level of payhooks' own lines: one of Lambda's level names (`TRACE`,
/// `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`, which is `ERROR` here), INFO
/// when unset.
pub fn log_level(env: &Env) -> Result<LevelFilter, ConfigError> {
    let Some(value) = env.var(LOG_LEVEL) else {
        return Ok(LevelFilter::INFO);
    };
    match value.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Ok(LevelFilter::TRACE),
        "DEBUG" => Ok(LevelFilter::DEBUG),
        "INFO" => Ok(LevelFilter::INFO),
        "WARN" => Ok(LevelFilter::WARN),
        "ERROR" | "FATAL" => Ok(LevelFilter::ERROR),
        _ => Err(ConfigError::Invalid {
            name: LOG_LEVEL.to_owned(),
            expected: "one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL",
        }),
    }
}

/// What a Lambda function logs at `level`: its own lines at that level, the
/// libraries' at WARN (or the level, if quieter).
pub fn lambda_filter(level: LevelFilter) -> Targets {
    Targets::new().with_default(level.min(LevelFilter::WARN)).with_target(OWN_TARGET, level)
}

/// The Lambda subscriber writing to `writer`: JSON lines, as the template's
/// `LogFormat: JSON` expects, without a time (Lambda stamps each line).
pub fn lambda_subscriber<W>(level: LevelFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let format = tracing_subscriber::fmt::layer().json().with_target(false).without_time().with_writer(writer);
    tracing_subscriber::registry().with(format).with(lambda_filter(level))
}

/// In Lambda: the subscriber on stdout at `PAYHOOKS_LOG_LEVEL`. A level it
/// cannot read is logged and INFO is used, so the function still starts.
pub fn init_lambda(env: &Env) {
    let (level, invalid) = match log_level(env) {
        Ok(level) => (level, None),
        Err(error) => (LevelFilter::INFO, Some(error)),
    };
    let _ = tracing::subscriber::set_global_default(lambda_subscriber(level, std::io::stdout));
    if let Some(error) = invalid {
        tracing::error!(error = %error, "logging at INFO");
    }
}

/// For the local server: readable lines, `RUST_LOG` to filter (default info).
pub fn init_local() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_the_template_allows_is_read() {
        for (name, level) in [
            ("TRACE", LevelFilter::TRACE),
            ("DEBUG", LevelFilter::DEBUG),
            ("INFO", LevelFilter::INFO),
            ("WARN", LevelFilter::WARN),
            ("ERROR", LevelFilter::ERROR),
            ("FATAL", LevelFilter::ERROR),
        ] {
            assert_eq!(log_level(&Env::from_pairs([(LOG_LEVEL, name)])).ok(), Some(level), "{name}");
        }
        assert_eq!(log_level(&Env::from_pairs([])).ok(), Some(LevelFilter::INFO));
        assert!(log_level(&Env::from_pairs([(LOG_LEVEL, "LOUD")])).is_err());
    }

    #[test]
    fn libraries_never_log_below_warn() {
        for level in [LevelFilter::TRACE, LevelFilter::DEBUG, LevelFilter::INFO] {
            let filter = lambda_filter(level);
            assert!(filter.would_enable("payhooks::ingest", &tracing::Level::DEBUG) == (level >= LevelFilter::DEBUG));
            for library in ["aws_smithy_runtime", "hyper", "lambda_runtime", "reqwest"] {
                assert!(!filter.would_enable(library, &tracing::Level::INFO), "{library} at {level}");
                assert!(filter.would_enable(library, &tracing::Level::WARN), "{library} at {level}");
            }
        }
        let quiet = lambda_filter(LevelFilter::ERROR);
        assert!(!quiet.would_enable("hyper", &tracing::Level::WARN));
        assert!(!quiet.would_enable("payhooks::process", &tracing::Level::WARN));
    }
}

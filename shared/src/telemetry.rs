//! Logging set-up. Log lines carry the provider, the event id and the state
//! as fields; never a secret or a payload.

use tracing_subscriber::EnvFilter;

/// In Lambda: the runtime's subscriber, which follows the function's log
/// format (JSON in `template.yaml`) and level.
pub fn init_lambda() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// For the local server: readable lines, `RUST_LOG` to filter (default info).
pub fn init_local() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

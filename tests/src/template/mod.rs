//! `template.yaml` as CloudFormation receives it: transformed by SAM's own
//! translator (PyPI `aws-sam-translator`, pinned with the SAM CLI in
//! `scripts/sam-tools.sh`), then evaluated for a set of parameters
//! ([`Stack`]). The template contract test holds it to the code: each
//! function's environment, each role's actions, each alarm's metric.

pub mod iam;
pub mod recorder;
pub mod stack;

use std::sync::OnceLock;

use serde_json::Value;

pub use stack::{Physical, Resource, Stack};

/// The Python of the SAM venv; `scripts/test.sh` sets it.
pub const SAM_PYTHON: &str = "PAYHOOKS_SAM_PYTHON";

fn repo_path(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// The transformed template, or `None` (after saying so) when the SAM venv
/// is not configured and the test script does not require it.
pub fn transformed() -> Option<&'static Value> {
    static TRANSFORMED: OnceLock<Option<Value>> = OnceLock::new();
    TRANSFORMED
        .get_or_init(|| {
            let Some(python) = std::env::var_os(SAM_PYTHON) else {
                assert!(
                    std::env::var_os(crate::backend::REQUIRE_EMULATORS).is_none(),
                    "{SAM_PYTHON} is not set: run the suite with scripts/test.sh"
                );
                eprintln!("{SAM_PYTHON} not set: skipping the template contract (run scripts/test.sh)");
                return None;
            };
            let output = std::process::Command::new(python)
                .arg(repo_path("tests/template/transform.py"))
                .arg(repo_path("template.yaml"))
                .output()
                .expect("run the SAM translator");
            assert!(
                output.status.success(),
                "SAM's translator refused template.yaml:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            Some(serde_json::from_slice(&output.stdout).expect("the translator prints JSON"))
        })
        .as_ref()
}

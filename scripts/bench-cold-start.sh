#!/usr/bin/env bash
# Cold start of each function, next to the equivalent Python handler
# (Stripe's SDK, Powertools' idempotency, boto3) on the same local Lambda
# Runtime API and the same emulators; and the AWS calls per accepted webhook
# and per duplicate of that handler.
#
#   scripts/bench-cold-start.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO_ROOT/scripts/pinned-venv.sh"
TOOLS="${PAYHOOKS_TOOLS_DIR:-$HOME/.cache/payhooks-tools}"
PY_SPECS=('aws-lambda-powertools==3.37.0' 'stripe==16.1.0' 'boto3==1.44.5' 'awslambdaric==4.2.2')
VENV="$TOOLS/powertools-venv"
cd "$REPO_ROOT"

pinned_venv "$VENV" "${PY_SPECS[@]}"

cargo build --release -p payhooks-fn-stripe -p payhooks-fn-processor \
    -p payhooks-fn-sweeper -p payhooks-fn-reconciler -p payhooks-fn-admin
PAYHOOKS_POWERTOOLS_PYTHON="$VENV/bin/python" \
    PAYHOOKS_RUN='cargo bench -q -p payhooks-tests --bench cold_start' bash scripts/test.sh

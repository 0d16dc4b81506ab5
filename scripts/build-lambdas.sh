#!/usr/bin/env bash
# Builds every function's deployable zip (release, arm64) with cargo-lambda,
# as `sam build` does, so a function that cannot be packaged never lands.
#
#   scripts/build-lambdas.sh          zips in $CARGO_TARGET_DIR/lambda/<bin>/bootstrap.zip
#
# Installs the pinned cargo-lambda and ziglang (PyPI) into a venv in the tool
# cache ($PAYHOOKS_TOOLS_DIR, default ~/.cache/payhooks-tools) and the
# aarch64 Rust target if rustup lacks it; prints each zip's size.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO_ROOT/scripts/pinned-venv.sh"
TOOLS="${PAYHOOKS_TOOLS_DIR:-$HOME/.cache/payhooks-tools}"
SPECS=('cargo-lambda==1.9.2' 'ziglang==0.17.1')
VENV="$TOOLS/lambda-venv"

say() { printf '==> %s\n' "$*"; }

mkdir -p "$TOOLS"
pinned_venv "$VENV" "${SPECS[@]}"
export PATH="$VENV/bin:$PATH"

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    say "adding the aarch64-unknown-linux-gnu target"
    rustup target add aarch64-unknown-linux-gnu
fi

cd "$REPO_ROOT"
packages=()
binaries=()
for manifest in functions/*/Cargo.toml; do
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n 1)")
    binaries+=("$(awk '/^\[\[bin\]\]/ { bin = 1 } bin && /^name = / { gsub(/"/, "", $3); print $3; exit }' "$manifest")")
done
target_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
say "cargo lambda build --release --arm64 --output-format zip (${#binaries[@]} functions)"
start=$(date +%s)
cargo lambda build --release --arm64 --output-format zip "${packages[@]}"
echo "    built in $(( $(date +%s) - start )) s"
for bin in "${binaries[@]}"; do
    zip="$target_dir/lambda/$bin/bootstrap.zip"
    [[ -s "$zip" ]] || { echo "error: $zip was not built" >&2; exit 1; }
    printf '    %-20s %8d bytes\n' "$bin" "$(stat -c %s "$zip")"
done

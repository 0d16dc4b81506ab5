#!/usr/bin/env bash
# Verify + parse, side by side with what users would otherwise run, on the
# same events: for Stripe, payhooks (criterion) and Stripe's own libraries
# (npm stripe, as the test script pins it, and PyPI stripe, pinned here);
# for Lago, payhooks and the check Lago documents (PyJWT against the public
# key for JWT signatures, the standard library for HMAC). Prints tables
# with the ratios.
#
#   scripts/bench-sdks.sh
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO_ROOT/scripts/pinned-venv.sh"
TOOLS="${PAYHOOKS_TOOLS_DIR:-$HOME/.cache/payhooks-tools}"
PY_SPECS=('stripe==16.1.0' 'PyJWT==2.15.1' 'cryptography==50.0.2')
VENV="$TOOLS/sdk-bench-venv"
cd "$REPO_ROOT"

# npm stripe: installed (and pinned) by the test script.
PAYHOOKS_SKIP_CARGO=1 bash scripts/test.sh >/dev/null
pinned_venv "$VENV" "${PY_SPECS[@]}"

cargo bench -q -p payhooks --bench verify -- 'stripe_verify_and_parse|lago_verify_and_parse' >/dev/null
target="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
node_lines="$(NODE_PATH="$TOOLS/stripe-node/node_modules" node tests/stripe_sdk/bench.js)"
python_lines="$("$VENV/bin/python" tests/stripe_sdk/bench.py)"
lago_lines="$("$VENV/bin/python" tests/lago_jwt/bench.py)"

python3 - "$target" "$node_lines" "$python_lines" "$lago_lines" <<'PY'
import json, sys
target, node, python, lago = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
per = lambda text: {d["size"]: d["ns_per_op"] for d in map(json.loads, text.splitlines())}
node, python = per(node), per(python)
print(f"{'event':>8}  {'payhooks':>10}  {'stripe-node':>12}  {'ratio':>6}  {'stripe-python':>14}  {'ratio':>6}")
for size in (1024, 4096, 65536):
    with open(f"{target}/criterion/stripe_verify_and_parse/{size}/new/estimates.json") as f:
        ours = json.load(f)["mean"]["point_estimate"]
    print(f"{size:>7}B  {ours/1000:>8.2f}µs  {node[size]/1000:>10.2f}µs  {node[size]/ours:>5.1f}x"
          f"  {python[size]/1000:>12.2f}µs  {python[size]/ours:>5.1f}x")
print()
print(f"{'lago':>8}  {'payhooks':>10}  {'python':>12}  {'ratio':>6}")
for line in lago.splitlines():
    d = json.loads(line)
    with open(f"{target}/criterion/lago_verify_and_parse/{d['mode']}/{d['size']}/new/estimates.json") as f:
        ours = json.load(f)["mean"]["point_estimate"]
    theirs = "PyJWT" if d["mode"] == "jwt" else "hmac"
    print(f"{d['mode']:>8}  {ours/1000:>8.2f}µs  {d['ns_per_op']/1000:>10.2f}µs  {d['ns_per_op']/ours:>5.1f}x  ({theirs}, {d['size']} B)")
PY

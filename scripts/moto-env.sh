# Sourced by scripts/demo and scripts/test: installs the pinned moto into .venv (once) and
# points the test harness at it. moto is our AWS in tests and in the demo.
MOTO_VERSION="5.2.1"
# CBOR for the lab's translation of CloudWatch's Smithy RPC v2 CBOR protocol (aws_fidelity.py).
CBOR2_VERSION="6.2.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

ensure_moto() {
  if [ -x "$VENV/bin/moto_server" ] &&
     "$VENV/bin/python" -c "import moto, sys, importlib.metadata as m; sys.exit(moto.__version__ != '$MOTO_VERSION' or m.version('cbor2') != '$CBOR2_VERSION')" 2>/dev/null; then
    :
  else
    echo "==> installing moto[server]==$MOTO_VERSION and cbor2 into $VENV (once, ~20 s)"
    if ! python3 -m venv "$VENV"; then
      echo "error: 'python3 -m venv' failed; install Python 3 with venv support (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "cbor2==$CBOR2_VERSION"
  fi
  export TRAILWARDEN_MOTO_SERVER="$VENV/bin/moto_server"
}

ensure_cargo() {
  if ! command -v cargo >/dev/null; then
    echo "error: cargo not found; install the stable Rust toolchain (https://rustup.rs)" >&2
    exit 1
  fi
}

#!/usr/bin/env bash
# Peer libraries for the benchmarks, in their own virtual environment (never the project's):
# the Axelrod library (IPD tournaments) and ndlib (bounded-confidence opinion models).
#
#   bash benchmarks/peers/setup.sh            # creates ~/.cache/socsim/bench-peers (or $SOCSIM_BENCH_PEERS)
#
# The benchmarks find the environment there and run the peer side as a separate process; without it
# they print socsim's figures alone and say the peer is missing.
set -euo pipefail
VENV="${SOCSIM_BENCH_PEERS:-$HOME/.cache/socsim/bench-peers}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
# six, scikit-learn: ndlib 6.0.1 imports them without declaring them
"$VENV/bin/pip" install -q "axelrod>=4.13" "ndlib>=5.1" six scikit-learn
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
print("bench-peers:", ", ".join(f"{d} {version(d)}" for d in ("axelrod", "ndlib", "networkx", "numpy")))
PY

#!/usr/bin/env bash
# Create .venv in the repository and install the pinned dependencies and the package (idempotent).
# `setup_env.sh cluster` adds the cluster extra (Ray, requirements-cluster.txt), as the tests need.
set -euo pipefail
extra=${1:-}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.dsanet-installed
base=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
with_cluster=$(cat requirements.txt pyproject.toml requirements-cluster.txt | sha256sum | cut -c1-16)
have=$(cat "$stamp" 2>/dev/null || true)
want=$base
[ "$extra" = cluster ] && want=$with_cluster
if [ "$have" != "$want" ] && [ "$have" != "$with_cluster" -o "$extra" = cluster ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  if [ "$extra" = cluster ]; then
    .venv/bin/python -m pip install -q -r requirements-cluster.txt
    .venv/bin/python -m pip install -q --no-deps -e ".[cluster]"
  else
    .venv/bin/python -m pip install -q --no-deps -e .
  fi
  .venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dsanet)" >/dev/null
  echo "$want" > "$stamp"
fi

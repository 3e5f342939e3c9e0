#!/usr/bin/env bash
# The test command: installs what it needs into .venv, then runs the unit tests and the
# notebooks under nbval in the smoke profile.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh cluster   # the tests run the Ray executor on a local Ray
export DSANET_PROFILE=smoke MPLBACKEND=Agg PYTHONHASHSEED=0 OMP_NUM_THREADS=1
.venv/bin/python -m pytest tests "$@"
if ls notebooks/*.ipynb >/dev/null 2>&1; then
  .venv/bin/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks "$@"
fi

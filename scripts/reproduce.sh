#!/usr/bin/env bash
# The main job: install the pinned environment into .venv, then run every notebook (quick profile by
# default) with papermill into reports/ and gather reports/README.md.
#   bash scripts/reproduce.sh                    # all notebooks, quick profile
#   bash scripts/reproduce.sh --only 00,02       # a subset
#   bash scripts/reproduce.sh --profile paper    # another profile (GPU, real data)
#   bash scripts/reproduce.sh --param seeds=3    # a notebook parameter for every notebook
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export MPLBACKEND=Agg PYTHONHASHSEED=0
exec .venv/bin/python -m dsanet reproduce "$@"

#!/usr/bin/env bash
# The main job, offline, on the shipped S&P 500 snapshot: build the default datasets (volatility
# regression, direction classification) and one scaled training set, then say where they are and what
# they hold. Datasets that already exist are reused unless --fresh.
#
#   ./run_local_experiments.sh [--quick] [--fresh] [--multiplier K]
set -euo pipefail
cd "$(dirname "$0")"

quick=0 fresh=0 multiplier=10
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --fresh) fresh=1 ;;
    --multiplier) multiplier=${2:?--multiplier needs a value}; shift ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$quick" = 1 ] && multiplier=2

# shellcheck source=.ci/venv.sh
source .ci/venv.sh
ensure_venv
py=.venv/bin/python
processed=data-pipeline/data/processed
force=()
[ "$fresh" = 1 ] && force=(--force)

for target in volatility direction; do
  if [ "$fresh" = 1 ] || [ ! -f "$processed/gspc-$target/index.json" ]; then
    $py -m etl build --source snapshot --target "$target" --out "$processed/gspc-$target" "${force[@]}"
  fi
done
scaled="$processed/gspc-volatility-x$multiplier"
if [ "$fresh" = 1 ] || [ ! -f "$scaled/index.json" ]; then
  $py data-pipeline/create_large_dataset.py --base "$processed/gspc-volatility" \
    --multiplier "$multiplier" --out "$scaled" "${force[@]}"
fi

echo
echo "== datasets"
for dataset in "$processed/gspc-volatility" "$processed/gspc-direction" "$scaled"; do
  $py -m etl verify "$dataset"
  $py -m etl info "$dataset" | sed -n '1,6p'
done

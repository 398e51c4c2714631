#!/usr/bin/env bash
# The main job, offline, on the shipped S&P 500 snapshot: build the datasets, run the scale test
# (peak memory and time against dataset size, per data mode, under a memory cap), the hyperparameter
# search (the sequential fresh-process baseline, then the fast way: forked workers), the XOR study, and
# write the report (tables and plots). Results that already exist are reused unless --fresh.
#
#   ./run_local_experiments.sh [--quick] [--fresh]
#
#   --quick   a smaller run (under 2 minutes): two dataset sizes, one process per run, 6 trials of 5
#             epochs, the XOR study with 8 epochs
#   --fresh   rebuild datasets and rerun every experiment
set -euo pipefail
cd "$(dirname "$0")"

quick=0 fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --fresh) fresh=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$quick" = 1 ]; then
  multipliers=(1 200) world_sizes=(1) cap=700MiB search=(--trials 6 --epochs 5) xor=(--epochs 8) tag=quick
else
  multipliers=(1 10 50 200 1000) world_sizes=(1 2) cap=2GiB search=() xor=() tag=full
fi

# shellcheck source=.ci/venv.sh
source .ci/venv.sh
ensure_venv
py=.venv/bin/python
processed=data-pipeline/data/processed
results=model/outputs/results/$tag
report=model/outputs/report/$tag
started=$SECONDS
force=()
if [ "$fresh" = 1 ]; then
  force=(--force)
  rm -rf "$results"
fi
mkdir -p "$results"

step() { printf '\n== %s (%ds)\n' "$1" $((SECONDS - started)); }

step "datasets"
for target in volatility direction; do
  if [ "$fresh" = 1 ] || [ ! -f "$processed/gspc-$target/index.json" ]; then
    $py -m etl build --source snapshot --target "$target" --out "$processed/gspc-$target" "${force[@]}"
  fi
done
for k in "${multipliers[@]}"; do
  scaled="$processed/gspc-volatility-x$k"
  if [ "$k" != 1 ] && { [ "$fresh" = 1 ] || [ ! -f "$scaled/index.json" ]; }; then
    $py data-pipeline/create_large_dataset.py --base "$processed/gspc-volatility" --multiplier "$k" \
      --out "$scaled" "${force[@]}"
  fi
done

step "scale test: multipliers ${multipliers[*]}, world sizes ${world_sizes[*]}, cap $cap"
if [ ! -f "$results/scale_test_local.json" ]; then
  $py model/experiments/test_scale_local.py --multipliers "${multipliers[@]}" \
    --world-sizes "${world_sizes[@]}" --memory-cap "$cap" --out "$results/scale_test_local.json"
fi

for executor in "process 1" "workers 2"; do
  read -r kind parallel <<<"$executor"
  step "hyperparameter search: executor $kind, $parallel at once"
  out="$results/hp_search_local_$kind.json"
  if [ ! -f "$out" ] || grep -q '"interrupted": true' "$out"; then
    $py model/experiments/hyperparam_search_local.py --executor "$kind" --parallel "$parallel" \
      "${search[@]}" --out "$out" --runs-dir "model/outputs/search/$tag" --resume
  fi
done

step "XOR study: no hidden layer against one hidden layer"
if [ ! -f "$results/xor_study.json" ]; then
  $py model/experiments/xor_study.py "${xor[@]}" --out "model/outputs/xor/$tag" \
    --results "$results/xor_study.json" --force
fi

step "report"
$py model/experiments/compare_results.py "$results" --out "$report"
printf '\ndone in %ds\nreport: %s/report.md\nplots:  %s/plots/\n' $((SECONDS - started)) "$report" "$report"

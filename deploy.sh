#!/usr/bin/env bash
# Deploy the training stack to the current kubectl context: namespace stock-training, the data and
# outputs volumes, the trainer configs (a ConfigMap from model/configs/) and the data-loader Job, which
# runs the ETL in the cluster. Safe to rerun: everything is applied, nothing is duplicated.
#
#   ./deploy.sh [--dry-run] [--image IMAGE] [--timeout SECONDS]
#
#   --dry-run      render and validate every manifest offline (no cluster needed) and print what would
#                  be applied
#   --image IMAGE  the trainer image (default sp500-trainer:latest, as written in k8s/)
#   --timeout S    how long to wait for the volumes to bind and the data to load (default 1800)
#
# Needs kubectl and a cluster with the Kubeflow training operator v1.9 (the PyTorchJob CRD).
set -euo pipefail
cd "$(dirname "$0")"

namespace=stock-training
default_image=sp500-trainer:latest
image=$default_image dry_run=0 timeout=1800
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --image) image=${2:-}; [ -n "$image" ] || { echo "error: --image needs a value" >&2; exit 2; }; shift ;;
    --timeout) timeout=${2:-}; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ! [[ $image =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]]; then
  echo "error: --image '$image' is not an image reference (registry/name:tag)" >&2; exit 2
fi
if ! [[ $timeout =~ ^[0-9]+$ ]] || [ "$timeout" -lt 1 ]; then
  echo "error: --timeout must be a whole number of seconds >= 1" >&2; exit 2
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "error: kubectl is not installed: see https://kubernetes.io/docs/tasks/tools/" >&2; exit 2
fi
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Render: the kustomization, the PyTorchJobs and the Katib Experiment, all with the chosen image.
with_image() { sed "s|image: ${default_image}\$|image: ${image}|" "$@"; }
if ! kubectl kustomize k8s/ >"$work/kustomized.yaml" 2>"$work/err"; then
  echo "error: kubectl kustomize k8s/ failed: $(head -n 1 "$work/err")" >&2; exit 2
fi
with_image "$work/kustomized.yaml" >"$work/apply.yaml"
with_image k8s/large-dataset-job.yaml >"$work/large-dataset-job.yaml"
"$python" model/experiments/hyperparam_search_cloud.py --katib --image "$image" --render-only "$work/katib" >/dev/null
"$python" model/experiments/hyperparam_search_cloud.py --image "$image" --name hp-dry-run --trials 1 \
  --render-only "$work/trials" >/dev/null
if ! "$python" k8s/validate.py "$work/apply.yaml" "$work/large-dataset-job.yaml" "$work"/katib/*.yaml \
  "$work"/trials/*.yaml >"$work/validated" 2>"$work/err"; then
  cat "$work/err" >&2
  echo "error: the manifests above are invalid: fix k8s/ (nothing was applied)" >&2; exit 2
fi

if [ "$dry_run" = 1 ]; then
  cat "$work/apply.yaml"
  echo "# validated offline:"
  sed 's/^ok /#   /' "$work/validated"
  echo "# would apply (kubectl apply -f): $(grep -c '^kind:' "$work/apply.yaml") objects above, image $image;"
  echo "# then, once the data is loaded: kubectl apply -f k8s/large-dataset-job.yaml, and the cloud search"
  exit 0
fi

if ! kubectl version --request-timeout=15s >/dev/null 2>"$work/err"; then
  echo "error: kubectl cannot reach a cluster ($(grep -v '^$' "$work/err" | tail -n 1)): check your kubeconfig context" >&2
  exit 2
fi
if ! kubectl api-resources --api-group=kubeflow.org -o name 2>/dev/null | grep -qx 'pytorchjobs.kubeflow.org'; then
  echo "error: the PyTorchJob CRD is not installed: install the Kubeflow training operator v1.9 with" \
    "kubectl apply --server-side -k 'github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.0'" >&2
  exit 2
fi

# A Job's pod template cannot change: replace the data loader if it was applied with another image.
current=$(kubectl -n "$namespace" get job data-loader -o jsonpath='{.spec.template.spec.containers[0].image}' \
  2>/dev/null || true)
if [ -n "$current" ] && [ "$current" != "$image" ]; then
  echo "data-loader ran with $current: replacing it"
  kubectl -n "$namespace" delete job data-loader --wait=true
fi
kubectl apply -f "$work/apply.yaml"

echo "waiting for the volumes to bind (up to ${timeout}s)"
if ! kubectl -n "$namespace" wait --for=jsonpath='{.status.phase}'=Bound pvc/training-data pvc/training-outputs \
  --timeout="${timeout}s"; then
  echo "error: the volumes did not bind: the cluster needs a ReadWriteMany storage class (see k8s/storage.yaml;" \
    "kubectl -n $namespace describe pvc)" >&2
  exit 2
fi
echo "loading the data (job/data-loader, up to ${timeout}s)"
if ! kubectl -n "$namespace" wait --for=condition=complete job/data-loader --timeout="${timeout}s"; then
  echo "error: the data loader did not complete: kubectl -n $namespace logs job/data-loader --all-containers" >&2
  exit 2
fi
echo "deployed. Next: kubectl apply -f k8s/large-dataset-job.yaml, or" \
  "python model/experiments/hyperparam_search_cloud.py --image $image"

#!/usr/bin/env bash
# Cluster end-to-end test on kind, for machines with a Docker engine (not part of `make test`).
#
#   e2e/kind-e2e.sh            create the cluster, build, deploy, check, delete the cluster
#   KEEP_CLUSTER=1 e2e/kind-e2e.sh   ... and leave the cluster running for a look around
#
# Needs: docker, kind, kubectl, helm (v3.13+), curl. Steps:
#   1. kind cluster from manifests/kind/cluster.yaml
#   2. build the application and operator images, `kind load` them
#   3. PostgreSQL, Redis, Kafka (manifests/kind/infra.yaml)
#   4. helm install charts/pinstack-operator (CRD + operator), apply the example PinstackStack
#   5. wait for the stack's Ready condition (databases, topics, secrets, migrations)
#   6. helm install charts/pinstack, wait for every Deployment to roll out
#   7. register, log in and create a post through the gateway
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLUSTER="${CLUSTER:-pinstack}"
NAMESPACE="${NAMESPACE:-default}"
APP_VERSION="$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' charts/pinstack/Chart.yaml)"
APP_IMAGE="ghcr.io/pinstack/pinstack:${APP_VERSION}"
OPERATOR_IMAGE="ghcr.io/pinstack/pinstack-operator:${APP_VERSION}"
TIMEOUT="${TIMEOUT:-600s}"

log() { printf '\n==> %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null || { echo "missing: $1 ($2)" >&2; exit 2; }; }
need docker "https://docs.docker.com/engine/install/"
need kind "go install sigs.k8s.io/kind@latest"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need helm "go install helm.sh/helm/v3/cmd/helm@v3.21.4"
need curl "apt-get install curl"
docker info >/dev/null 2>&1 || { echo "the Docker engine is not running" >&2; exit 2; }

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "failed; state of the cluster"
    kubectl get pinstackstacks,pods,jobs -A -o wide || true
    kubectl describe pinstackstack pinstack -n "$NAMESPACE" || true
    kubectl logs -n "$NAMESPACE" deploy/pinstack-operator --tail=100 || true
  fi
  if [ -z "${KEEP_CLUSTER:-}" ]; then
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit "$status"
}
trap cleanup EXIT

log "1. kind cluster $CLUSTER"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config manifests/kind/cluster.yaml --wait 120s
fi
kubectl config use-context "kind-$CLUSTER"

log "2. images $APP_IMAGE and $OPERATOR_IMAGE"
docker build -t "$APP_IMAGE" -f Dockerfile .
docker build -t "$OPERATOR_IMAGE" -f Dockerfile.operator .
kind load docker-image --name "$CLUSTER" "$APP_IMAGE" "$OPERATOR_IMAGE"

log "3. PostgreSQL, Redis, Kafka"
kubectl apply -f manifests/kind/infra.yaml
kubectl -n pinstack-infra rollout status statefulset/postgresql --timeout="$TIMEOUT"
kubectl -n pinstack-infra rollout status deployment/redis --timeout="$TIMEOUT"
kubectl -n pinstack-infra rollout status statefulset/kafka --timeout="$TIMEOUT"

log "4. operator and the example stack"
helm upgrade --install pinstack-operator charts/pinstack-operator \
  --namespace "$NAMESPACE" --set "image.tag=$APP_VERSION" --wait --timeout "$TIMEOUT"
kubectl wait --for=condition=Established crd/pinstackstacks.pinstack.io --timeout=60s
kubectl apply -n "$NAMESPACE" -f manifests/examples/pinstackstack.yaml

log "5. waiting for the stack to be Ready"
kubectl -n "$NAMESPACE" wait pinstackstack/pinstack --for=condition=Ready --timeout="$TIMEOUT"
kubectl -n "$NAMESPACE" get pinstackstack pinstack

log "6. the services"
helm upgrade --install pinstack charts/pinstack --namespace "$NAMESPACE" \
  --values manifests/kind/pinstack-values.yaml --wait --timeout "$TIMEOUT"
for component in auth user post relation notification gateway; do
  kubectl -n "$NAMESPACE" rollout status "deployment/pinstack-$component" --timeout="$TIMEOUT"
done

log "7. smoke test through the gateway"
kubectl -n "$NAMESPACE" port-forward svc/pinstack-gateway 18080:8080 >/dev/null 2>&1 &
FORWARD=$!
trap 'kill $FORWARD 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 30); do curl -fsS http://127.0.0.1:18080/readyz >/dev/null && break; sleep 2; done
BASE=http://127.0.0.1:18080/api/v1
SUFFIX="$(date +%s)"
curl -fsS -X POST "$BASE/auth/register" -H 'Content-Type: application/json' \
  -d "{\"username\":\"e2e$SUFFIX\",\"email\":\"e2e$SUFFIX@example.com\",\"password\":\"Secret-pass-123\"}"
echo
TOKEN="$(curl -fsS -X POST "$BASE/auth/login" -H 'Content-Type: application/json' \
  -d "{\"login\":\"e2e$SUFFIX\",\"password\":\"Secret-pass-123\"}" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print((d.get("data") or d).get("access_token"))')"
curl -fsS -X POST "$BASE/posts" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"title":"hello from kind","content":"e2e"}'
echo
curl -fsS http://127.0.0.1:18080/metrics | grep -q '^pinstack_http_requests_total'
log "kind end-to-end: OK"

#!/usr/bin/env bash
# Validates deploy/ offline, with tools and schemas from the Go module proxy
# only:
#
#   - the Kubernetes manifests, each file and the `kustomize build` output,
#     with kubeconform in strict mode (unknown or misplaced fields are
#     errors) against JSON schemas generated from the OpenAPI document of
#     the Kubernetes release itself (api/openapi-spec/swagger.json in the
#     k8s.io/kubernetes module) by deploy/kubeschema, for the oldest and the
#     newest Kubernetes release the manifests support;
#   - deploy/docker-compose.yml with compose-go, the Compose Specification's
#     reference loader, against the specification's JSON schema.
#
# The compose topology itself is run by a Go test (deploy/compose_test.go,
# part of `make test`).
#
# Usage: scripts/validate-deploy.sh      (make validate-deploy; CI runs it)
# Env:   KUBERNETES_VERSIONS (default "v1.34.4 v1.37.2"),
#        GEOMATCH_CACHE (tools are built once into it; default ~/.cache/geomatch)
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.2
COMPOSE_GO_VERSION=v2.16.2
KUBERNETES_VERSIONS=${KUBERNETES_VERSIONS:-v1.34.4 v1.37.2}

export GOTOOLCHAIN=local
command -v go >/dev/null 2>&1 || export PATH=/usr/local/go/bin:$PATH
cache=${GEOMATCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/geomatch}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# tool NAME PACKAGE VERSION: builds PACKAGE@VERSION once into the cache (it
# touches no go.mod) and prints the path of the binary.
tool() {
  local dir="$cache/tools/$1-$3"
  if [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "building $2@$3 from the Go module proxy" >&2
    (cd "$work" && GOFLAGS= GOBIN="$dir" go install "$2@$3")
  fi
  # One binary per directory; its name is Go's (kustomize for .../v5, cmd
  # for compose-go's command).
  echo "$dir/$(ls "$dir")"
}

kubeconform=$(tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION")
kustomize=$(tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION")
compose=$(tool compose-go github.com/compose-spec/compose-go/v2/cmd "$COMPOSE_GO_VERSION")

manifests=()
for f in deploy/kubernetes/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
"$kustomize" build deploy/kubernetes >"$work/kustomized.yaml"

for v in $KUBERNETES_VERSIONS; do
  # The Kubernetes source of release v as a module zip: its OpenAPI
  # document is the API server's own description of every built-in kind.
  dir=$(cd "$work" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$v" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  swagger="$dir/api/openapi-spec/swagger.json"
  [ -f "$swagger" ] || { echo "validate-deploy: no OpenAPI document in k8s.io/kubernetes@$v" >&2; exit 1; }
  GOFLAGS=-mod=mod go run ./deploy/kubeschema -swagger "$swagger" -out "$work/schemas/$v-standalone-strict" >/dev/null
  echo "kubernetes $v: manifests, then the kustomize build"
  "$kubeconform" -strict -summary -schema-location "$work/schemas" -kubernetes-version "${v#v}" \
    "${manifests[@]}" "$work/kustomized.yaml"
done

echo "docker-compose.yml: compose-go $COMPOSE_GO_VERSION"
# Its command line tool does not hand the environment to interpolation, so
# the file is checked as written (${...} left alone); deploy/compose_test.go
# interpolates it and runs it.
(cd deploy && "$compose" -no-interpolation docker-compose.yml >/dev/null)
echo "deploy/: valid"

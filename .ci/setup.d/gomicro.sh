#!/usr/bin/env bash
# Builds the real go-micro programs the go-micro compatibility tests run (see
# internal/gomicrotest), from separate modules so go-micro never enters
# microbot's go.mod, into tools/gomicro/bin/ (gitignored), where gomicrotest
# looks for them (MICROBOT_GOMICRO_BIN overrides the directory):
#
#   tools/gomicro     go-micro v1.8.0: greeter, command, client, publisher,
#                     subscriber -> bin/
#   tools/gomicro/v0  go-micro v0.10.0: greeter, client -> bin/v0/
#
# Every main package under each module's cmd/ is built. Idempotent: `go
# build` relinks only what changed; the first build downloads go-micro's
# dependencies from the module proxy and takes one or two minutes, later
# ones seconds.
#
# The modules say `go 1.12`, as go-micro's own go.mod did; -mod=mod lets the
# go command complete their requirements from go.sum as it did then.
set -euo pipefail
cd "$(dirname "$0")/../../tools/gomicro"
export GOFLAGS="-mod=mod -buildvcs=false"
go build -o bin/ ./cmd/...
(cd v0 && go build -o ../bin/v0/ ./cmd/...)
echo "go-micro programs: $PWD/bin (v1.8.0: $(cd bin && ls -p | grep -v / | tr '\n' ' ')v0.10.0: $(ls bin/v0 | tr '\n' ' '))"

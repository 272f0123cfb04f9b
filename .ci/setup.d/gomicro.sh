#!/usr/bin/env bash
# Builds the real go-micro v1.8.0 programs the go-micro compatibility tests
# run (greeter, bot command service, client; see internal/gomicrotest) from
# the separate module tools/gomicro, so go-micro never enters microbot's
# go.mod, into tools/gomicro/bin/ (gitignored), where gomicrotest looks for
# them (MICROBOT_GOMICRO_BIN overrides the directory). Every main package
# under tools/gomicro/cmd is built. Idempotent: `go build` relinks only what
# changed; the first build downloads go-micro's dependencies from the module
# proxy and takes about a minute, later ones seconds.
#
# The module says `go 1.12`, as go-micro v1.8.0's own go.mod does; -mod=mod
# lets the go command complete its requirements from go.sum as it did then.
set -euo pipefail
cd "$(dirname "$0")/../../tools/gomicro"
GOFLAGS="-mod=mod -buildvcs=false" go build -o bin/ ./cmd/...
echo "go-micro programs: $PWD/bin ($(ls bin | tr '\n' ' '))"

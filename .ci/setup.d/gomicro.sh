#!/usr/bin/env bash
# Builds the real go-micro programs the go-micro compatibility tests run (see
# internal/gomicrotest), from separate modules so go-micro never enters
# microbot's go.mod, into tools/gomicro/bin/ (gitignored), where gomicrotest
# looks for them (MICROBOT_GOMICRO_BIN overrides the directory):
#
#   tools/gomicro     go-micro v1.8.0: greeter, command, client, publisher,
#                     subscriber -> bin/
#   tools/gomicro/v0  go-micro v0.10.0: greeter, client -> bin/v0/
#   tools/gomicro/plugins  go-micro v1.16.0 + go-plugins v1.5.1's MQTT
#                     broker and Consul registry: greeter, command,
#                     client, publisher, subscriber -> bin/plugins/
#
# Every main package under each module's cmd/ is built. Idempotent: `go
# build` relinks only what changed; the first build downloads go-micro's
# dependencies from the module proxy and takes one or two minutes, later
# ones seconds.
#
# The modules say `go 1.12`, as go-micro's own go.mod did; -mod=mod lets the
# go command complete their requirements from go.sum as it did then.
#
# The modules replace go-micro's mDNS library (github.com/micro/mdns) with
# tools/gomicro/nomdns, which opens no socket (why: tools/gomicro/go.mod).
# `go build` keys its cache on go.mod and on every file of nomdns, so
# binaries built before the replace, or before a change of nomdns, are
# linked again; the check after the build fails the script if a binary in
# bin/ still holds the real library.
set -euo pipefail
cd "$(dirname "$0")/../../tools/gomicro"
export GOFLAGS="-mod=mod -buildvcs=false"
go build -o bin/ ./cmd/...
(cd v0 && go build -o ../bin/v0/ ./cmd/...)
(cd plugins && go build -o ../bin/plugins/ ./cmd/...)
for bin in bin/* bin/v0/* bin/plugins/*; do
	[ -f "$bin" ] || continue
	# `go version -m`: "dep github.com/micro/mdns VERSION", then
	# "=> PATH (devel)" when it is replaced.
	if ! go version -m "$bin" | awk '
		$1 == "dep" { mdns = ($2 == "github.com/micro/mdns"); if (mdns) seen = 1; next }
		$1 == "=>" && mdns { ok = ($2 ~ /nomdns$/) }
		{ mdns = 0 }
		END { exit seen && !ok }'; then
		echo "gomicro.sh: $PWD/$bin is linked with github.com/micro/mdns itself, not ./nomdns (see the replace in go.mod)" >&2
		exit 1
	fi
done
echo "go-micro programs: $PWD/bin (v1.8.0: $(cd bin && ls -p | grep -v / | tr '\n' ' ')v0.10.0: $(ls bin/v0 | tr '\n' ' ')v1.16.0+go-plugins: $(ls bin/plugins | tr '\n' ' '))"

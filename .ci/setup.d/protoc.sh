#!/usr/bin/env bash
# Installs protoc, the protocol buffer compiler, which the proto/bot and
# cmd/protoc-gen-micro tests run to check the committed generated code.
# libprotobuf-dev brings the well-known types (google/protobuf/*.proto).
# Idempotent; run as root by .ci/setup. protoc-gen-go is not installed here:
# the tests build it from the module cache at the version in go.mod.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
if ((${#need[@]})); then
	apt_install "${need[@]}"
fi
protoc --version

#!/usr/bin/env bash
# Builds the real Consul agent the framework/registry/consul tests run
# against, from the separate module tools/consul, to tools/consul/consul-agent
# (gitignored), where framework/registry/consul/consultest looks for it
# (MICROBOT_CONSUL_AGENT overrides the path). Idempotent: `go build -o` does
# nothing when the binary is already up to date; the first build takes about
# 5 minutes on 2 cores, later ones a few seconds.
set -euo pipefail
cd "$(dirname "$0")/../../tools/consul"
go build -o consul-agent .
echo "consul agent: $PWD/consul-agent"

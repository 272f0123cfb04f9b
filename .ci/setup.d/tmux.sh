#!/usr/bin/env bash
# Installs tmux, the real terminal the console tests (cmd/microbot) run the
# bot in: they type into it and read its screen (internal/tmuxtest).
# Idempotent; run as root by .ci/setup.
set -euo pipefail

if ! command -v tmux >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends tmux
fi
tmux -V

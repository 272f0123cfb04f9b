#!/usr/bin/env bash
# Installs tmux, the real terminal the console tests (cmd/microbot) run the
# bot in: they type into it and read its screen (internal/tmuxtest).
# Idempotent; run as root by .ci/setup.
set -euo pipefail
. "$(dirname "$0")/lib/apt.sh"

if ! command -v tmux >/dev/null 2>&1; then
	apt_install tmux
fi
tmux -V

// Package e2e holds the end-to-end tests of the bot's operations side: they
// run the real microbot binary against a fake Slack (slacktestws), a local
// registry and real command services, and check /healthz, /readyz,
// /metrics, the logs, and graceful shutdown on SIGTERM.
package e2e

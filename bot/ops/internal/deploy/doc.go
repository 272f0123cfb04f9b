// Package deploy holds the tests of the deployment files at the root of
// the repository: the Dockerfile (its stages and sources, and that its
// build command makes a static binary), the Kubernetes example (manifests
// parse, probes hit paths the binary serves, environment variables and
// flags are ones it reads, tokens come from the Secret) and the systemd
// unit (INI with the hardening keys; `systemd-analyze verify` where
// systemd is installed). Docker itself cannot run here.
package deploy

// Package ops gives microbot what every Go service run under Kubernetes or
// systemd offers: an HTTP listener with liveness (/healthz), readiness
// (/readyz) and Prometheus metrics (/metrics), and structured logs that
// never show a secret.
//
// # Pieces
//
//   - [Metrics]: the collectors, in a prometheus.Registry of their own. They
//     are fed by hooks the lower layers offer without knowing of
//     Prometheus: a bot.Middleware ([Metrics.Middleware]) for commands, a
//     framework/client call wrapper ([Metrics.WrapCall]) for RPC calls, the
//     bot's input hook ([Metrics.InputHook]) for connections and
//     reconnections, and the command watcher's hook ([Metrics.WatchHook])
//     for registry watch events.
//   - [Server]: the HTTP listener. Readiness asks every input that can
//     tell (input.StatusReporter) whether it is connected, and the
//     registry to list its services under a short timeout (the answer kept
//     for two seconds); it turns unready as soon as the bot is stopping.
//   - [AlertmanagerHook]: Prometheus Alertmanager's webhook
//     (/hooks/alertmanager on the listener, with [WithAlertmanager]): each
//     call, with the bearer token, becomes a proto/bot Notification
//     published on a topic (firing and resolved of one alert group share a
//     thread key), which the rooms watching the topic show.
//   - [NewLogger]: log/slog, text on a terminal and JSON otherwise, with
//     secrets (the values given, such as those of the token and password
//     flags, and any attribute named like one, see [SecretKey]) replaced by
//     "[REDACTED]" (as in the audit log).
//
// cmd/microbot's flags --http_address, --log_format, --shutdown_timeout,
// --alertmanager_token and --alertmanager_topic configure them. The listener is off unless --http_address is given: a bot on a laptop
// or in a test opens no port, and several bots on one host never fight
// over one; a deployment names the address it probes.
//
// Only cmd/microbot wires this package; nothing below it imports it.
package ops

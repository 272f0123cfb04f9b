package ops_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/input"
)

// BenchmarkMiddleware is the cost the metrics middleware adds to a command.
func BenchmarkMiddleware(b *testing.B) {
	m := ops.NewMetrics(ops.WithMetricsLogger(slog.New(slog.DiscardHandler)))
	rep := command.Text("pong")
	h := m.Middleware()(func(context.Context, *command.Request) *input.Reply { return rep })
	req := &command.Request{Command: &command.Command{Name: "ping"}, Event: &input.Event{Input: "slack", UserID: "U1", Room: "C1"}}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h(ctx, req)
		}
	})
}

// BenchmarkWrapCall is the cost the metrics call wrapper adds to an RPC call.
func BenchmarkWrapCall(b *testing.B) {
	m := ops.NewMetrics()
	failed := errors.New("refused")
	call := m.WrapCall()(func(ctx context.Context, service, endpoint string, req, rsp any, opts ...client.CallOption) error {
		return failed
	})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			call(ctx, "go.micro.srv.greeter", "Say.Hello", nil, nil) //nolint:errcheck
		}
	})
}

// BenchmarkLog compares a JSON log line with and without redaction.
func BenchmarkLog(b *testing.B) {
	err := errors.New("dial tcp 127.0.0.1:8500: connection refused")
	for _, bc := range []struct {
		name    string
		secrets []string
	}{
		{"plain", nil},
		{"redacting-2-secrets", []string{"xoxb-1-very-secret-token", "xapp-1-A0-1-another-secret"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, _ := ops.NewLogger(io.Discard, ops.FormatJSON, slog.LevelInfo, bc.secrets...)
			b.ReportAllocs()
			for b.Loop() {
				l.Info("sending a reply failed", "input", "slack", "room", "C123", "err", err, "retry_in", 1500)
			}
		})
	}
}

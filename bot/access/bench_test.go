package access

import (
	"context"
	"log/slog"
	"testing"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/input"
)

// BenchmarkDecide is the cost of one decision with the example policy (9
// rules before the defaults), for a command that falls through to the
// defaults and for one decided by the first rules.
func BenchmarkDecide(b *testing.B) {
	p, err := Load("../../examples/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	caller := Caller{Input: "slack", UserID: "U0DEV0001", Room: "C0DEV", Direct: false}
	for _, bc := range []struct {
		name string
		cmd  *command.Command
		line string
	}{
		{"default", cmdQuery, `query go.micro.srv.greeter Say.Hello {"name": "John"}`},
		{"first-rules", cmdDeploy, "deploy web v2"},
		{"help-visibility", cmdDeregister, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var r *command.Request
			if bc.line != "" {
				r = req(bc.cmd, bc.line)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(caller, bc.cmd, r)
			}
		})
	}
}

// BenchmarkMiddleware is what the guard adds to a command that runs
// (decision and audit line to a discarded writer), against the bare bot.
func BenchmarkMiddleware(b *testing.B) {
	p, err := Load("../../examples/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ev := &input.Event{Input: "slack", UserID: "U0DEV0001", UserName: "Dev", Room: "C0DEV", Addressed: true, Text: "ping"}
	for _, bc := range []struct {
		name  string
		guard bool
	}{{"bare", false}, {"guarded", true}} {
		b.Run(bc.name, func(b *testing.B) {
			table := command.NewTable()
			if err := command.RegisterBuiltins(table, nil, nil); err != nil {
				b.Fatal(err)
			}
			var opts []bot.Option
			if bc.guard {
				g := New(p, WithLogger(slog.New(slog.DiscardHandler)), WithAudit(audit.New(discard{})))
				opts = append(opts, bot.WithMiddleware(g.Middleware()))
			}
			bt := bot.New(table, append(opts, bot.WithLogger(slog.New(slog.DiscardHandler)))...)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if rep := bt.Handle(ctx, ev); rep.Text != "pong" {
					b.Fatal(rep.Text)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

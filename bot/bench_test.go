package bot_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/input"
)

// BenchmarkHandle1000 measures matching a line and dispatching it through
// the bot (metadata, middleware chain, timeout, panic guard) to a command,
// with 1,000 commands added at run time besides the built-ins.
func BenchmarkHandle1000(b *testing.B) {
	tb := command.NewTable()
	if err := command.RegisterBuiltins(tb, nil, nil); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		name := fmt.Sprintf("cmd%d", i)
		if err := tb.Put(&command.Command{Name: name, Usage: name + " [args]", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
			return command.Text(req.Params()[0]), nil
		}}); err != nil {
			b.Fatal(err)
		}
	}
	pass := func(next bot.Handler) bot.Handler { return next }
	bt := bot.New(tb, bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithMiddleware(pass, pass))
	ev := &input.Event{Input: "bench", UserID: "U1", UserName: "Ann", Room: "C1", Addressed: true, Text: "cmd777 deploy web --version 2"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if rep := bt.Handle(ctx, ev); rep.Text != "deploy" {
			b.Fatal(rep.Text)
		}
	}
}

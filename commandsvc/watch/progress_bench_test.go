package watch_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/broker"
	brokerhttp "github.com/microbot/microbot/framework/broker/http"
	brokermem "github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
	pb "github.com/microbot/microbot/proto/bot"
)

// BenchmarkExecProgress measures what following the progress costs a
// command service call: the same call (bot.Handle of "job N", a service
// reporting N lines) without a broker, and with the progress followed on
// the memory broker, on the http broker (the default) over a local
// registry and on a local nats-server, reporting 0 or 3 lines. The
// progress topic is subscribed to once, before the timing: the difference
// between "none" and "http/0" is what a call costs to follow (a run id in
// the metadata), "http/3" adds three publishes to the bot's inbox, and
// "nats/0" and "nats/3" the bot's round trip to the server when Exec
// returns and, for "nats/3", three publishes each followed by the
// service's round trip.
func BenchmarkExecProgress(b *testing.B) {
	cases := []struct {
		name   string
		broker string // "", "memory", "http", "nats"
		lines  string
	}{
		{"none", "", "0"},
		{"memory/0", "memory", "0"},
		{"memory/3", "memory", "3"},
		{"http/0", "http", "0"},
		{"http/3", "http", "3"},
		{"nats/0", "nats", "0"},
		{"nats/3", "nats", "3"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			reg, err := local.New(local.WithDir(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			botB, svcB := benchBrokers(b, tc.broker, reg)
			c, err := client.New(client.WithRegistry(reg))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			pub, err := client.New(client.WithRegistry(reg), client.WithBroker(svcB))
			if err != nil {
				b.Fatal(err)
			}
			defer pub.Close()
			s, err := server.New(server.WithName("go.micro.bot.job"), server.WithRegistry(reg), server.WithRegisterTTL(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			h := commandsvc.Handler("job", "reports progress", func(ctx context.Context, args []string) (string, error) {
				for range int(args[1][0] - '0') { // "job 3": three lines
					if err := commandsvc.Progress(ctx, "a step"); err != nil {
						return "", err
					}
				}
				return "done", nil
			}, commandsvc.WithPublisher(pub))
			if err := pb.RegisterCommandHandler(s, h); err != nil {
				b.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer s.Stop(context.Background())

			table := command.NewTable()
			opts := []watch.Option{watch.WithLogger(slog.New(slog.DiscardHandler))}
			if botB != nil {
				opts = append(opts, watch.WithBroker(botB))
			}
			w := watch.New(reg, c, table, opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go w.Run(ctx)
			testenv.Eventually(b, 20*time.Second, "job in the table", func() bool { return table.Lookup("job") != nil })
			if botB != nil {
				testenv.Eventually(b, 20*time.Second, "progress followed", func() bool { return w.ProgressTopic() != "" })
			}
			bt := bot.New(table, bot.WithLogger(slog.New(slog.DiscardHandler)))
			pctx := command.NewProgressContext(context.Background(), func(string) {})
			ev := &input.Event{Input: "bench", UserID: "U1", Addressed: true, Text: "job " + tc.lines}
			b.ResetTimer()
			for b.Loop() {
				if rep := bt.Handle(pctx, ev); rep == nil || rep.Error {
					b.Fatalf("reply %+v", rep)
				}
			}
		})
	}
}

// benchBrokers returns the bot's broker and the command service's, both
// connected (nil, nil for none).
func benchBrokers(b *testing.B, kind string, reg registry.Registry) (broker.Broker, broker.Broker) {
	var bot, svc broker.Broker
	switch kind {
	case "":
		return nil, nil
	case "memory":
		bus := brokermem.NewBus()
		bot, svc = brokermem.New(brokermem.WithBus(bus)), brokermem.New(brokermem.WithBus(bus))
	case "http":
		for _, p := range []*broker.Broker{&bot, &svc} {
			hb, err := brokerhttp.New(brokerhttp.WithRegistry(reg), brokerhttp.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			*p = hb
		}
	case "nats":
		addr := natstest.Start(b).Addr
		bot, svc = natsBroker(b, addr), natsBroker(b, addr)
	}
	for _, x := range []broker.Broker{bot, svc} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := x.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			x.Disconnect(ctx)
		})
	}
	return bot, svc
}

// Command publisher publishes one event for each line it reads on stdin,
// with client.Publish, and says how it went on stdout, one JSON line each:
// {"seq": 1} or {"seq": 1, "error": "..."}.
//
// It takes the framework's flags (see framework.Flags: --broker,
// --broker_address, --registry, ...), and from the environment
// EVENTS_TOPIC (default examples.events) and EVENTS_FROM (the events'
// "from", default "publisher").
//
//	echo 'disk full' | publisher --broker=nats --broker_address=127.0.0.1:4222
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/microbot/microbot/examples/events"
	"github.com/microbot/microbot/framework"
)

// result is what is printed for each event.
type result struct {
	Seq   int    `json:"seq"`
	Error string `json:"error,omitempty"`
}

func main() {
	topic, from := os.Getenv("EVENTS_TOPIC"), os.Getenv("EVENTS_FROM")
	if topic == "" {
		topic = events.Topic
	}
	if from == "" {
		from = "publisher"
	}
	svc, err := framework.NewService(
		framework.WithName("go.micro.srv.publisher"),
		framework.WithArgs(os.Args),
	)
	if errors.Is(err, framework.ErrHelp) {
		return
	}
	if err != nil {
		slog.Error("publisher", "err", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	seq := 0
	for sc.Scan() {
		seq++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := svc.Client().Publish(ctx, topic, &events.Event{Seq: seq, Text: sc.Text(), From: from})
		cancel()
		r := result{Seq: seq}
		if err != nil {
			r.Error = err.Error()
		}
		if err := enc.Encode(r); err != nil {
			os.Exit(1)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		slog.Error("publisher", "err", err)
	}
}

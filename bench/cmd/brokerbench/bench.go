package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/microbot/microbot/framework/broker"
	brokerhttp "github.com/microbot/microbot/framework/broker/http"
	"github.com/microbot/microbot/framework/broker/memory"
	brokermqtt "github.com/microbot/microbot/framework/broker/mqtt"
	brokernats "github.com/microbot/microbot/framework/broker/nats"
	regmemory "github.com/microbot/microbot/framework/registry/memory"
)

// config is a run's configuration.
type config struct {
	Messages int           // messages of one throughput round
	Size     int           // body size, at least 16
	Window   int           // messages in flight at most in the throughput rounds
	Latency  int           // messages of one latency round, one in flight
	Rounds   int           // rounds per system, the systems alternating
	Systems  []string      // which systems, in table order
	Stall    time.Duration // a round waiting this long for a delivery gives up
	NATSBin  string        // nats-server; "" finds it
	MQTTBin  string        // mosquitto; "" finds it
}

func defaultConfig() config {
	return config{
		Messages: 100000, Size: 128, Window: 4096, Latency: 2000, Rounds: 3,
		Systems: []string{"nats.go", "nats", "nats.go+headers", "nats+headers", "nats-gomicro+headers", "nats-gomicro-in+headers", "mqtt", "mqtt-qos0", "http", "memory"},
		Stall:   10 * time.Second,
	}
}

// anchor is the system the others are compared with.
const anchor = "nats.go"

// system is one publish -> deliver path under test: a publisher and a
// subscriber of their own (two connections where there is a server).
type system struct {
	name    string
	publish func(ctx context.Context, body []byte) error
	close   func()
}

// servers are the broker servers a run started.
type servers struct {
	nats, mqtt *server
}

// nowNanos is the clock the bodies carry: nanoseconds on the monotonic
// clock since the run started.
var epoch = time.Now()

func nowNanos() int64 { return int64(time.Since(epoch)) }

// phase is what the subscriber side reports to, swapped between rounds.
type phase struct {
	// throughput rounds
	target    int64
	delivered atomic.Int64
	last      atomic.Int64 // nowNanos of the last delivery
	tokens    chan struct{}
	done      chan struct{}
	doneOnce  sync.Once
	// latency rounds
	lat chan int64 // one delivery's latency, ns
}

var current atomic.Pointer[phase]

// deliver is every system's subscriber: it accounts for one message.
func deliver(body []byte) {
	p := current.Load()
	if p == nil || len(body) < 16 {
		return
	}
	if p.lat != nil {
		select {
		case p.lat <- nowNanos() - int64(binary.LittleEndian.Uint64(body)):
		default:
		}
		return
	}
	n := p.delivered.Add(1)
	p.last.Store(nowNanos())
	select {
	case <-p.tokens:
	default:
	}
	if n >= p.target {
		p.doneOnce.Do(func() { close(p.done) })
	}
}

// open starts system name over the run's servers.
func open(ctx context.Context, name string, srv servers) (*system, error) {
	topic := "bench." + strings.NewReplacer("+", "-", ".", "-").Replace(name)
	ours := func(pub, sub broker.Broker, hdr map[string]string) (*system, error) {
		for _, b := range []broker.Broker{pub, sub} {
			if err := b.Connect(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		_, err := sub.Subscribe(ctx, topic, func(_ context.Context, e *broker.Event) error {
			deliver(e.Body)
			return nil
		}, broker.WithMaxPending(65536), broker.WithMaxPendingBytes(64<<20)) // nats.go's defaults
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &system{
			name: name,
			publish: func(ctx context.Context, body []byte) error {
				return pub.Publish(ctx, topic, &broker.Message{Header: hdr, Body: body})
			},
			close: func() {
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				pub.Disconnect(cctx) //nolint:errcheck
				sub.Disconnect(cctx) //nolint:errcheck
			},
		}, nil
	}
	need := func(s *server, what string) error {
		if s == nil {
			return errors.New(name + ": no " + what + " server")
		}
		return nil
	}
	benchHeader := map[string]string{"Content-Type": "application/protobuf", "Micro-Id": "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50"}
	switch name {
	case anchor, anchor + "+headers":
		if err := need(srv.nats, "NATS"); err != nil {
			return nil, err
		}
		pc, err := natsgo.Connect("nats://" + srv.nats.addr)
		if err != nil {
			return nil, err
		}
		sc, err := natsgo.Connect("nats://" + srv.nats.addr)
		if err != nil {
			pc.Close()
			return nil, err
		}
		if _, err := sc.Subscribe(topic, func(m *natsgo.Msg) { deliver(m.Data) }); err != nil {
			return nil, err
		}
		if err := sc.Flush(); err != nil {
			return nil, err
		}
		publish := func(_ context.Context, body []byte) error { return pc.Publish(topic, body) }
		if name != anchor {
			hdr := natsgo.Header{}
			for k, v := range benchHeader {
				hdr.Set(k, v)
			}
			publish = func(_ context.Context, body []byte) error {
				return pc.PublishMsg(&natsgo.Msg{Subject: topic, Header: hdr, Data: body})
			}
		}
		return &system{name: name, publish: publish, close: func() { pc.Close(); sc.Close() }}, nil
	case "nats", "nats+headers", "nats-gomicro+headers":
		// nats and nats+headers: --broker_format=nats (NATS headers and
		// the raw body); nats-gomicro+headers: the default, go-micro's
		// JSON message, written by the publisher and unwrapped by the
		// subscriber.
		if err := need(srv.nats, "NATS"); err != nil {
			return nil, err
		}
		format := brokernats.FormatNATS
		if name == "nats-gomicro+headers" {
			format = brokernats.FormatGoMicro
		}
		pub, err := brokernats.New(brokernats.WithAddrs(srv.nats.addr), brokernats.WithFormat(format))
		if err != nil {
			return nil, err
		}
		sub, err := brokernats.New(brokernats.WithAddrs(srv.nats.addr), brokernats.WithFormat(format))
		if err != nil {
			return nil, err
		}
		var hdr map[string]string
		if strings.HasSuffix(name, "+headers") {
			hdr = benchHeader
		}
		return ours(pub, sub, hdr)
	case "nats-gomicro-in+headers":
		// The subscriber's side of go-micro's format alone: plain nats.go
		// publishing as go-micro's nats broker does (encoding/json of its
		// broker.Message, each message), to the nats broker.
		if err := need(srv.nats, "NATS"); err != nil {
			return nil, err
		}
		pc, err := natsgo.Connect("nats://" + srv.nats.addr)
		if err != nil {
			return nil, err
		}
		sub, err := brokernats.New(brokernats.WithAddrs(srv.nats.addr))
		if err != nil {
			pc.Close()
			return nil, err
		}
		s, err := ours(sub, sub, nil)
		if err != nil {
			pc.Close()
			return nil, err
		}
		s.publish = func(_ context.Context, body []byte) error {
			payload, err := json.Marshal(goMicroMessage{Header: benchHeader, Body: body})
			if err != nil {
				return err
			}
			return pc.Publish(topic, payload)
		}
		closeSub := s.close
		s.close = func() { pc.Close(); closeSub() }
		return s, nil
	case "mqtt", "mqtt-qos0":
		if err := need(srv.mqtt, "MQTT"); err != nil {
			return nil, err
		}
		qos := byte(1)
		if name == "mqtt-qos0" {
			qos = 0
		}
		pub, err := brokermqtt.New(brokermqtt.WithAddrs(srv.mqtt.addr), brokermqtt.WithQoS(qos))
		if err != nil {
			return nil, err
		}
		sub, err := brokermqtt.New(brokermqtt.WithAddrs(srv.mqtt.addr), brokermqtt.WithQoS(qos))
		if err != nil {
			return nil, err
		}
		return ours(pub, sub, nil)
	case "http":
		reg := regmemory.New()
		pub, err := brokerhttp.New(brokerhttp.WithRegistry(reg))
		if err != nil {
			return nil, err
		}
		sub, err := brokerhttp.New(brokerhttp.WithRegistry(reg))
		if err != nil {
			return nil, err
		}
		return ours(pub, sub, nil)
	case "memory":
		bus := memory.NewBus()
		return ours(memory.New(memory.WithBus(bus)), memory.New(memory.WithBus(bus)), nil)
	}
	return nil, fmt.Errorf("unknown system %q (have nats.go, nats, nats.go+headers, nats+headers, nats-gomicro+headers, nats-gomicro-in+headers, mqtt, mqtt-qos0, http, memory)", name)
}

// goMicroMessage is go-micro's broker.Message, which go-micro's nats broker
// sends as JSON.
type goMicroMessage struct {
	Header map[string]string
	Body   []byte
}

// result aggregates a system's rounds.
type result struct {
	delivered, dropped, pubErrors int64
	elapsed                       time.Duration
	latencies                     []int64
	rates                         []float64 // msgs/s of each throughput round
}

// body returns a message of size bytes stamped with seq and the time.
func stamp(body []byte, seq int) {
	binary.LittleEndian.PutUint64(body[0:8], uint64(nowNanos()))
	binary.LittleEndian.PutUint64(body[8:16], uint64(seq))
}

// warm publishes until a message arrives: the subscription is known and
// every connection is up.
func warm(ctx context.Context, s *system, size int) error {
	p := &phase{lat: make(chan int64, 1)}
	current.Store(p)
	body := make([]byte, size)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		stamp(body, 0)
		if err := s.publish(ctx, body); err != nil && !errors.Is(err, broker.ErrUnavailable) {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		select {
		case <-p.lat:
			// Let anything still in flight arrive before the round.
			time.Sleep(50 * time.Millisecond)
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: no message arrived within 30s", s.name)
}

// throughput publishes cfg.Messages as fast as the window allows.
func throughput(ctx context.Context, cfg config, s *system, r *result) error {
	p := &phase{target: int64(cfg.Messages), tokens: make(chan struct{}, cfg.Window), done: make(chan struct{})}
	current.Store(p)
	body := make([]byte, cfg.Size)
	var pubErrors int64
	start := nowNanos()
	stall := time.NewTimer(cfg.Stall)
	defer stall.Stop()
	for i := range cfg.Messages {
		select {
		case p.tokens <- struct{}{}:
		case <-stall.C:
			return fmt.Errorf("%s: no delivery for %v with %d messages in flight (lost?)", s.name, cfg.Stall, cfg.Window)
		case <-ctx.Done():
			return ctx.Err()
		}
		if i%1024 == 0 {
			stall.Reset(cfg.Stall)
		}
		stamp(body, i+1)
		if err := s.publish(ctx, body); err != nil {
			pubErrors++
			select {
			case <-p.tokens:
			default:
			}
		}
	}
	select {
	case <-p.done:
	case <-time.After(cfg.Stall):
	case <-ctx.Done():
		return ctx.Err()
	}
	current.Store(nil)
	n := p.delivered.Load()
	r.delivered += n
	r.pubErrors += pubErrors
	r.dropped += int64(cfg.Messages) - n - pubErrors
	r.elapsed += time.Duration(p.last.Load() - start)
	r.rates = append(r.rates, float64(n)/time.Duration(p.last.Load()-start).Seconds())
	return nil
}

// latency publishes cfg.Latency messages one at a time and records how long
// each took to arrive.
func latency(ctx context.Context, cfg config, s *system, r *result) error {
	p := &phase{lat: make(chan int64, 1)}
	current.Store(p)
	body := make([]byte, cfg.Size)
	for i := range cfg.Latency {
		stamp(body, i+1)
		if err := s.publish(ctx, body); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		select {
		case ns := <-p.lat:
			r.latencies = append(r.latencies, ns)
		case <-time.After(cfg.Stall):
			return fmt.Errorf("%s: message %d not delivered within %v", s.name, i+1, cfg.Stall)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	current.Store(nil)
	return nil
}

// run runs the benchmark and prints its table to w.
func run(ctx context.Context, cfg config, w io.Writer) error {
	if cfg.Size < 16 {
		return fmt.Errorf("size %d: at least 16 bytes (time and sequence)", cfg.Size)
	}
	var srv servers
	needs := func(prefix string) bool {
		return slices.ContainsFunc(cfg.Systems, func(s string) bool { return strings.HasPrefix(s, prefix) })
	}
	if needs("nats") {
		bin, err := findBin(cfg.NATSBin, "nats-server")
		if err != nil {
			return err
		}
		if srv.nats, err = startNATS(bin); err != nil {
			return err
		}
		defer srv.nats.stop()
	}
	if needs("mqtt") {
		bin, err := findBin(cfg.MQTTBin, "mosquitto")
		if err != nil {
			return err
		}
		if srv.mqtt, err = startMosquitto(bin); err != nil {
			return err
		}
		defer srv.mqtt.stop()
	}
	systems := make([]*system, 0, len(cfg.Systems))
	defer func() {
		for _, s := range systems {
			s.close()
		}
	}()
	for _, name := range cfg.Systems {
		s, err := open(ctx, name, srv)
		if err != nil {
			return err
		}
		systems = append(systems, s)
		if err := warm(ctx, s, cfg.Size); err != nil {
			return err
		}
	}
	results := make([]result, len(systems))
	for range cfg.Rounds {
		for i, s := range systems {
			runtime.GC()
			if err := throughput(ctx, cfg, s, &results[i]); err != nil {
				return err
			}
			if err := latency(ctx, cfg, s, &results[i]); err != nil {
				return err
			}
		}
	}

	fmt.Fprintf(w, "publish -> delivered, one publisher and one subscriber (own connections), %d-byte bodies, GOMAXPROCS %d\n", cfg.Size, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "throughput: %d messages a round, at most %d in flight; latency: %d messages a round, one in flight; %d rounds, systems alternating\n\n",
		cfg.Messages, cfg.Window, cfg.Latency, cfg.Rounds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tmsgs/s\tvs nats.go\tmedian\tp50\tp99\tdelivered\tlost\tpublish errors\t")
	// Rows with headers are compared with nats.go with the same headers.
	anchors := map[string]int{} // "" and "+headers" -> index in systems
	for i, s := range systems {
		if suffix, ok := strings.CutPrefix(s.name, anchor); ok {
			anchors[suffix] = i
		}
	}
	for i, s := range systems {
		r := results[i]
		rate := rateOf(r)
		ratio, median := "-", "-"
		suffix := ""
		if strings.HasSuffix(s.name, "+headers") {
			suffix = "+headers"
		}
		if a, ok := anchors[suffix]; ok {
			ratio = fmt.Sprintf("%.2f", rate/rateOf(results[a]))
			median = fmt.Sprintf("%.2f", medianRatio(r.rates, results[a].rates))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", s.name, rate, ratio, median,
			quantile(r.latencies, 0.50), quantile(r.latencies, 0.99), r.delivered, r.dropped, r.pubErrors)
	}
	return tw.Flush()
}

// rateOf is a system's throughput over all its rounds.
func rateOf(r result) float64 { return float64(r.delivered) / r.elapsed.Seconds() }

// medianRatio is the median, over the rounds, of a system's throughput
// divided by its anchor's in the same round (the rounds alternate, so the
// two saw about the same machine load): steadier than the ratio of the
// totals when the load changes during a run.
func medianRatio(rates, anchor []float64) float64 {
	var q []float64
	for i := range min(len(rates), len(anchor)) {
		if anchor[i] > 0 {
			q = append(q, rates[i]/anchor[i])
		}
	}
	if len(q) == 0 {
		return 0
	}
	slices.Sort(q)
	if n := len(q); n%2 == 0 {
		return (q[n/2-1] + q[n/2]) / 2
	}
	return q[len(q)/2]
}

// quantile returns the q-quantile of ns latencies, rounded for reading.
func quantile(ns []int64, q float64) string {
	if len(ns) == 0 {
		return "-"
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	d := time.Duration(s[min(int(q*float64(len(s))), len(s)-1)])
	switch {
	case d < 10*time.Microsecond:
		return d.Round(100 * time.Nanosecond).String()
	case d < 10*time.Millisecond:
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

package framework_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry"
	regmemory "github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/internal/testenv"
	"github.com/microbot/microbot/proto/bot"
)

const wait = 20 * time.Second

// eventsEnv is services on one registry and one memory bus.
type eventsEnv struct {
	t   *testing.T
	reg *regmemory.Registry
	bus *memory.Bus
}

func newEventsEnv(t *testing.T) *eventsEnv {
	return &eventsEnv{t: t, reg: regmemory.New(), bus: memory.NewBus()}
}

// service builds a service on the env's registry and bus; it is stopped
// when the test ends.
func (e *eventsEnv) service(name string, opts ...framework.Option) *framework.Service {
	e.t.Helper()
	svc, err := framework.NewService(append([]framework.Option{
		framework.WithName(name),
		framework.WithRegistry(e.reg),
		framework.WithBroker(memory.New(memory.WithBus(e.bus))),
	}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			e.t.Errorf("Stop %s: %v", name, err)
		}
	})
	return svc
}

// Alert is a JSON event.
type Alert struct {
	Name     string `json:"name"`
	Severity int    `json:"severity"`
}

// got records what handlers received.
type got[T any] struct {
	mu   sync.Mutex
	msgs []T
	mds  []metadata.Metadata
}

func (g *got[T]) add(ctx context.Context, m T) {
	md, _ := metadata.FromContext(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.msgs = append(g.msgs, m)
	g.mds = append(g.mds, md)
}

func (g *got[T]) snapshot() ([]T, []metadata.Metadata) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.msgs), slices.Clone(g.mds)
}

func (g *got[T]) count() int {
	m, _ := g.snapshot()
	return len(m)
}

// TestPublishSubscribe: client.Publish to server.Subscribe, in JSON and in
// protobuf, by value and by pointer and raw, with the caller's metadata as
// headers; the subscriptions are listed with the endpoints.
func TestPublishSubscribe(t *testing.T) {
	env := newEventsEnv(t)
	sub := env.service("go.micro.srv.listener")
	var alerts got[*Alert]
	var values got[Alert]
	var execs got[*bot.ExecRequest]
	var raws got[*broker.Event]
	ctx := context.Background()
	for _, s := range []struct {
		topic string
		h     any
	}{
		{"alerts", func(ctx context.Context, a *Alert) error { alerts.add(ctx, a); return nil }},
		{"alerts", func(ctx context.Context, a Alert) error { values.add(ctx, a); return nil }},
		{"commands", func(ctx context.Context, r *bot.ExecRequest) error { execs.add(ctx, r); return nil }},
		{"alerts", func(ctx context.Context, e *broker.Event) error { raws.add(ctx, e); return nil }},
	} {
		if _, err := sub.Server().Subscribe(ctx, s.topic, s.h); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}

	pub := env.service("go.micro.srv.publisher")
	mctx := metadata.NewContext(ctx, metadata.Metadata{"Micro-User": "alice"})
	if err := pub.Client().Publish(mctx, "alerts", &Alert{Name: "disk full", Severity: 2}); err != nil {
		t.Fatal(err)
	}
	exec := &bot.ExecRequest{Args: []string{"deploy", "web"}}
	if err := pub.Client().Publish(mctx, "commands", exec, client.WithContentType("application/protobuf")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "every subscriber got its message", func() bool {
		return alerts.count() == 1 && values.count() == 1 && execs.count() == 1 && raws.count() == 1
	})
	a, mds := alerts.snapshot()
	if *a[0] != (Alert{"disk full", 2}) {
		t.Errorf("alert %+v", a[0])
	}
	md := mds[0]
	for k, want := range map[string]string{"Micro-User": "alice", "Micro-Topic": "alerts", "Content-Type": "application/json"} {
		if v, _ := md.Get(k); v != want {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, v, want, md)
		}
	}
	if id, _ := md.Get("Micro-Id"); len(id) != 36 {
		t.Errorf("Micro-Id %q, want a UUID", id)
	}
	if v, _ := values.snapshot(); v[0] != (Alert{"disk full", 2}) {
		t.Errorf("by value: %+v", v[0])
	}
	if e, _ := execs.snapshot(); !slices.Equal(e[0].GetArgs(), exec.Args) {
		t.Errorf("protobuf: %v", e[0])
	}
	if r, _ := raws.snapshot(); r[0].Topic != "alerts" || !strings.Contains(string(r[0].Body), `"disk full"`) || r[0].Header["Content-Type"] != "application/json" {
		t.Errorf("raw: %+v %q", r[0], r[0].Body)
	}

	// The registry lists the subscriptions with the endpoints, as `get
	// service` shows them.
	svcs, err := env.reg.GetService(ctx, "go.micro.srv.listener")
	if err != nil {
		t.Fatal(err)
	}
	var subs []string
	for _, ep := range svcs[0].Endpoints {
		if ep.Metadata["subscriber"] == "true" {
			if ep.Name != "Func" {
				t.Errorf("subscriber endpoint named %q", ep.Name)
			}
			subs = append(subs, ep.Metadata["topic"]+":"+ep.Request.Type)
		}
	}
	want := []string{"alerts:Alert", "alerts:Alert", "alerts:broker.Event", "commands:ExecRequest"}
	slices.Sort(subs)
	if !slices.Equal(subs, want) {
		t.Errorf("subscriber endpoints %v, want %v", subs, want)
	}
}

// TestUndecodable: a body the handler's type cannot take is counted and
// logged, and the subscription goes on.
func TestUndecodable(t *testing.T) {
	env := newEventsEnv(t)
	sub := env.service("go.micro.srv.listener")
	var alerts got[*Alert]
	ctx := context.Background()
	x, err := sub.Server().Subscribe(ctx, "alerts", func(ctx context.Context, a *Alert) error { alerts.add(ctx, a); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pub := env.service("go.micro.srv.publisher")
	for _, m := range []*broker.Message{
		{Header: map[string]string{"Content-Type": "application/json"}, Body: []byte("{not json")},
		{Header: map[string]string{"Content-Type": "text/csv"}, Body: []byte("a,b")},
		{Header: map[string]string{"Content-Type": "application/protobuf"}, Body: []byte{0xff, 0xff}},
		{Body: []byte(`{"name":"no content type means JSON"}`)},
	} {
		if err := pub.Broker().Publish(ctx, "alerts", m); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, wait, "the good message arrived", func() bool { return alerts.count() == 1 })
	if st := x.Stats(); st.Undecodable != 3 || st.Handled != 1 {
		t.Errorf("stats %+v, want 3 undecodable, 1 handled", st)
	}
}

// TestSubscribeAtRunTime: subscriptions made and ended while the service
// runs are served at once and shown in the registry at once.
func TestSubscribeAtRunTime(t *testing.T) {
	env := newEventsEnv(t)
	sub := env.service("go.micro.srv.watcher")
	ctx := context.Background()
	if err := sub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pub := env.service("go.micro.srv.publisher")
	topics := func() []string {
		svcs, err := env.reg.GetService(ctx, "go.micro.srv.watcher")
		if err != nil {
			return nil
		}
		var out []string
		for _, ep := range svcs[0].Endpoints {
			if t := ep.Metadata["topic"]; t != "" {
				out = append(out, t)
			}
		}
		slices.Sort(out)
		return out
	}
	var subs []*server.Subscription
	var counts [3]got[*Alert]
	for i := range counts {
		x, err := sub.Server().Subscribe(ctx, "room"+strconv.Itoa(i), func(ctx context.Context, a *Alert) error {
			counts[i].add(ctx, a)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, x)
	}
	if got := topics(); !slices.Equal(got, []string{"room0", "room1", "room2"}) {
		t.Errorf("registered topics %v right after subscribing", got)
	}
	for i := range counts {
		if err := pub.Client().Publish(ctx, "room"+strconv.Itoa(i), &Alert{Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, wait, "each room got its message", func() bool {
		return counts[0].count() == 1 && counts[1].count() == 1 && counts[2].count() == 1
	})
	if err := subs[1].Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if got := topics(); !slices.Equal(got, []string{"room0", "room2"}) {
		t.Errorf("registered topics %v right after unsubscribing room1", got)
	}
	for i := range counts {
		if err := pub.Client().Publish(ctx, "room"+strconv.Itoa(i), &Alert{Name: "y"}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, wait, "rooms 0 and 2 got their second message", func() bool {
		return counts[0].count() == 2 && counts[2].count() == 2
	})
	if n := counts[1].count(); n != 1 {
		t.Errorf("room1 got %d messages after unsubscribing", n-1)
	}
}

// TestQueueGroupAcrossServices: two services in one queue group share the
// messages; a third outside it gets them all.
func TestQueueGroupAcrossServices(t *testing.T) {
	env := newEventsEnv(t)
	ctx := context.Background()
	var workers [2]got[*Alert]
	var audit got[*Alert]
	for i := range workers {
		s := env.service("go.micro.srv.worker")
		if _, err := s.Server().Subscribe(ctx, "jobs", func(ctx context.Context, a *Alert) error {
			workers[i].add(ctx, a)
			return nil
		}, broker.WithQueue("workers")); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := env.service("go.micro.srv.audit")
	if _, err := a.Server().Subscribe(ctx, "jobs", func(ctx context.Context, m *Alert) error { audit.add(ctx, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pub := env.service("go.micro.srv.publisher")
	const n = 40
	for i := range n {
		if err := pub.Client().Publish(ctx, "jobs", &Alert{Name: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, wait, "all messages handled", func() bool {
		return audit.count() == n && workers[0].count()+workers[1].count() == n
	})
	if workers[0].count() == 0 || workers[1].count() == 0 {
		t.Errorf("the group's messages all went to one member: %d and %d", workers[0].count(), workers[1].count())
	}
}

// TestSubscribeErrors: bad handlers, topics and options are refused with a
// clear error, before anything is subscribed.
func TestSubscribeErrors(t *testing.T) {
	env := newEventsEnv(t)
	s := env.service("go.micro.srv.x")
	ctx := context.Background()
	ok := func(context.Context, *Alert) error { return nil }
	tests := []struct {
		name  string
		topic string
		h     any
		opts  []broker.SubscribeOption
		want  string
	}{
		{"nil handler", "t", nil, nil, "nil handler"},
		{"not a func", "t", &Alert{}, nil, "want func(context.Context, *T) error"},
		{"no context", "t", func(*Alert) error { return nil }, nil, "want func(context.Context, *T) error"},
		{"no error", "t", func(context.Context, *Alert) {}, nil, "want func(context.Context, *T) error"},
		{"three args", "t", func(context.Context, *Alert, *Alert) error { return nil }, nil, "want func"},
		{"bad topic", "a b", ok, nil, `topic "a b": character ' '`},
		{"wildcard", "alerts.>", ok, nil, "wildcard"},
		{"bad queue", "t", ok, []broker.SubscribeOption{broker.WithQueue("a/b")}, `queue group "a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := s.Server().Subscribe(ctx, tt.topic, tt.h, tt.opts...)
			if !errors.Is(err, broker.ErrInvalid) || !strings.Contains(err.Error(), tt.want) || x != nil {
				t.Errorf("Subscribe = %v, %v; want ErrInvalid saying %q", x, err, tt.want)
			}
		})
	}
	if eps := s.Server().Endpoints(); slices.ContainsFunc(eps, func(e *registry.Endpoint) bool { return e.Metadata["subscriber"] == "true" }) {
		t.Errorf("a refused subscription is listed: %v", eps)
	}
	// A message that is not JSON cannot be published as JSON.
	if err := s.Client().Publish(ctx, "t", make(chan int)); err == nil || !strings.Contains(err.Error(), "encoding the message as application/json") {
		t.Errorf("Publish(chan) = %v", err)
	}
	if err := s.Client().Publish(ctx, "t", &Alert{}, client.WithContentType("text/plain")); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Publish as text/plain = %v, want ErrInvalid", err)
	}
}

// TestBrokerDownAtStart: a service that subscribes and whose broker cannot
// be reached fails to start when the connect timeout ends, saying where it
// tried; one that does not use its broker starts anyway.
func TestBrokerDownAtStart(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(testenv.FreePorts(t, 1)[0])
	reg := regmemory.New()
	newSvc := func(name string) *framework.Service {
		svc, err := framework.NewService(framework.WithName(name), framework.WithRegistry(reg),
			framework.WithBrokerName("nats", dead), framework.WithBrokerConnectTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Stop(context.Background()) })
		return svc
	}
	ctx := context.Background()
	quiet := newSvc("go.micro.srv.quiet")
	if err := quiet.Start(ctx); err != nil {
		t.Fatalf("a service that neither publishes nor subscribes failed to start: %v", err)
	}
	deaf := newSvc("go.micro.srv.deaf")
	if _, err := deaf.Server().Subscribe(ctx, "alerts", func(context.Context, *Alert) error { return nil }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := deaf.Start(ctx)
	if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("Start = %v, want ErrUnavailable naming %s", err, dead)
	}
	t.Logf("Start failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := reg.GetService(ctx, "go.micro.srv.deaf"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("the service that failed to start is registered: %v", err)
	}
	if err := quiet.Client().Publish(ctx, "alerts", &Alert{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("Publish = %v, want ErrUnavailable", err)
	}
}

// TestBrokerFlags: --broker and --broker_address pick and place the broker,
// a name not in the table is refused with the choices; --broker_format is
// taken by the brokers it means something to, and refused clearly by the
// others.
func TestBrokerFlags(t *testing.T) {
	svc, err := framework.NewService(framework.WithName("x"), framework.WithRegistryName("memory"),
		framework.WithArgs([]string{"svc", "--broker=nats", "--broker_address=127.0.0.1:4333,nats://127.0.0.1:4334", "--broker_connect_timeout=3"}))
	if err != nil {
		t.Fatal(err)
	}
	o := svc.Options()
	if o.BrokerName != "nats" || !slices.Equal(o.BrokerAddrs, []string{"127.0.0.1:4333", "nats://127.0.0.1:4334"}) ||
		o.BrokerConnectTimeout != 3*time.Second || o.Broker.String() != "nats" {
		t.Errorf("options %s %v %v %v", o.BrokerName, o.BrokerAddrs, o.BrokerConnectTimeout, o.Broker)
	}
	def, err := framework.NewService(framework.WithName("x"), framework.WithRegistryName("memory"))
	if err != nil {
		t.Fatal(err)
	}
	if def.Broker().String() != "http" {
		t.Errorf("default broker %s, want http", def.Broker())
	}
	for _, args := range []string{
		"--broker=nats --broker_format=go-micro", "--broker=nats --broker_format=nats",
		"--broker=http --broker_format=go-micro", "--broker=mqtt --broker_format=go-micro",
	} {
		svc, err := framework.NewService(framework.WithName("x"), framework.WithRegistryName("memory"),
			framework.WithArgs(append([]string{"svc"}, strings.Fields(args)...)))
		if err != nil {
			t.Errorf("%s: %v", args, err)
		} else if f := strings.TrimPrefix(strings.Fields(args)[1], "--broker_format="); svc.Options().BrokerFormat != f {
			t.Errorf("%s: format %q", args, svc.Options().BrokerFormat)
		}
	}
	t.Setenv("MICRO_BROKER_FORMAT", "go-micro")
	if svc, err := framework.NewService(framework.WithName("x"), framework.WithRegistryName("memory"),
		framework.WithArgs([]string{"svc", "--broker=nats"})); err != nil || svc.Options().BrokerFormat != "go-micro" {
		t.Errorf("MICRO_BROKER_FORMAT=go-micro: %v", err)
	}
	t.Setenv("MICRO_BROKER_FORMAT", "")
	if _, err := framework.NewService(framework.WithName("x"), framework.WithRegistryName("memory"),
		framework.WithBroker(memory.New()), framework.WithBrokerFormat("go-micro")); err == nil || !strings.Contains(err.Error(), "broker set in code") {
		t.Errorf("a format with a broker set in code: %v", err)
	}
	for args, want := range map[string]string{
		"--broker=nats --broker_format=json":       `nats broker: invalid: --broker_format "json": want one of ["go-micro" "nats"]`,
		"--broker_format=nats":                     `http broker: invalid: --broker_format "nats": it always sends go-micro's JSON message ("go-micro"); the formats are for --broker=nats`,
		"--broker=mqtt --broker_format=nats":       `mqtt broker: invalid: --broker_format "nats"`,
		"--broker=memory --broker_format=go-micro": `memory broker: invalid: it has no wire, so no --broker_format (got "go-micro")`,
		"--broker=kafka":                           `broker "kafka": unknown (have [http memory mqtt nats])`,
		"--broker=memory --broker_address=x:1":     "memory broker: it takes no address",
		"--broker_address=a:1,b:2":                 "http broker: one inbox address expected",
		"--broker=nats --broker_address=nats:///":  "nats broker: invalid address",
		"--broker_connect_timeout=soon":            `"soon" is neither seconds nor a duration`,
	} {
		_, err := framework.NewService(framework.WithName("x"), framework.WithRegistryName("memory"),
			framework.WithArgs(append([]string{"svc"}, strings.Fields(args)...)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", args, err, want)
		}
	}
}

package framework_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/mqtt/mosquittotest"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/gomicrotest"
	"github.com/microbot/microbot/internal/testenv"
	"github.com/microbot/microbot/proto/bot"
)

// consulService is a framework service on the Consul agent at addr with the
// default broker (http), stopped when the test ends.
func consulService(t *testing.T, addr, name string) *framework.Service {
	t.Helper()
	return newService(t, framework.WithName(name), framework.WithRegistryName("consul", addr))
}

// newService is a framework service with opts, stopped when the test ends.
func newService(t *testing.T, opts ...framework.Option) *framework.Service {
	t.Helper()
	svc, err := framework.NewService(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop %s: %v", svc.Name(), err)
		}
	})
	return svc
}

// execs records the ExecRequests a handler got, with their metadata.
type execs struct {
	mu   sync.Mutex
	args [][]string
	mds  []metadata.Metadata
}

func (x *execs) handle(ctx context.Context, r *bot.ExecRequest) error {
	md, _ := metadata.FromContext(ctx)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.args = append(x.args, r.GetArgs())
	x.mds = append(x.mds, md)
	return nil
}

func (x *execs) snapshot() ([][]string, []metadata.Metadata) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.args), slices.Clone(x.mds)
}

func (x *execs) count() int {
	a, _ := x.snapshot()
	return len(a)
}

// gomicroBus is a broker that go-micro programs and microbot services of
// these tests share, with the real server it needs.
type gomicroBus struct {
	name string
	// server starts the server (stopped when the test ends) and returns
	// the address the others take.
	server func(t *testing.T) string
	// service is a microbot service on the bus.
	service func(t *testing.T, addr, name string) *framework.Service
	// publisher and subscriber start the go-micro programs.
	publisher  func(tb testing.TB, addr string, args ...string) *gomicrotest.PublisherProcess
	subscriber func(tb testing.TB, addr string, args ...string) *gomicrotest.SubscriberProcess
	// goMicroQueues: go-micro's subscribers in one queue group share its
	// messages (each to one member); false: each gets every message.
	goMicroQueues bool
	// registry: go-micro's subscribers are in microbot's registry.
	registry bool
}

// gomicroBuses are the brokers tested against real go-micro: go-micro
// v1.8.0's http broker, found through a real Consul agent; go-micro
// v1.8.0's nats broker on a real nats-server (microbot's nats broker in its
// default format, go-micro's JSON message, the only one go-micro's nats
// subscribers read); and go-plugins v1.5.1's MQTT broker (go-micro v1.16.0)
// on a real mosquitto, which ignores queue groups.
var gomicroBuses = []gomicroBus{
	{
		name:          "http",
		server:        func(t *testing.T) string { return consultest.Start(t).Addr() },
		service:       consulService,
		publisher:     gomicrotest.StartPublisher,
		subscriber:    gomicrotest.StartSubscriber,
		goMicroQueues: true,
		registry:      true,
	},
	{
		name:   "nats",
		server: func(t *testing.T) string { return natstest.Start(t).Addr },
		service: func(t *testing.T, addr, name string) *framework.Service {
			return newService(t, framework.WithName(name), framework.WithRegistryName("memory"), framework.WithBrokerName("nats", addr))
		},
		publisher:     gomicrotest.StartNATSPublisher,
		subscriber:    gomicrotest.StartNATSSubscriber,
		goMicroQueues: true,
	},
	{
		name:   "go-plugins mqtt",
		server: func(t *testing.T) string { return mosquittotest.Start(t).Addr },
		service: func(t *testing.T, addr, name string) *framework.Service {
			return newService(t, framework.WithName(name), framework.WithRegistryName("memory"), framework.WithBrokerName("mqtt", addr))
		},
		publisher:  gomicrotest.StartPluginsPublisher,
		subscriber: gomicrotest.StartPluginsSubscriber,
	},
}

// TestGoMicroPublishesToUs: a go-micro program publishes with its client
// (protobuf and JSON, with metadata) and with its broker (raw), and
// microbot services subscribed through the same broker get every message:
// each plain subscriber once, one member of the queue group once. On each
// of gomicroBuses.
func TestGoMicroPublishesToUs(t *testing.T) {
	for _, bus := range gomicroBuses {
		t.Run(bus.name, func(t *testing.T) { goMicroPublishesToUs(t, bus) })
	}
}

func goMicroPublishesToUs(t *testing.T, bus gomicroBus) {
	addr := bus.server(t)
	ctx := context.Background()
	var plain execs
	var workers [2]execs
	raws := make(chan *broker.Event, 16)
	listener := bus.service(t, addr, "go.micro.srv.listener")
	if _, err := listener.Server().Subscribe(ctx, "gomicro.events", plain.handle); err != nil {
		t.Fatal(err)
	}
	if _, err := listener.Server().Subscribe(ctx, "gomicro.raw", func(ctx context.Context, e *broker.Event) error {
		raws <- e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := listener.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range workers {
		worker := bus.service(t, addr, "go.micro.srv.worker")
		if _, err := worker.Server().Subscribe(ctx, "gomicro.events", workers[i].handle, broker.WithQueue("workers")); err != nil {
			t.Fatal(err)
		}
		if err := worker.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}

	pub := bus.publisher(t, addr)
	const n = 20
	for i := range n {
		m := gomicrotest.Message{Topic: "gomicro.events", Args: []string{"deploy", strings.Repeat("x", i)},
			Metadata: map[string]string{"Micro-User": "alice"}}
		if i%2 == 1 {
			m.ContentType = "application/json"
		}
		if err := pub.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, wait, "every message reached the plain subscriber and the queue group", func() bool {
		return plain.count() == n && workers[0].count()+workers[1].count() == n
	})
	args, mds := plain.snapshot()
	seen := map[int]bool{}
	for i, a := range args {
		if len(a) != 2 || a[0] != "deploy" {
			t.Fatalf("message %d: args %q", i, a)
		}
		seen[len(a[1])] = true
		md := mds[i]
		for k, want := range map[string]string{"Micro-User": "alice", "Micro-Topic": "gomicro.events"} {
			if v, _ := md.Get(k); v != want {
				t.Errorf("message %d: metadata %s = %q, want %q (%v)", i, k, v, want, md)
			}
		}
		if ct, _ := md.Get("Content-Type"); ct != "application/protobuf" && ct != "application/json" {
			t.Errorf("message %d: Content-Type %q", i, ct)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct messages of %d", len(seen), n)
	}
	time.Sleep(200 * time.Millisecond) // a duplicate to the group would show by now; not needed for the counts above
	if got := workers[0].count() + workers[1].count(); got != n {
		t.Errorf("the queue group got %d messages, want %d (each once)", got, n)
	}

	if err := pub.Publish(ctx, gomicrotest.Message{Topic: "gomicro.raw", Raw: true,
		Header: map[string]string{"Source": "script"}, Body: []byte("\x00raw\xffbytes")}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-raws:
		if e.Topic != "gomicro.raw" || e.Header["Source"] != "script" || string(e.Body) != "\x00raw\xffbytes" {
			t.Errorf("raw message: %+v %q", e, e.Body)
		}
	case <-time.After(wait):
		t.Fatal("the raw message never arrived")
	}
}

// TestWePublishToGoMicro: microbot publishes with client.Publish (JSON and
// protobuf, with metadata) and its broker (raw), and go-micro services
// subscribed with go-micro's server and broker get every message: the
// plain subscriber once, one member of the queue group once (each member
// every message where go-micro's broker has no queue groups). The registry
// shows go-micro's subscriber as `get service` lists it, where go-micro's
// broker registers it. On each of gomicroBuses.
func TestWePublishToGoMicro(t *testing.T) {
	for _, bus := range gomicroBuses {
		t.Run(bus.name, func(t *testing.T) { wePublishToGoMicro(t, bus) })
	}
}

func wePublishToGoMicro(t *testing.T, bus gomicroBus) {
	addr := bus.server(t)
	ctx := context.Background()
	plain := bus.subscriber(t, addr, "--topics=micro.events")
	var group []*gomicrotest.SubscriberProcess
	for range 2 {
		group = append(group, bus.subscriber(t, addr, "--topics=micro.events", "--queue=gmworkers",
			"--server_name=go.micro.srv.gmworker"))
	}
	raw := bus.subscriber(t, addr, "--topics=micro.raw", "--raw", "--server_name=go.micro.srv.gmraw")

	pub := bus.service(t, addr, "go.micro.srv.publisher")
	mctx := metadata.NewContext(ctx, metadata.Metadata{"Micro-User": "bob"})
	const n = 20
	for i := range n {
		var opts []client.CallOption
		if i%2 == 1 {
			opts = append(opts, client.WithContentType("application/protobuf"))
		}
		if err := pub.Client().Publish(mctx, "micro.events", &bot.ExecRequest{Args: []string{"run", strings.Repeat("y", i)}}, opts...); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]bool{}
	for range n {
		e, err := plain.Next(wait)
		if err != nil {
			t.Fatal(err)
		}
		if e.Topic != "micro.events" || len(e.Args) != 2 || e.Args[0] != "run" || e.Header["Micro-User"] != "bob" ||
			e.Header["Micro-Topic"] != "micro.events" || len(e.Header["Micro-Id"]) != 36 {
			t.Errorf("go-micro got %+v", e)
		}
		seen[len(e.Args[1])] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct messages of %d", len(seen), n)
	}
	got := [2]int{}
	want := n // for the group
	if !bus.goMicroQueues {
		want = 2 * n // go-plugins' broker ignores queue groups: each member gets every message
	}
	for total := 0; total < want; total++ {
		select {
		case <-group[0].Events():
			got[0]++
		case <-group[1].Events():
			got[1]++
		case <-time.After(wait):
			t.Fatalf("the queue group got %v of %d messages", got, want)
		}
	}
	if bus.goMicroQueues && (got[0] == 0 || got[1] == 0) {
		t.Errorf("the group's messages all went to one member: %v", got)
	}
	if !bus.goMicroQueues && got != [2]int{n, n} {
		t.Errorf("without queue groups each member should get the %d messages: %v", n, got)
	}
	for i, g := range group {
		if e, err := g.Next(300 * time.Millisecond); err == nil {
			t.Errorf("group member %d got a message twice or more: %+v", i, e)
		}
	}

	if err := pub.Broker().Publish(ctx, "micro.raw", &broker.Message{Header: map[string]string{"Source": "us"}, Body: []byte("\x00raw\xffbytes")}); err != nil {
		t.Fatal(err)
	}
	e, err := raw.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	if e.Topic != "micro.raw" || e.Header["Source"] != "us" || string(e.Body) != "\x00raw\xffbytes" {
		t.Errorf("raw message at go-micro: %+v %q", e, e.Body)
	}

	if !bus.registry {
		return
	}
	// go-micro's subscriber, as microbot's registry reads it.
	svcs, err := pub.Registry().GetService(ctx, "go.micro.srv.subscriber")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ep := range svcs[0].Endpoints {
		if ep.Name == "Func" && ep.Metadata["subscriber"] == "true" && ep.Metadata["topic"] == "micro.events" {
			found = true
		}
	}
	if !found {
		t.Errorf("go-micro's subscriber endpoint is not listed: %+v", svcs[0].Endpoints)
	}
}

// TestMixedQueueGroup: a queue group of a go-micro subscriber and a
// microbot one, of the same name: the events that go-micro's client and
// microbot's publish go to one member each, and both members get some. On
// each of gomicroBuses whose go-micro broker has queue groups.
func TestMixedQueueGroup(t *testing.T) {
	for _, bus := range gomicroBuses {
		if !bus.goMicroQueues {
			continue
		}
		t.Run(bus.name, func(t *testing.T) { mixedQueueGroup(t, bus) })
	}
}

func mixedQueueGroup(t *testing.T, bus gomicroBus) {
	addr := bus.server(t)
	ctx := context.Background()
	const topic, queue, n = "mixed.events", "mixed", 40
	gmMember := bus.subscriber(t, addr, "--topics="+topic, "--queue="+queue, "--server_name=go.micro.srv.mixed")
	var ours execs
	member := bus.service(t, addr, "go.micro.srv.mixed")
	if _, err := member.Server().Subscribe(ctx, topic, ours.handle, broker.WithQueue(queue)); err != nil {
		t.Fatal(err)
	}
	if err := member.Start(ctx); err != nil {
		t.Fatal(err)
	}
	gmPub := bus.publisher(t, addr)
	pub := bus.service(t, addr, "go.micro.srv.mixedpub")
	for i := range n {
		args := []string{"mixed", strconv.Itoa(i)}
		var err error
		if i%2 == 0 {
			err = gmPub.Publish(ctx, gomicrotest.Message{Topic: topic, Args: args})
		} else {
			err = pub.Client().Publish(ctx, topic, &bot.ExecRequest{Args: args})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	var theirs int
	testenv.Eventually(t, wait, "every event reached the group", func() bool {
		for {
			select {
			case e := <-gmMember.Events():
				theirs++
				seen[strings.Join(e.Args, " ")]++
				continue
			default:
			}
			break
		}
		return theirs+ours.count() >= n
	})
	args, _ := ours.snapshot()
	for _, a := range args {
		seen[strings.Join(a, " ")]++
	}
	if e, err := gmMember.Next(300 * time.Millisecond); err == nil { // a duplicate would show by now
		theirs++
		seen[strings.Join(e.Args, " ")]++
	}
	if got := ours.count(); got+theirs != n || len(seen) != n {
		t.Errorf("the group got %d+%d events, %d distinct, want each of %d once", theirs, got, len(seen), n)
	}
	if theirs == 0 || ours.count() == 0 {
		t.Errorf("go-micro's member got %d events, microbot's %d: want both some", theirs, ours.count())
	}
}

package gomicrotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// The publish and subscribe programs of tools/gomicro/cmd (go-micro v1.8.0
// with its default http broker, or its nats broker with --broker=nats
// --broker_address=nats://...).
const (
	// Subscriber is a service (go.micro.srv.subscriber) subscribed to the
	// topics of --topics, in --queue's group if given, printing each
	// go.micro.bot.ExecRequest it gets (see [StartSubscriber]).
	Subscriber = "subscriber"
	// Publisher publishes what it reads on stdin with go-micro's client or
	// broker (see [StartPublisher]).
	Publisher = "publisher"
)

// The programs of tools/gomicro/plugins: [Subscriber] and [Publisher] of
// go-micro v1.16.0 on go-plugins v1.5.1's MQTT broker.
const (
	// PluginsSubscriber is [Subscriber] on go-plugins' MQTT broker (see
	// [StartPluginsSubscriber]). go-plugins v1.5.1 ignores --queue: every
	// subscriber gets every message.
	PluginsSubscriber = "plugins/subscriber"
	// PluginsPublisher is [Publisher] on go-plugins' MQTT broker (see
	// [StartPluginsPublisher]).
	PluginsPublisher = "plugins/publisher"
)

// PluginsFlags returns the go-micro flags the programs of
// tools/gomicro/plugins are started with: go-plugins' MQTT broker on the
// MQTT server at mqttAddr (host:port), the memory registry (nothing to
// run; MQTT needs no registry), the server on loopback.
func PluginsFlags(mqttAddr string) []string {
	return []string{
		"--registry=memory",
		"--broker=mqtt",
		"--broker_address=tcp://" + mqttAddr,
		"--server_address=127.0.0.1:0",
	}
}

// NATSFlags returns the go-micro flags [StartNATSSubscriber] and
// [StartNATSPublisher] add: go-micro v1.8.0's nats broker on the NATS
// server at natsAddr (host:port), the memory registry (nothing to run;
// NATS needs no registry), the server on loopback.
func NATSFlags(natsAddr string) []string {
	return []string{
		"--registry=memory",
		"--broker=nats",
		"--broker_address=nats://" + natsAddr,
		"--server_address=127.0.0.1:0",
	}
}

// Event is a message a [SubscriberProcess] got: the topic, the headers
// (go-micro's metadata: Content-Type, Micro-Topic, Micro-Id and the
// publisher's), and the ExecRequest's args, or the raw body with --raw.
type Event struct {
	Topic  string            `json:"topic"`
	Header map[string]string `json:"header"`
	Args   []string          `json:"args"`
	Body   []byte            `json:"body"`
}

// SubscriberProcess is a running [Subscriber] program.
type SubscriberProcess struct {
	p      *testenv.Proc
	events chan Event // closed at EOF
}

// StartSubscriber starts the subscriber program registered in the Consul
// agent at registryAddr, with args added to the flags of [Flags]
// (--topics=a,b, --queue=group, --raw, --server_name=...), and waits until
// it has subscribed to each topic. It is stopped when the test ends. If
// the binary is missing, it fails the test under CI=true and skips it
// otherwise.
func StartSubscriber(tb testing.TB, registryAddr string, args ...string) *SubscriberProcess {
	tb.Helper()
	return startSubscriber(tb, Subscriber, append(Flags(registryAddr), args...))
}

// StartPluginsSubscriber is [StartSubscriber] with [PluginsSubscriber],
// on the MQTT server at mqttAddr (host:port) with [PluginsFlags]; it
// returns once go-plugins' broker has subscribed to each topic (the server
// has acknowledged the subscription).
func StartPluginsSubscriber(tb testing.TB, mqttAddr string, args ...string) *SubscriberProcess {
	tb.Helper()
	return startSubscriber(tb, PluginsSubscriber, append(PluginsFlags(mqttAddr), args...))
}

// StartNATSSubscriber is [StartSubscriber] on go-micro's nats broker,
// with [NATSFlags].
func StartNATSSubscriber(tb testing.TB, natsAddr string, args ...string) *SubscriberProcess {
	tb.Helper()
	return startSubscriber(tb, Subscriber, append(NATSFlags(natsAddr), args...))
}

func startSubscriber(tb testing.TB, program string, args []string) *SubscriberProcess {
	tb.Helper()
	var topics int
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--topics="); ok {
			topics = len(strings.Split(v, ","))
		}
	}
	s := &SubscriberProcess{events: make(chan Event, 1024)}
	p, stdin, stdout := start(tb, program, true, args, func(_ context.Context, p *testenv.Proc) error {
		out := p.Output()
		if n := strings.Count(out, "Subscribing ") + strings.Count(out, "raw subscriber of "); n < topics {
			return fmt.Errorf("subscribed to %d of %d topics", n, topics)
		}
		return nil
	})
	s.p = p
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var e Event
			if bytes.HasPrefix(sc.Bytes(), []byte("{")) && json.Unmarshal(sc.Bytes(), &e) == nil {
				s.events <- e
			}
		}
	}()
	tb.Cleanup(func() { stdin.Close() })
	return s
}

// Next returns the next event, or an error if none came within timeout.
func (s *SubscriberProcess) Next(timeout time.Duration) (Event, error) {
	select {
	case e, ok := <-s.events:
		if !ok {
			return Event{}, fmt.Errorf("subscriber exited:\n%s", s.p.Output())
		}
		return e, nil
	case <-time.After(timeout):
		return Event{}, fmt.Errorf("no event within %v:\n%s", timeout, s.p.Output())
	}
}

// Events returns the channel of the events, closed when the program exits.
func (s *SubscriberProcess) Events() <-chan Event { return s.events }

// Output returns what the subscriber logged so far.
func (s *SubscriberProcess) Output() string { return s.p.Output() }

// Stop stops the subscriber as an operator would (SIGTERM: go-micro
// deregisters it).
func (s *SubscriberProcess) Stop() error { return s.p.Stop() }

// PublisherProcess is a running [Publisher] program.
type PublisherProcess struct {
	p     *testenv.Proc
	mu    sync.Mutex
	stdin io.WriteCloser
	lines chan []byte
}

// StartPublisher starts the publisher program finding subscribers in the
// Consul agent at registryAddr. It is stopped when the test ends. If the
// binary is missing, it fails the test under CI=true and skips it
// otherwise.
func StartPublisher(tb testing.TB, registryAddr string, args ...string) *PublisherProcess {
	tb.Helper()
	return startPublisher(tb, Publisher, append(Flags(registryAddr), args...))
}

// StartPluginsPublisher is [StartPublisher] with [PluginsPublisher], on
// the MQTT server at mqttAddr (host:port) with [PluginsFlags]. go-plugins'
// broker connects on the first Publish.
func StartPluginsPublisher(tb testing.TB, mqttAddr string, args ...string) *PublisherProcess {
	tb.Helper()
	return startPublisher(tb, PluginsPublisher, append(PluginsFlags(mqttAddr), args...))
}

// StartNATSPublisher is [StartPublisher] on go-micro's nats broker, with
// [NATSFlags].
func StartNATSPublisher(tb testing.TB, natsAddr string, args ...string) *PublisherProcess {
	tb.Helper()
	return startPublisher(tb, Publisher, append(NATSFlags(natsAddr), args...))
}

func startPublisher(tb testing.TB, program string, args []string) *PublisherProcess {
	tb.Helper()
	p, stdin, stdout := start(tb, program, true, args, nil)
	c := &PublisherProcess{p: p, stdin: stdin, lines: make(chan []byte, 1)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if bytes.HasPrefix(sc.Bytes(), []byte("{")) {
				c.lines <- bytes.Clone(sc.Bytes())
			}
		}
	}()
	tb.Cleanup(func() { stdin.Close() })
	return c
}

// Message is what a [PublisherProcess] publishes: an ExecRequest with Args
// through go-micro's client (ContentType: application/protobuf when empty,
// or application/json; Metadata as headers), or with Raw the Header and
// Body on go-micro's broker itself. [Publisher] also publishes a
// go.micro.bot.Notification (protobuf by default) instead of an
// ExecRequest, and [PluginsPublisher] JSON (any JSON value, as
// application/json).
type Message struct {
	Topic       string            `json:"topic"`
	Args        []string          `json:"args,omitempty"`
	JSON        json.RawMessage   `json:"json,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Raw         bool              `json:"raw,omitempty"`
	Header      map[string]string `json:"header,omitempty"`
	Body        []byte            `json:"body,omitempty"`
	// Notification is a go.micro.bot.Notification in protobuf's JSON
	// mapping, published instead of the ExecRequest.
	Notification json.RawMessage `json:"notification,omitempty"`
}

// Publish hands m to go-micro (whose http broker, like go-plugins' MQTT
// broker, then sends it in the background) and returns go-micro's error, if
// any.
func (c *PublisherProcess) Publish(ctx context.Context, m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("publisher: writing: %w\n%s", err, c.p.Output())
	}
	select {
	case ans, ok := <-c.lines:
		if !ok {
			<-c.p.Exited()
			return fmt.Errorf("publisher exited (%v):\n%s", c.p.Err(), c.p.Output())
		}
		var a struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(ans, &a); err != nil {
			return fmt.Errorf("publisher: bad answer %q: %w", ans, err)
		}
		if !a.OK {
			return fmt.Errorf("go-micro: %s", a.Error)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publisher: no answer: %w\n%s", ctx.Err(), c.p.Output())
	}
}

// Output returns what the publisher logged so far.
func (c *PublisherProcess) Output() string { return c.p.Output() }

package nats_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/brokertest"
	"github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/internal/testenv"
)

const wait = 20 * time.Second

// newBroker returns a broker in format f ("": the default).
func newBroker(t *testing.T, f nats.Format, addrs ...string) broker.Broker {
	t.Helper()
	opts := []nats.Option{nats.WithAddrs(addrs...)}
	if f != "" {
		opts = append(opts, nats.WithFormat(f))
	}
	b, err := nats.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance holds the broker to the suite in each format it
// publishes in.
func TestConformance(t *testing.T) {
	srv := natstest.Start(t)
	for _, f := range nats.Formats() {
		t.Run(string(f), func(t *testing.T) {
			brokertest.Run(t, func(t *testing.T) brokertest.Bus {
				return func(t *testing.T) broker.Broker { return newBroker(t, f, srv.Addr) }
			},
				brokertest.WithRestart(func(t *testing.T) { srv.Restart() }),
				brokertest.WithUnreachable(func(t *testing.T) broker.Broker {
					return newBroker(t, f, "127.0.0.1:"+itoa(testenv.FreePorts(t, 1)[0]))
				}),
			)
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// connected returns a connected broker in format f, disconnected when the
// test ends.
func connected(t *testing.T, f nats.Format, addr string) broker.Broker {
	t.Helper()
	b := newBroker(t, f, addr)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = b.Disconnect(ctx)
	})
	return b
}

// plainConn is a plain nats.go connection, as any NATS client (and
// go-micro's nats broker) has.
func plainConn(t *testing.T, addr string) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect("nats://"+addr, natsgo.Timeout(wait))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestWire: what a plain NATS client sees of each format, byte for byte
// as go-micro's nats broker would read it.
func TestWire(t *testing.T) {
	srv := natstest.Start(t)
	nc := plainConn(t, srv.Addr)
	for _, tt := range []struct {
		format nats.Format
		msg    broker.Message
		header natsgo.Header // the NATS headers seen
		data   string        // the payload seen
	}{
		{nats.FormatNATS, broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"a":1}`)},
			natsgo.Header{"Content-Type": {"application/json"}}, `{"a":1}`},
		{nats.FormatNATS, broker.Message{Body: []byte("\x00raw")}, nil, "\x00raw"},
		{nats.FormatGoMicro, broker.Message{Header: map[string]string{"Content-Type": "application/json", "Micro-Topic": "wire"}, Body: []byte(`{"a":1}`)},
			nil, `{"Header":{"Content-Type":"application/json","Micro-Topic":"wire"},"Body":"eyJhIjoxfQ=="}`},
		{nats.FormatGoMicro, broker.Message{}, nil, `{"Header":null,"Body":null}`},
		{"", broker.Message{Header: map[string]string{"A": "b"}, Body: []byte("x")}, nil, `{"Header":{"A":"b"},"Body":"eA=="}`}, // the default
	} {
		t.Run(cmp.Or(string(tt.format), "default"), func(t *testing.T) {
			sub, err := nc.SubscribeSync("wire")
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			b := connected(t, tt.format, srv.Addr)
			if err := b.Publish(context.Background(), "wire", &tt.msg); err != nil {
				t.Fatal(err)
			}
			m, err := sub.NextMsg(wait)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Data) != tt.data || len(m.Header) != len(tt.header) || !maps.EqualFunc(m.Header, tt.header, func(a, b []string) bool { return a[0] == b[0] }) {
				t.Errorf("NATS message: header %v data %q, want %v %q", m.Header, m.Data, tt.header, tt.data)
			}
		})
	}

	// Headers that no broker takes are refused in either format.
	for _, f := range nats.Formats() {
		b := connected(t, f, srv.Addr)
		err := b.Publish(context.Background(), "wire", &broker.Message{Header: map[string]string{"Bad\nName": "x"}})
		if !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("%s: a bad header: %v, want ErrInvalid", f, err)
		}
	}
}

// TestReceive: what a subscriber makes of what plain NATS clients send,
// go-micro's nats broker among them.
func TestReceive(t *testing.T) {
	srv := natstest.Start(t)
	nc := plainConn(t, srv.Addr)
	b := connected(t, nats.FormatNATS, srv.Addr)
	got := make(chan *broker.Event, 16)
	if _, err := b.Subscribe(context.Background(), "recv", func(_ context.Context, e *broker.Event) error {
		got <- e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	gomicro := func(h map[string]string, body []byte) string { // as go-micro's JSON codec writes broker.Message
		p, err := json.Marshal(struct {
			Header map[string]string
			Body   []byte
		}{h, body})
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	for _, tt := range []struct {
		name   string
		header natsgo.Header
		data   string
		want   map[string]string
		body   string
	}{
		{"go-micro's message", nil, gomicro(map[string]string{"Content-Type": "application/protobuf", "Micro-Topic": "recv"}, []byte("\x0a\x02hi")),
			map[string]string{"Content-Type": "application/protobuf", "Micro-Topic": "recv"}, "\x0a\x02hi"},
		{"go-micro's empty message", nil, gomicro(nil, nil), nil, ""},
		{"JSON", nil, `{"name":"x"}`, nil, `{"name":"x"}`},
		{"not JSON", nil, "\x00\xffraw", nil, "\x00\xffraw"},
		{"with NATS headers, taken as is", natsgo.Header{"Content-Type": {"application/json"}}, gomicro(map[string]string{"A": "b"}, []byte("x")),
			map[string]string{"Content-Type": "application/json"}, gomicro(map[string]string{"A": "b"}, []byte("x"))},
		{"malformed: a header not a string", nil, `{"Header":{"n":1},"Body":"eA=="}`, nil, `{"Header":{"n":1},"Body":"eA=="}`},
		{"malformed: Body not base64", nil, `{"Header":null,"Body":"x!"}`, nil, `{"Header":null,"Body":"x!"}`},
		{"malformed: a third key", nil, `{"Header":null,"Body":null,"x":1}`, nil, `{"Header":null,"Body":null,"x":1}`},
		{"an application's header and body", nil, `{"header":{"a":"b"},"body":"eA=="}`, nil, `{"header":{"a":"b"},"body":"eA=="}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := nc.PublishMsg(&natsgo.Msg{Subject: "recv", Header: tt.header, Data: []byte(tt.data)}); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-got:
				if !maps.Equal(e.Header, tt.want) || string(e.Body) != tt.body {
					t.Errorf("event: header %v body %q, want %v %q", e.Header, e.Body, tt.want, tt.body)
				}
			case <-time.After(wait):
				t.Fatal("nothing delivered")
			}
		})
	}
}

func TestNewRefusesAnUnknownFormat(t *testing.T) {
	_, err := nats.New(nats.WithFormat("json"))
	if !errors.Is(err, broker.ErrInvalid) {
		t.Fatalf("New with format json: %v, want ErrInvalid", err)
	}
	if want := `format "json": want "go-micro" or "nats"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/mqtt"
	"github.com/microbot/microbot/framework/broker/mqtt/mosquittotest"
	"github.com/microbot/microbot/internal/gomicrotest"
)

// TestWireAsGoPlugins compares, on a real mosquitto, what go-plugins v1.5.1's
// MQTT broker (go-micro v1.16.0, internal/gomicrotest's plugins publisher)
// and this broker put on the wire, as a bare MQTT client subscribed to
// every topic sees it: the topic as given, QoS 1, not retained, and a
// payload that is a JSON object of exactly Header (strings) and Body
// (base64), the same for a raw message of both.
func TestWireAsGoPlugins(t *testing.T) {
	srv := mosquittotest.Start(t)
	seen := observe(t, srv.URL())

	gp := gomicrotest.StartPluginsPublisher(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw := gomicrotest.Message{Topic: "wire.theirs", Raw: true, Header: map[string]string{"Source": "x"}, Body: []byte("\x00raw\xff")}
	if err := gp.Publish(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if err := gp.Publish(ctx, gomicrotest.Message{Topic: "wire.theirs.client", Args: []string{"a"}, Metadata: map[string]string{"Micro-User": "u"}}); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, mqtt.WithAddrs(srv.Addr))
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Disconnect(context.Background()) })
	if err := b.Publish(ctx, "wire.ours", &broker.Message{Header: raw.Header, Body: raw.Body}); err != nil {
		t.Fatal(err)
	}

	got := map[string]paho.Message{}
	for len(got) < 3 {
		select {
		case m := <-seen:
			got[m.Topic()] = m
		case <-ctx.Done():
			t.Fatalf("saw %d of the 3 messages", len(got))
		}
	}
	envelopes := map[string]envelope{}
	for topic, m := range got {
		if m.Qos() != 1 || m.Retained() {
			t.Errorf("%s: QoS %d, retained %v; want QoS 1, not retained", topic, m.Qos(), m.Retained())
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(m.Payload(), &keys); err != nil {
			t.Errorf("%s: payload %q is not a JSON object: %v", topic, m.Payload(), err)
			continue
		}
		if k := slices.Sorted(maps.Keys(keys)); !slices.Equal(k, []string{"Body", "Header"}) {
			t.Errorf("%s: payload keys %q, want Body and Header: %s", topic, k, m.Payload())
		}
		var e envelope
		if err := json.Unmarshal(m.Payload(), &e); err != nil {
			t.Errorf("%s: payload %s: %v", topic, m.Payload(), err)
		}
		envelopes[topic] = e
	}
	theirs := envelopes["wire.theirs"]
	if theirs.Header["Source"] != "x" || !bytes.Equal(theirs.Body, raw.Body) {
		t.Errorf("go-plugins' raw message: %+v", theirs)
	}
	if !bytes.Equal(got["wire.theirs"].Payload(), got["wire.ours"].Payload()) {
		t.Errorf("the same message, different payloads:\ngo-plugins %s\nmicrobot   %s", got["wire.theirs"].Payload(), got["wire.ours"].Payload())
	}
	if c := envelopes["wire.theirs.client"]; c.Header["Micro-Topic"] != "wire.theirs.client" || c.Header["Content-Type"] != "application/protobuf" || c.Header["Micro-User"] != "u" {
		t.Errorf("go-micro's client.Publish: headers %v", c.Header)
	}
}

// envelope is go-micro's broker.Message as its JSON codec writes it.
type envelope struct {
	Header map[string]string
	Body   []byte
}

// observe subscribes a bare MQTT client to every topic (QoS 2, so each
// message arrives with the QoS it was published with) and returns what it
// sees.
func observe(t *testing.T, url string) <-chan paho.Message {
	t.Helper()
	seen := make(chan paho.Message, 64)
	o := paho.NewClientOptions().AddBroker(url).SetClientID("observer").SetCleanSession(true)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("observer: connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe("#", 2, func(_ paho.Client, m paho.Message) { seen <- m })
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("observer: subscribe: %v", tok.Error())
	}
	return seen
}

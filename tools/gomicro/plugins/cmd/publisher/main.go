// Command publisher publishes with go-micro v1.16.0 and go-plugins v1.5.1's
// MQTT broker, for microbot's tests of its mqtt broker against go-plugins'.
// It is tools/gomicro/cmd/publisher (go-micro v1.8.0, http broker) on
// MQTT: it reads one message a line on stdin,
//
//	{"topic": "alerts", "args": ["deploy", "web"],
//	 "content_type": "application/json", "metadata": {"Micro-User": "alice"}}
//
// and publishes a go.micro.bot.ExecRequest (go-micro's agent/proto) with
// go-micro's client (Content-Type, Micro-Topic, Micro-Id and the metadata
// as headers; protobuf when content_type is empty, go-micro's default), or
// with "json": {...} that JSON value instead (application/json), or with
// "raw": true the message {"header": ..., "body": base64} on the broker
// itself. It answers each line with {"ok": true} or {"error": "..."}.
// go-plugins' broker does not wait for the MQTT server's acknowledgement:
// "ok" means handed to the MQTT client, not delivered.
//
// The tests start it with --registry=memory --broker=mqtt
// --broker_address=tcp://127.0.0.1:PORT --server_address=127.0.0.1:0.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	micro "github.com/micro/go-micro"
	proto "github.com/micro/go-micro/agent/proto"
	"github.com/micro/go-micro/broker"
	"github.com/micro/go-micro/client"
	"github.com/micro/go-micro/metadata"

	"github.com/microbot/microbot/tools/gomicro/plugins/internal/mqttbroker"
)

// message is one line of stdin.
type message struct {
	Topic       string            `json:"topic"`
	Args        []string          `json:"args"`
	JSON        json.RawMessage   `json:"json"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata"`
	Raw         bool              `json:"raw"`
	Header      map[string]string `json:"header"`
	Body        []byte            `json:"body"`
}

type answer struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
}

func publish(service micro.Service, m message) error {
	if m.Raw {
		b := service.Client().Options().Broker
		if err := b.Connect(); err != nil {
			return err
		}
		return b.Publish(m.Topic, &broker.Message{Header: m.Header, Body: m.Body})
	}
	var payload interface{} = &proto.ExecRequest{Args: m.Args}
	if m.JSON != nil {
		payload, m.ContentType = m.JSON, "application/json"
	}
	var opts []client.MessageOption
	if m.ContentType != "" {
		ct := m.ContentType
		opts = append(opts, func(o *client.MessageOptions) { o.ContentType = ct })
	}
	ctx := context.Background()
	if m.Metadata != nil {
		ctx = metadata.NewContext(ctx, m.Metadata)
	}
	c := service.Client()
	return c.Publish(ctx, c.NewMessage(m.Topic, payload, opts...))
}

func main() {
	service := micro.NewService(micro.Name("go.micro.srv.publisher"), micro.Broker(mqttbroker.New()))
	service.Init()
	enc := json.NewEncoder(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m message
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			a.Error = fmt.Sprintf("bad line: %v", err)
		} else if err := publish(service, m); err != nil {
			a.Error = err.Error()
		} else {
			a.OK = true
		}
		if err := enc.Encode(a); err != nil {
			log.Fatal(err)
		}
	}
}

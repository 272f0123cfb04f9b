// Command publisher publishes with go-micro v1.8.0, as go-micro's users
// published events in 2019, for microbot's tests of its brokers against
// go-micro's (http, the default, and nats with --broker=nats
// --broker_address=nats://...). It reads one message a line on stdin,
//
//	{"topic": "alerts", "args": ["deploy", "web"],
//	 "content_type": "application/json", "metadata": {"Micro-User": "alice"}}
//
// and publishes a go.micro.bot.ExecRequest (go-micro's agent/proto) with
// go-micro's client (Content-Type, Micro-Topic, Micro-Id and the metadata
// as headers; protobuf when content_type is empty, go-micro's default); with
// "notification": {...} (in protobuf's JSON mapping), a
// go.micro.bot.Notification instead (microbot's proto/bot, generated as in
// 2019: ../../proto/notification); or with "raw": true the message
// {"header": ..., "body": base64} on the broker itself. It answers each line
// with {"ok": true} or {"error": "..."}. go-micro's brokers publish in the
// background: "ok" means handed over, not delivered.
//
// The tests start it with --registry=consul --registry_address=...
// --server_address=127.0.0.1:0 --broker_address=127.0.0.1:0.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/golang/protobuf/jsonpb"
	micro "github.com/micro/go-micro"
	proto "github.com/micro/go-micro/agent/proto"
	"github.com/micro/go-micro/broker"
	"github.com/micro/go-micro/client"
	"github.com/micro/go-micro/metadata"

	"github.com/microbot/microbot/tools/gomicro/proto/notification"
)

// message is one line of stdin.
type message struct {
	Topic       string            `json:"topic"`
	Args        []string          `json:"args"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata"`
	Raw         bool              `json:"raw"`
	Header      map[string]string `json:"header"`
	Body        []byte            `json:"body"`
	// Notification, if given, is published instead of an ExecRequest.
	Notification json.RawMessage `json:"notification"`
}

type answer struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
}

func publish(service micro.Service, m message) error {
	// The service is not run, so nothing connected its broker: go-micro's
	// nats broker has no connection until Connect (the http broker sends
	// without one). Connecting again does nothing.
	b := service.Client().Options().Broker
	if err := b.Connect(); err != nil {
		return err
	}
	if m.Raw {
		return b.Publish(m.Topic, &broker.Message{Header: m.Header, Body: m.Body})
	}
	var msg interface{} = &proto.ExecRequest{Args: m.Args}
	if len(m.Notification) > 0 {
		var n notification.Notification
		if err := jsonpb.UnmarshalString(string(m.Notification), &n); err != nil {
			return fmt.Errorf("notification: %v", err)
		}
		msg = &n
	}
	var opts []client.MessageOption
	if m.ContentType != "" {
		opts = append(opts, func(o *client.MessageOptions) { o.ContentType = m.ContentType })
	}
	ctx := context.Background()
	if m.Metadata != nil {
		ctx = metadata.NewContext(ctx, m.Metadata)
	}
	c := service.Client()
	return c.Publish(ctx, c.NewMessage(m.Topic, msg, opts...))
}

func main() {
	service := micro.NewService(micro.Name("go.micro.srv.publisher"))
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

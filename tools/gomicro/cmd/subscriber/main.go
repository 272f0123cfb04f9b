// Command subscriber is a go-micro v1.8.0 service that listens to topics as
// go-micro's users wrote subscribers in 2019, for microbot's tests of its
// brokers against go-micro's (http, the default, and nats with --broker=nats
// --broker_address=nats://...): every message it gets is printed on
// stdout as one JSON line,
//
//	{"topic": "alerts", "header": {...}, "args": ["deploy", "web"]}
//
// The messages are go.micro.bot.ExecRequest (go-micro's agent/proto), which
// microbot's proto/bot has too. By default it subscribes with
// micro.RegisterSubscriber (go-micro's server decodes the body by its
// Content-Type, JSON or protobuf, and passes the headers as metadata); with
// --raw it subscribes on the broker itself and prints the raw body
// ("body", base64) instead of args.
//
//	subscriber [go-micro flags] --topics=a,b [--queue=group] [--raw]
//
// The tests start it with --registry=consul --registry_address=...
// --server_address=127.0.0.1:0 --broker_address=127.0.0.1:0; its service
// is go.micro.srv.subscriber unless --server_name says otherwise.
package main

import (
	"context"
	"encoding/json"
	"log"
	"os"
	"strings"
	"sync"

	"github.com/micro/cli"
	micro "github.com/micro/go-micro"
	proto "github.com/micro/go-micro/agent/proto"
	"github.com/micro/go-micro/broker"
	"github.com/micro/go-micro/metadata"
	"github.com/micro/go-micro/server"
)

// event is what is printed for a message.
type event struct {
	Topic  string            `json:"topic"`
	Header map[string]string `json:"header"`
	Args   []string          `json:"args,omitempty"`
	Body   []byte            `json:"body,omitempty"`
}

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

func emit(e event) {
	out.Lock()
	defer out.Unlock()
	if err := out.enc.Encode(e); err != nil {
		log.Fatal(err)
	}
}

func main() {
	var topics []string
	var queue string
	var raw bool
	service := micro.NewService(
		micro.Name("go.micro.srv.subscriber"),
		micro.Flags(
			cli.StringFlag{Name: "topics", Usage: "comma-separated topics to subscribe to"},
			cli.StringFlag{Name: "queue", Usage: "queue group"},
			cli.BoolFlag{Name: "raw", Usage: "subscribe on the broker, print raw bodies"},
		),
	)
	service.Init(micro.Action(func(c *cli.Context) {
		topics = strings.Split(c.String("topics"), ",")
		queue, raw = c.String("queue"), c.Bool("raw")
	}))

	for _, topic := range topics {
		topic := topic
		if raw {
			b := service.Server().Options().Broker
			if err := b.Connect(); err != nil {
				log.Fatal(err)
			}
			var opts []broker.SubscribeOption
			if queue != "" {
				opts = append(opts, broker.Queue(queue))
			}
			_, err := b.Subscribe(topic, func(p broker.Event) error {
				emit(event{Topic: p.Topic(), Header: p.Message().Header, Body: p.Message().Body})
				return nil
			}, opts...)
			if err != nil {
				log.Fatal(err)
			}
			log.Printf("raw subscriber of %s", topic)
			continue
		}
		var opts []server.SubscriberOption
		if queue != "" {
			opts = append(opts, server.SubscriberQueue(queue))
		}
		err := micro.RegisterSubscriber(topic, service.Server(), func(ctx context.Context, req *proto.ExecRequest) error {
			md, _ := metadata.FromContext(ctx)
			emit(event{Topic: topic, Header: md, Args: req.Args})
			return nil
		}, opts...)
		if err != nil {
			log.Fatal(err)
		}
	}
	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}

// Command command is a bot command service written with go-micro v1.16.0 and
// go-micro's own agent/proto (the Command service of go.micro.bot), as the
// echo example of the micro bot's documentation was written in 2019, for
// microbot's tests of go-micro compatibility.
//
// It registers as go.micro.bot.echo unless --server_name names another
// service of the namespace (go.micro.bot.NAME is the command NAME). Exec
// answers, like the documentation's example, every word it was given
// (the command word included), except for:
//
//	NAME fail [text]   the handler returns an error (go-micro v1.16.0 then
//	                   closes the connection)
//	NAME error [text]  ExecResponse.error is set instead of the result
//	NAME count         how often Exec ran, this call included
//	NAME await FILE    reports "waiting for FILE" as progress, then answers
//	                   "saw FILE" once the file exists: the progress is a
//	                   Notification in JSON published with go-micro's own
//	                   client on the topic the bot gave in the request's
//	                   metadata (Micro-Progress-Topic), with the Exec
//	                   context, whose metadata (the run id,
//	                   Micro-Progress-Run, with it) go-micro sends as the
//	                   message's headers
//
// It takes go-micro's own flags; the tests start it with
//
//	command --registry=consul --registry_address=127.0.0.1:PORT \
//	        --server_address=127.0.0.1:0 --broker_address=127.0.0.1:0
package main

import (
	"context"
	"log"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	micro "github.com/micro/go-micro"
	proto "github.com/micro/go-micro/agent/proto"
	"github.com/micro/go-micro/client"
	"github.com/micro/go-micro/errors"
	"github.com/micro/go-micro/metadata"

	// go-plugins' Consul registry, as its README says: its init adds
	// "consul" to go-micro's cmd.DefaultRegistries, for --registry=consul
	// (go-micro v1.16.0 has no Consul registry of its own).
	_ "github.com/micro/go-plugins/registry/consul"
)

// Command is the handler of Command.Help and Command.Exec.
type Command struct {
	name   string // the command word
	client client.Client
	execs  int64
}

// Help returns the command usage.
func (c *Command) Help(ctx context.Context, req *proto.HelpRequest, rsp *proto.HelpResponse) error {
	rsp.Usage = c.name + " [text]"
	rsp.Description = "Returns the [text] (a go-micro v1.16.0 command service)"
	return nil
}

// Exec executes the command.
func (c *Command) Exec(ctx context.Context, req *proto.ExecRequest, rsp *proto.ExecResponse) error {
	n := atomic.AddInt64(&c.execs, 1)
	log.Printf("executed Command.Exec %q (%d)", req.Args, n)
	if len(req.Args) > 1 {
		rest := strings.Join(req.Args[2:], " ")
		switch req.Args[1] {
		case "fail":
			return errors.InternalServerError("go.micro.bot."+c.name, "failed: %s", rest)
		case "error":
			rsp.Error = "error: " + rest
			return nil
		case "count":
			rsp.Result = []byte(strconv.FormatInt(n, 10))
			return nil
		case "await":
			return c.await(ctx, rest, rsp)
		}
	}
	rsp.Result = []byte(strings.Join(req.Args, " "))
	return nil
}

// await reports that it waits for file, as progress, and answers once the
// file exists.
func (c *Command) await(ctx context.Context, file string, rsp *proto.ExecResponse) error {
	md, _ := metadata.FromContext(ctx)
	topic := md["Micro-Progress-Topic"]
	if topic == "" {
		rsp.Error = "no progress topic in the request's metadata"
		return nil
	}
	msg := c.client.NewMessage(topic, map[string]string{"text": "waiting for " + file}, func(o *client.MessageOptions) { o.ContentType = "application/json" })
	if err := c.client.Publish(ctx, msg); err != nil {
		return errors.InternalServerError("go.micro.bot."+c.name, "progress: %v", err)
	}
	for {
		if _, err := os.Stat(file); err == nil {
			rsp.Result = []byte("saw " + file)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func main() {
	service := micro.NewService(
		micro.Name("go.micro.bot.echo"),
	)
	service.Init()

	name := strings.TrimPrefix(service.Server().Options().Name, "go.micro.bot.")
	proto.RegisterCommandHandler(service.Server(), &Command{name: name, client: service.Client()})

	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}

// Command command is a bot command service written with go-micro v1.8.0 and
// go-micro's own agent/proto (the Command service of go.micro.bot), as the
// echo example of the micro bot's documentation was written in 2019, for
// microbot's tests of go-micro compatibility.
//
// It registers as go.micro.bot.echo unless --server_name names another
// service of the namespace (go.micro.bot.NAME is the command NAME). Exec
// answers, like the documentation's example, every word it was given
// (the command word included), except for:
//
//	NAME fail [text]   the handler returns an error (go-micro v1.8.0 then
//	                   closes the connection)
//	NAME error [text]  ExecResponse.error is set instead of the result
//	NAME count         how often Exec ran, this call included
//
// It takes go-micro's own flags; the tests start it with
//
//	command --registry=consul --registry_address=127.0.0.1:PORT \
//	        --server_address=127.0.0.1:0 --broker_address=127.0.0.1:0
package main

import (
	"context"
	"log"
	"strconv"
	"strings"
	"sync/atomic"

	micro "github.com/micro/go-micro"
	proto "github.com/micro/go-micro/agent/proto"
	"github.com/micro/go-micro/errors"
)

// Command is the handler of Command.Help and Command.Exec.
type Command struct {
	name  string // the command word
	execs int64
}

// Help returns the command usage.
func (c *Command) Help(ctx context.Context, req *proto.HelpRequest, rsp *proto.HelpResponse) error {
	rsp.Usage = c.name + " [text]"
	rsp.Description = "Returns the [text] (a go-micro v1.8.0 command service)"
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
		}
	}
	rsp.Result = []byte(strings.Join(req.Args, " "))
	return nil
}

func main() {
	service := micro.NewService(
		micro.Name("go.micro.bot.echo"),
	)
	service.Init()

	name := strings.TrimPrefix(service.Server().Options().Name, "go.micro.bot.")
	proto.RegisterCommandHandler(service.Server(), &Command{name: name})

	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}

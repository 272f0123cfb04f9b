// Command greeter is the service go.micro.srv.greeter, the one to query from
// the bot:
//
//	query go.micro.srv.greeter Say.Hello {"name": "John"}
//	{"msg": "Hello John"}
//
// It takes the framework's flags (see framework.Flags), e.g.
//
//	greeter --registry=local --register_ttl=10s --server_address=127.0.0.1:0
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/microbot/microbot/framework"
)

// Request is the request of Say.Hello.
type Request struct {
	Name string `json:"name"`
}

// Response is the response of Say.Hello.
type Response struct {
	Msg string `json:"msg"`
}

// Say is the handler: its methods are the endpoints Say.*.
type Say struct{}

// Hello greets req.Name.
func (*Say) Hello(ctx context.Context, req *Request, rsp *Response) error {
	rsp.Msg = "Hello " + req.Name
	return nil
}

func main() {
	svc, err := framework.NewService(
		framework.WithName("go.micro.srv.greeter"),
		framework.WithVersion("1.0.0"),
		framework.WithArgs(os.Args), // --registry, --registry_address, ... (see framework.Flags)
	)
	if errors.Is(err, framework.ErrHelp) {
		return
	}
	if err != nil {
		slog.Error("greeter", "err", err)
		os.Exit(2)
	}
	if err := svc.Server().Handle(&Say{}); err != nil {
		slog.Error("greeter", "err", err)
		os.Exit(1)
	}
	if err := svc.Run(context.Background()); err != nil {
		slog.Error("greeter", "err", err)
		os.Exit(1)
	}
}

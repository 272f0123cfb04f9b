// Command client calls services with go-micro v1.16.0's own client, as the
// original `micro bot` and `micro call` did, for microbot's tests of go-micro
// compatibility: it finds the service in the registry, picks a node, and
// calls it over go-micro's transport with go-micro's codecs.
//
// One call, from the arguments:
//
//	client [go-micro flags] SERVICE ENDPOINT [JSON request]
//
// prints the response as JSON on stdout, or the error on stderr (exit 1).
// Without arguments it reads calls from stdin, one JSON object a line,
//
//	{"service": "go.micro.srv.greeter", "endpoint": "Say.Hello",
//	 "request": {"name": "John"}, "content_type": "application/json"}
//
// or {"get_service": "go.micro.srv.greeter"} to see a service as go-micro's
// registry reads it (the response is go-micro's []*registry.Service),
// and answers each on stdout with one line, {"response": ...} or
// {"error": {"id":..., "code":..., "detail":..., "status":...}}, all
// through the same client (so its connection pool is reused between
// calls). The content type defaults to go-micro's, application/protobuf;
// with it, the request and response are the protobuf messages of the
// endpoint (Say.*, Command.*, Debug.Health); with application/json any
// endpoint can be called with any JSON.
//
// The tests start it with --registry=consul --registry_address=... and
// --server_address=127.0.0.1:0 --broker_address=127.0.0.1:0.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/golang/protobuf/jsonpb"
	"github.com/golang/protobuf/proto"
	"github.com/micro/cli"
	micro "github.com/micro/go-micro"
	botproto "github.com/micro/go-micro/agent/proto"
	"github.com/micro/go-micro/client"
	debugproto "github.com/micro/go-micro/debug/proto"
	"github.com/micro/go-micro/errors"
	"github.com/micro/go-micro/registry"

	greeter "github.com/microbot/microbot/tools/gomicro/plugins/proto/greeter"

	// go-plugins' Consul registry, as its README says: its init adds
	// "consul" to go-micro's cmd.DefaultRegistries, for --registry=consul
	// (go-micro v1.16.0 has no Consul registry of its own).
	_ "github.com/micro/go-plugins/registry/consul"
)

// call is one call read from stdin.
type call struct {
	GetService  string          `json:"get_service"`
	Service     string          `json:"service"`
	Endpoint    string          `json:"endpoint"`
	Request     json.RawMessage `json:"request"`
	ContentType string          `json:"content_type"`
}

// result is the answer printed for a call.
type result struct {
	Response json.RawMessage `json:"response,omitempty"`
	Error    *errors.Error   `json:"error,omitempty"`
}

// messages returns new request and response messages of a protobuf
// endpoint.
func messages(endpoint string) (proto.Message, proto.Message, error) {
	switch endpoint {
	case "Say.Hello":
		return &greeter.Request{}, &greeter.Response{}, nil
	case "Say.Fail":
		return &greeter.FailRequest{}, &greeter.Response{}, nil
	case "Say.Count":
		return &greeter.CountRequest{}, &greeter.CountResponse{}, nil
	case "Command.Help":
		return &botproto.HelpRequest{}, &botproto.HelpResponse{}, nil
	case "Command.Exec":
		return &botproto.ExecRequest{}, &botproto.ExecResponse{}, nil
	case "Debug.Health":
		return &debugproto.HealthRequest{}, &debugproto.HealthResponse{}, nil
	}
	return nil, nil, fmt.Errorf("no protobuf messages known for %s: use application/json", endpoint)
}

// fail is the result of a call that failed with err.
func fail(err error) result { return result{Error: errors.Parse(err.Error())} }

func do(c client.Client, cl call) result {
	ct := cl.ContentType
	if ct == "" {
		ct = "application/protobuf"
	}
	if len(cl.Request) == 0 {
		cl.Request = json.RawMessage("{}")
	}
	var req, rsp interface{}
	if ct == "application/json" {
		req, rsp = cl.Request, &json.RawMessage{}
	} else {
		preq, prsp, err := messages(cl.Endpoint)
		if err != nil {
			return fail(errors.BadRequest("client", err.Error()))
		}
		if err := jsonpb.UnmarshalString(string(cl.Request), preq); err != nil {
			return fail(errors.BadRequest("client", "request: %v", err))
		}
		req, rsp = preq, prsp
	}
	r := c.NewRequest(cl.Service, cl.Endpoint, req, client.WithContentType(ct))
	if err := c.Call(context.Background(), r, rsp); err != nil {
		return fail(err)
	}
	if m, ok := rsp.(proto.Message); ok {
		s, err := (&jsonpb.Marshaler{OrigName: true}).MarshalToString(m)
		if err != nil {
			return fail(errors.InternalServerError("client", "response: %v", err))
		}
		return result{Response: json.RawMessage(s)}
	}
	return result{Response: *rsp.(*json.RawMessage)}
}

// get returns the named service as go-micro's registry reads it.
func get(r registry.Registry, name string) result {
	svcs, err := r.GetService(name)
	if err != nil {
		return fail(errors.NotFound("client", "get service %s: %v", name, err))
	}
	js, err := json.Marshal(svcs)
	if err != nil {
		return fail(errors.InternalServerError("client", "get service %s: %v", name, err))
	}
	return result{Response: js}
}

func main() {
	var args []string
	service := micro.NewService(
		micro.Name("go.micro.client.gomicro"),
		micro.Action(func(c *cli.Context) { args = c.Args() }),
	)
	service.Init()

	if len(args) > 0 {
		if len(args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: client [flags] SERVICE ENDPOINT [JSON request]")
			os.Exit(2)
		}
		cl := call{Service: args[0], Endpoint: args[1], ContentType: "application/json"}
		if len(args) > 2 {
			cl.Request = json.RawMessage(strings.Join(args[2:], " "))
		}
		res := do(service.Client(), cl)
		if res.Error != nil {
			fmt.Fprintln(os.Stderr, res.Error.Error())
			os.Exit(1)
		}
		fmt.Println(string(res.Response))
		return
	}

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if strings.TrimSpace(in.Text()) == "" {
			continue
		}
		var cl call
		res := result{}
		if err := json.Unmarshal(in.Bytes(), &cl); err != nil {
			res = fail(errors.BadRequest("client", "call: %v", err))
		} else if cl.GetService != "" {
			res = get(service.Options().Registry, cl.GetService)
		} else {
			res = do(service.Client(), cl)
		}
		if err := out.Encode(res); err != nil {
			os.Exit(1)
		}
	}
}

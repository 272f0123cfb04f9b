// Command client calls services with go-micro v0.10.0's own client (July
// 2018), which speaks only the old framings, for microbot's tests of
// go-micro compatibility. It reads calls from stdin, one JSON object a line,
//
//	{"service": "go.micro.srv.greeter", "endpoint": "Say.Hello",
//	 "request": {"name": "John"}, "content_type": "application/protobuf"}
//
// and answers each on stdout with one line, {"response": ...} or
// {"error": {"id":..., "code":..., "detail":..., "status":...}}. The content
// type defaults to go-micro v0.10.0's (application/octet-stream, framed as
// proto-rpc); application/json is framed as json-rpc. The endpoints it
// knows the messages of are Say.Hello, Say.Fail, Command.Help and
// Command.Exec.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	micro "github.com/micro/go-micro"
	"github.com/micro/go-micro/client"
	"github.com/micro/go-micro/errors"

	"github.com/microbot/microbot/tools/gomicro/v0/proto"
)

type call struct {
	Service     string          `json:"service"`
	Endpoint    string          `json:"endpoint"`
	Request     json.RawMessage `json:"request"`
	ContentType string          `json:"content_type"`
}

type result struct {
	Response interface{}   `json:"response,omitempty"`
	Error    *errors.Error `json:"error,omitempty"`
}

func fail(err error) result { return result{Error: errors.Parse(err.Error())} }

func messages(endpoint string) (interface{}, interface{}, error) {
	switch endpoint {
	case "Say.Hello", "Say.Fail":
		return &proto.Request{}, &proto.Response{}, nil
	case "Command.Help":
		return &proto.HelpRequest{}, &proto.HelpResponse{}, nil
	case "Command.Exec":
		return &proto.ExecRequest{}, &proto.ExecResponse{}, nil
	}
	return nil, nil, fmt.Errorf("no messages known for %s", endpoint)
}

func do(c client.Client, cl call) result {
	req, rsp, err := messages(cl.Endpoint)
	if err != nil {
		return fail(errors.BadRequest("client", err.Error()))
	}
	if len(cl.Request) > 0 {
		if err := json.Unmarshal(cl.Request, req); err != nil {
			return fail(errors.BadRequest("client", "request: %v", err))
		}
	}
	var opts []client.RequestOption
	if cl.ContentType != "" {
		opts = append(opts, client.WithContentType(cl.ContentType))
	}
	if err := c.Call(context.Background(), c.NewRequest(cl.Service, cl.Endpoint, req, opts...), rsp); err != nil {
		return fail(err)
	}
	return result{Response: rsp}
}

func main() {
	service := micro.NewService(micro.Name("go.micro.client.gomicro.v0"))
	service.Init()

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
		} else {
			res = do(service.Client(), cl)
		}
		if err := out.Encode(res); err != nil {
			os.Exit(1)
		}
	}
}

// Command greeter is go.micro.srv.greeter written with go-micro v1.16.0 as its
// users wrote services in 2019 (go-micro's examples/greeter), for microbot's
// tests of go-micro compatibility:
//
//	Say.Hello  {"name": "John"} -> {"msg": "Hello John"}
//	Say.Fail   {"code": 409, "detail": "no"} -> the error go-micro's
//	           errors.New("go.micro.srv.greeter", detail, code) (code 0: 500)
//	Say.Count  {"endpoint": "Say.Fail"} -> {"count": how often it ran}
//
// It takes go-micro's own flags; the tests start it with
//
//	greeter --registry=consul --registry_address=127.0.0.1:PORT \
//	        --server_address=127.0.0.1:0 --broker_address=127.0.0.1:0
//
// so that it stays on loopback (by default go-micro advertises the first
// non-loopback address of the host).
package main

import (
	"context"
	"log"
	"sync"

	micro "github.com/micro/go-micro"
	"github.com/micro/go-micro/errors"

	greeter "github.com/microbot/microbot/tools/gomicro/plugins/proto/greeter"

	// go-plugins' Consul registry, as its README says: its init adds
	// "consul" to go-micro's cmd.DefaultRegistries, for --registry=consul
	// (go-micro v1.16.0 has no Consul registry of its own).
	_ "github.com/micro/go-plugins/registry/consul"
)

// Say is the handler of the Say endpoints; it counts their executions.
type Say struct {
	mu     sync.Mutex
	counts map[string]int64
}

func (s *Say) ran(endpoint string) {
	s.mu.Lock()
	s.counts[endpoint]++
	n := s.counts[endpoint]
	s.mu.Unlock()
	log.Printf("executed %s (%d)", endpoint, n)
}

// Hello greets req.Name.
func (s *Say) Hello(ctx context.Context, req *greeter.Request, rsp *greeter.Response) error {
	s.ran("Say.Hello")
	rsp.Msg = "Hello " + req.Name
	return nil
}

// Fail answers the error asked for.
func (s *Say) Fail(ctx context.Context, req *greeter.FailRequest, rsp *greeter.Response) error {
	s.ran("Say.Fail")
	code := req.Code
	if code == 0 {
		code = 500
	}
	return errors.New("go.micro.srv.greeter", req.Detail, code)
}

// Count tells how often an endpoint ran.
func (s *Say) Count(ctx context.Context, req *greeter.CountRequest, rsp *greeter.CountResponse) error {
	s.mu.Lock()
	rsp.Count = s.counts[req.Endpoint]
	s.mu.Unlock()
	return nil
}

func main() {
	service := micro.NewService(
		micro.Name("go.micro.srv.greeter"),
		micro.Version("latest"),
	)
	service.Init()

	greeter.RegisterSayHandler(service.Server(), &Say{counts: map[string]int64{}})

	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}

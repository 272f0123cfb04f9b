// Command greeter is go.micro.srv.greeter written with go-micro v0.10.0
// (July 2018), for microbot's tests of go-micro compatibility. go-micro
// before v0.22 registers its nodes without protocol metadata and speaks
// the old framings only (application/proto-rpc, application/json-rpc; its
// client sends application/protobuf, application/json and
// application/octet-stream framed the same way):
//
//	Say.Hello  {"name": "John"} -> {"msg": "Hello John"}
//	Say.Fail   {"name": "no"}   -> the error errors.Conflict(service, "no")
//
// It takes go-micro's own flags; the tests start it with
//
//	greeter --registry=consul --registry_address=127.0.0.1:PORT \
//	        --server_address=127.0.0.1:0 --broker_address=127.0.0.1:0
package main

import (
	"context"
	"log"

	micro "github.com/micro/go-micro"
	"github.com/micro/go-micro/errors"

	"github.com/microbot/microbot/tools/gomicro/v0/proto"
)

// Say is the handler of the Say endpoints.
type Say struct {
	name string
}

// Hello greets req.Name.
func (s *Say) Hello(ctx context.Context, req *proto.Request, rsp *proto.Response) error {
	log.Printf("executed Say.Hello")
	rsp.Msg = "Hello " + req.Name
	return nil
}

// Fail answers a 409 error whose detail is req.Name.
func (s *Say) Fail(ctx context.Context, req *proto.Request, rsp *proto.Response) error {
	log.Printf("executed Say.Fail")
	return errors.Conflict(s.name, req.Name)
}

func main() {
	service := micro.NewService(
		micro.Name("go.micro.srv.greeter"),
		micro.Version("0.10.0"),
	)
	service.Init()

	s := service.Server()
	if err := s.Handle(s.NewHandler(&Say{name: s.Options().Name})); err != nil {
		log.Fatal(err)
	}

	if err := service.Run(); err != nil {
		log.Fatal(err)
	}
}

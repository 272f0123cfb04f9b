package testpb

import (
	"context"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/server"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestTwoServicesOneServer serves both generated handlers on one server and
// calls a method of each, including a snake_case rpc and one taking a
// message of another package, over the real transport.
func TestTwoServicesOneServer(t *testing.T) {
	reg := memory.New()
	srv, err := server.New(server.WithName("microbot.test"), server.WithAddress("127.0.0.1:0"), server.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterGreeterHandler(srv, greeter{}); err != nil {
		t.Fatalf("RegisterGreeterHandler: %v", err)
	}
	if err := RegisterLedgerHandler(srv, ledger{}); err != nil {
		t.Fatalf("RegisterLedgerHandler: %v", err)
	}
	if err := RegisterLedgerHandler(srv, ledger{}); err == nil {
		t.Errorf("registering Ledger twice: no error")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	c, err := client.New(client.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}

	hello, err := NewGreeterService("microbot.test", c).Goodbye(ctx, &HelloRequest{Name: "Ann"})
	if err != nil || hello.GetGreeting() != "goodbye Ann" {
		t.Errorf("Goodbye = %v, %v; want \"goodbye Ann\"", hello, err)
	}
	if _, err := NewGreeterService("microbot.test", c).Count(ctx, &emptypb.Empty{}); err != nil {
		t.Errorf("Count: %v", err)
	}
	if _, err := NewLedgerService("microbot.test", c).AddEntry(ctx, &Entry{Account: "a", Cents: 5}); err != nil {
		t.Errorf("AddEntry: %v", err)
	}
}

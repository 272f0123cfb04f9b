package testpb

import (
	"context"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/server"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The API protoc-gen-micro generates, checked by the compiler: if a
// signature changes, this package's tests do not build.
var (
	_ func(string, *client.Client) GreeterService                         = NewGreeterService
	_ func(*server.Server, GreeterHandler, ...server.HandlerOption) error = RegisterGreeterHandler
	_ func(string, *client.Client) LedgerService                          = NewLedgerService
	_ func(*server.Server, LedgerHandler, ...server.HandlerOption) error  = RegisterLedgerHandler

	_ GreeterHandler = (*greeter)(nil)
	_ LedgerHandler  = (*ledger)(nil)
	_ GreeterService = (*greeterService)(nil)
	_ LedgerService  = (*ledgerService)(nil)

	_ interface {
		Hello(context.Context, *HelloRequest, ...client.CallOption) (*HelloResponse, error)
		Goodbye(context.Context, *HelloRequest, ...client.CallOption) (*HelloResponse, error)
		Count(context.Context, *emptypb.Empty, ...client.CallOption) (*CountResponse, error)
	} = GreeterService(nil)
	_ interface {
		AddEntry(context.Context, *Entry, ...client.CallOption) (*emptypb.Empty, error)
		Balance(context.Context, *BalanceRequest, ...client.CallOption) (*BalanceResponse, error)
		OldBalance(context.Context, *BalanceRequest, ...client.CallOption) (*BalanceResponse, error)
	} = LedgerService(nil)
)

// greeter implements GreeterHandler.
type greeter struct{}

func (greeter) Hello(_ context.Context, in *HelloRequest, out *HelloResponse) error {
	out.Greeting = "hello " + in.GetName()
	return nil
}

func (greeter) Goodbye(_ context.Context, in *HelloRequest, out *HelloResponse) error {
	out.Greeting = "goodbye " + in.GetName()
	return nil
}

func (greeter) Count(context.Context, *emptypb.Empty, *CountResponse) error { return nil }

// ledger implements LedgerHandler.
type ledger struct{}

func (ledger) AddEntry(context.Context, *Entry, *emptypb.Empty) error { return nil }

func (ledger) Balance(context.Context, *BalanceRequest, *BalanceResponse) error { return nil }

func (ledger) OldBalance(context.Context, *BalanceRequest, *BalanceResponse) error { return nil }

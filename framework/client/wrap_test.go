package client_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/rpcerr"
)

// record is a wrapper that notes each call it sees, with name marking
// where it sits in the chain.
type record struct {
	mu    sync.Mutex
	calls []string
}

func (r *record) wrap(name string) client.CallWrapper {
	return func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, service, endpoint string, req, rsp any, opts ...client.CallOption) error {
			r.add(name + " > " + service + " " + endpoint)
			err := next(ctx, service, endpoint, req, rsp, opts...)
			code := 0
			var e *rpcerr.Error
			if errors.As(err, &e) {
				code = int(e.Code)
			}
			r.add(name + " < " + service + " " + itoa(code))
			return err
		}
	}
}

func (r *record) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *record) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.calls, "; ")
	r.calls = nil
	return s
}

func itoa(n int) string {
	if n == 0 {
		return "ok"
	}
	return strconv.Itoa(n)
}

func TestCallWrappers(t *testing.T) {
	r := memory.New()
	startServer(t, r)
	rec := &record{}
	c, err := client.New(client.WithRegistry(r), client.WithCallWrappers(rec.wrap("outer"), rec.wrap("inner")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	tests := []struct {
		name, service, endpoint string
		want                    string
	}{
		{"success passes through in order", svcName, "Say.Hello",
			"outer > " + svcName + " Say.Hello; inner > " + svcName + " Say.Hello; inner < " + svcName + " ok; outer < " + svcName + " ok"},
		{"the wrappers see the server's error", svcName, "Say.Nope",
			"outer > " + svcName + " Say.Nope; inner > " + svcName + " Say.Nope; inner < " + svcName + " 404; outer < " + svcName + " 404"},
		{"and the client's own", "go.micro.srv.none", "X.Y",
			"outer > go.micro.srv.none X.Y; inner > go.micro.srv.none X.Y; inner < go.micro.srv.none 404; outer < go.micro.srv.none 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rsp Response
			c.Call(ctx, tt.service, tt.endpoint, &Request{Name: "x"}, &rsp) //nolint:errcheck // the wrappers record it
			if got := rec.take(); got != tt.want {
				t.Errorf("calls:\n got %s\nwant %s", got, tt.want)
			}
		})
	}

	// A wrapper that answers by itself; given in a second WithCallWrappers,
	// it goes inside the ones given first, which stay.
	refuse := func(client.CallFunc) client.CallFunc {
		return func(context.Context, string, string, any, any, ...client.CallOption) error {
			return rpcerr.Forbidden("test", "refused")
		}
	}
	c, err = client.New(client.WithRegistry(r), client.WithCallWrappers(rec.wrap("outer"), rec.wrap("inner")),
		client.WithCallWrappers(refuse))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(c.Options().Wrappers); n != 3 {
		t.Fatalf("%d wrappers, want 3", n)
	}
	err = c.Call(ctx, svcName, "Say.Hello", &Request{}, nil)
	var e *rpcerr.Error
	if !errors.As(err, &e) || e.Code != 403 {
		t.Fatalf("Call through a refusing wrapper = %v, want 403", err)
	}
	// refuse is innermost (added last): outer and inner still saw the call.
	if got := rec.take(); !strings.Contains(got, "inner < "+svcName+" 403") {
		t.Errorf("calls: %s", got)
	}
}

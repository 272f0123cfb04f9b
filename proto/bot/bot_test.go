package bot_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/framework/server"
	"github.com/microbot/microbot/proto/bot"
)

const name = "go.micro.bot.say"

// say is a command service: "say a b" answers "a b".
type say struct{}

func (say) Help(_ context.Context, _ *bot.HelpRequest, out *bot.HelpResponse) error {
	out.Usage, out.Description = "say [text]", "Returns the [text]"
	return nil
}

func (say) Exec(_ context.Context, in *bot.ExecRequest, out *bot.ExecResponse) error {
	switch {
	case len(in.GetArgs()) == 0:
		return rpcerr.BadRequest(name, "no args")
	case len(in.GetArgs()) == 1:
		out.Error = "say what?"
	default:
		out.Result = []byte(strings.Join(in.GetArgs()[1:], " "))
	}
	return nil
}

// Extra has the handler form but is not part of Command, so it must not be
// served.
func (say) Extra(context.Context, *bot.HelpRequest, *bot.HelpResponse) error { return nil }

// TestRoundTrip serves say with RegisterCommandHandler and calls it with
// NewCommandService through the registry, the selector and the real HTTP
// transport on loopback.
func TestRoundTrip(t *testing.T) {
	reg := memory.New()
	srv, err := server.New(server.WithName(name), server.WithAddress("127.0.0.1:0"), server.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	if err := bot.RegisterCommandHandler(srv, say{}); err != nil {
		t.Fatalf("RegisterCommandHandler: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	c, err := client.New(client.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	cmd := bot.NewCommandService(name, c)

	t.Run("Help", func(t *testing.T) {
		rsp, err := cmd.Help(ctx, &bot.HelpRequest{})
		if err != nil {
			t.Fatalf("Help: %v", err)
		}
		if rsp.GetUsage() != "say [text]" || rsp.GetDescription() != "Returns the [text]" {
			t.Errorf("Help = %v", rsp)
		}
	})

	for _, tc := range []struct {
		name       string
		args       []string
		opts       []client.CallOption
		wantResult string
		wantError  string // ExecResponse.error
		wantCode   int32  // code of the call's *rpcerr.Error
	}{
		{name: "result", args: []string{"say", "hello", "world"}, wantResult: "hello world"},
		{name: "result as JSON", args: []string{"say", "hi"}, opts: []client.CallOption{client.WithContentType("application/json")}, wantResult: "hi"},
		{name: "command error", args: []string{"say"}, wantError: "say what?"},
		{name: "handler error", args: nil, wantCode: 400},
	} {
		t.Run("Exec "+tc.name, func(t *testing.T) {
			rsp, err := cmd.Exec(ctx, &bot.ExecRequest{Args: tc.args}, tc.opts...)
			if tc.wantCode != 0 {
				var e *rpcerr.Error
				if !errors.As(err, &e) || e.Code != tc.wantCode || e.Detail != "no args" {
					t.Fatalf("Exec error = %v, want a %d \"no args\"", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			if string(rsp.GetResult()) != tc.wantResult || rsp.GetError() != tc.wantError {
				t.Errorf("Exec = result %q error %q, want %q %q", rsp.GetResult(), rsp.GetError(), tc.wantResult, tc.wantError)
			}
		})
	}

	t.Run("only Command's methods are served", func(t *testing.T) {
		err := c.Call(ctx, name, "Command.Extra", &bot.HelpRequest{}, &bot.HelpResponse{},
			client.WithContentType("application/protobuf"))
		var e *rpcerr.Error
		if !errors.As(err, &e) || e.Code != http.StatusNotFound {
			t.Errorf("call of Command.Extra: err = %v, want a 404", err)
		}
	})
}

// TestContentType checks on the wire that the stubs send
// application/protobuf unless the call says otherwise.
func TestContentType(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Content-Type"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/protobuf")
		w.WriteHeader(http.StatusOK) // an empty body is a valid empty message
	}))
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New()
	if err != nil {
		t.Fatal(err)
	}
	cmd := bot.NewCommandService(name, c)
	if _, err := cmd.Help(ctx, &bot.HelpRequest{}, client.WithAddress(addr)); err != nil {
		t.Fatalf("Help: %v", err)
	}
	// The answer is protobuf whatever was asked: only the request's type
	// is checked here.
	_, _ = cmd.Exec(ctx, &bot.ExecRequest{}, client.WithAddress(addr), client.WithContentType("application/json"))

	mu.Lock()
	defer mu.Unlock()
	if want := []string{"application/protobuf", "application/json"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("request content types = %q, want %q", got, want)
	}
}

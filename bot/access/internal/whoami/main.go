// Command whoami is a service for tests of the access policy that tells
// what the bot told it: the caller's identity, sent as RPC metadata.
//
// By default it is the command service go.micro.bot.whoami (--server_name
// names another, e.g. go.micro.bot.deploy), registered with the node
// metadata given in WHOAMI_METADATA ("bot.group=ops;bot.confirm=true"),
// set in code with framework.WithMetadata as a command service would. Its
// Command.Exec answers
//
//	<command> ran: input=shell user_id=alice user_name=Alice room=console confirmed_by=shell:bob args=a b
//
// With WHOAMI_PLAIN=1 it is a plain service (default name
// go.micro.srv.whoami) whose endpoint Who.Am answers with the metadata as
// JSON: {"md": {"Micro-User-Id": "alice", ...}}.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/metadata"
)

func main() {
	opts := []framework.Option{framework.WithRegisterTTL(10 * time.Second), framework.WithRegisterInterval(2 * time.Second)}
	var err error
	if os.Getenv("WHOAMI_PLAIN") != "" {
		err = plain(opts)
	} else {
		if md := parseMeta(os.Getenv("WHOAMI_METADATA")); len(md) > 0 {
			opts = append(opts, framework.WithMetadata(md))
		}
		name := serverName("go.micro.bot.whoami")
		cmd := name[strings.LastIndexByte(name, '.')+1:]
		err = commandsvc.Run(context.Background(), name, cmd+" [words]", "tells who the bot says is asking (tests only)", exec, opts...)
	}
	if err != nil {
		slog.Error("whoami", "err", err)
		os.Exit(1)
	}
}

// serverName returns the --server_name on the command line, for the usage
// line (the framework reads the flag itself).
func serverName(def string) string {
	for i, a := range os.Args {
		if v, ok := strings.CutPrefix(a, "--server_name="); ok {
			return v
		}
		if a == "--server_name" && i+1 < len(os.Args) {
			return os.Args[i+1]
		}
	}
	return def
}

func parseMeta(s string) map[string]string {
	md := map[string]string{}
	for kv := range strings.SplitSeq(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			md[k] = v
		}
	}
	return md
}

func get(md metadata.Metadata, key string) string {
	v, _ := md.Get(key)
	return v
}

func exec(ctx context.Context, args []string) (string, error) {
	md, _ := metadata.FromContext(ctx)
	return fmt.Sprintf("%s ran: input=%s user_id=%s user_name=%s room=%s confirmed_by=%s args=%s",
		args[0], get(md, "Micro-Input"), get(md, "Micro-User-Id"), get(md, "Micro-User-Name"), get(md, "Micro-Room"),
		get(md, "Micro-Confirmed-By"), strings.Join(args[1:], " ")), nil
}

// Who is the plain service's handler.
type Who struct{}

// WhoRequest is Who.Am's request.
type WhoRequest struct{}

// WhoResponse is Who.Am's response: the metadata received.
type WhoResponse struct {
	MD map[string]string `json:"md"`
}

// Am answers with the metadata of the call.
func (*Who) Am(ctx context.Context, req *WhoRequest, rsp *WhoResponse) error {
	md, _ := metadata.FromContext(ctx)
	rsp.MD = md
	return nil
}

func plain(opts []framework.Option) error {
	svc, err := framework.NewService(append([]framework.Option{framework.WithName("go.micro.srv.whoami"), framework.WithArgs(os.Args)}, opts...)...)
	if errors.Is(err, framework.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := svc.Server().Handle(&Who{}); err != nil {
		return err
	}
	return svc.Run(context.Background())
}

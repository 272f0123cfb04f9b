package client

import (
	"testing"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/transport"
)

func TestDialect(t *testing.T) {
	plain, protoRPC, jsonRPC := transport.FramingPlain, transport.FramingProtoRPC, transport.FramingJSONRPC
	v18 := map[string]string{"broker": "http", "protocol": "mucp", "registry": "consul", "server": "mucp", "transport": "http"}
	v010 := map[string]string{"broker": "http", "registry": "consul", "server": "rpc", "transport": "http"}
	ours := map[string]string{"protocol": "mucp", "server": "mucp", "transport": "http", "content_types": "application/json, application/protobuf"}
	older := map[string]string{"server": "microbot", "transport": "http", "content_types": "application/json, application/protobuf"}
	for _, tt := range []struct {
		name    string
		md      map[string]string
		ct      string
		forced  transport.Framing
		goMicro bool
		framing transport.Framing
	}{
		{"microbot", ours, "application/json", plain, false, plain},
		{"older microbot", older, "application/protobuf", plain, false, plain},
		{"go-micro v1.8.0", v18, "application/protobuf", plain, true, plain},
		{"go-micro v0.10.0 protobuf", v010, "application/protobuf", plain, true, protoRPC},
		{"go-micro v0.10.0 json", v010, "application/json", plain, true, jsonRPC},
		{"an address", nil, "application/json", plain, false, plain},
		{"registered by hand", map[string]string{"team": "ops"}, "application/json", plain, false, plain},
		{"forced", ours, "application/json", jsonRPC, true, jsonRPC},
	} {
		n := &registry.Node{ID: "n", Address: "127.0.0.1:1", Metadata: tt.md}
		for _, node := range []*registry.Node{n, Target(n)} {
			if g, f := dialect(node, tt.ct, tt.forced); g != tt.goMicro || f != tt.framing {
				t.Errorf("%s: dialect = %v, %v; want %v, %v", tt.name, g, f, tt.goMicro, tt.framing)
			}
		}
	}
	for ct, want := range map[string]transport.Framing{
		"application/proto-rpc": protoRPC, "Application/JSON-RPC; charset=utf-8": jsonRPC, "application/json": plain, "": plain,
	} {
		if got := framingOf(ct); got != want {
			t.Errorf("framingOf(%q) = %v, want %v", ct, got, want)
		}
	}
}

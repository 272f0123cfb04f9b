package consul

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
)

// The files in testdata are what a real Consul agent answered to
// /v1/health/service/NAME for services of real go-micro programs built from
// the module proxy (tools/gomicro; the v0.10.0 greeter from a module of its
// own), registered with --registry=consul:
//
//	gomicro-v1.8.0-greeter.json   two nodes of tools/gomicro's greeter, one
//	                              with --server_address=[::1]:0
//	                              --server_version=1.0.1
//	gomicro-v1.8.0-command.json   tools/gomicro's command service
//	gomicro-v0.10.0-greeter.json  a greeter of go-micro v0.10.0 (2018),
//	                              which writes no protocol metadata
func readEntries(t *testing.T, file string) []*api.ServiceEntry {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var entries []*api.ServiceEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	return entries
}

// leaf is a schema value without children, as go-micro publishes them.
func leaf(name, typ string) *registry.Value { return &registry.Value{Name: name, Type: typ} }

func msg(name string, fields ...*registry.Value) *registry.Value {
	return &registry.Value{Name: name, Type: name, Values: fields}
}

var stream = map[string]string{"stream": "false"}

func TestGoMicroGolden(t *testing.T) {
	greeterEps := []*registry.Endpoint{
		{Name: "Say.Count", Request: msg("CountRequest", leaf("endpoint", "string")), Response: msg("CountResponse", leaf("count", "int64")), Metadata: stream},
		{Name: "Say.Fail", Request: msg("FailRequest", leaf("code", "int32"), leaf("detail", "string")), Response: msg("Response", leaf("msg", "string")), Metadata: stream},
		{Name: "Say.Hello", Request: msg("Request", leaf("name", "string")), Response: msg("Response", leaf("msg", "string")), Metadata: stream},
	}
	v18 := map[string]string{"broker": "http", "protocol": "mucp", "registry": "consul", "server": "mucp", "transport": "http"}
	tests := []struct {
		file string
		want []*registry.Service // one per instance, in the file's order
	}{
		{"gomicro-v1.8.0-greeter.json", []*registry.Service{
			{Name: "go.micro.srv.greeter", Version: "1.0.1", Endpoints: greeterEps, Nodes: []*registry.Node{
				{ID: "go.micro.srv.greeter-11e3cdec-2ee0-41fe-9b00-e572129ffbbf", Address: "[::1]:42855", Metadata: v18}}},
			{Name: "go.micro.srv.greeter", Version: "latest", Endpoints: greeterEps, Nodes: []*registry.Node{
				{ID: "go.micro.srv.greeter-d2acf33c-4b78-4a3e-9548-798fe3ea3307", Address: "127.0.0.1:42293", Metadata: v18}}},
		}},
		{"gomicro-v1.8.0-command.json", []*registry.Service{
			{Name: "go.micro.bot.echo", Version: "latest", Endpoints: []*registry.Endpoint{
				{Name: "Command.Exec", Request: msg("ExecRequest"), Response: msg("ExecResponse", leaf("error", "string")), Metadata: stream},
				{Name: "Command.Help", Request: msg("HelpRequest"), Response: msg("HelpResponse", leaf("usage", "string"), leaf("description", "string")), Metadata: stream},
			}, Nodes: []*registry.Node{
				{ID: "go.micro.bot.echo-0cdde7eb-d143-47a8-877d-71f3758a1e8e", Address: "127.0.0.1:40361", Metadata: v18}}},
		}},
		{"gomicro-v0.10.0-greeter.json", []*registry.Service{
			{Name: "go.micro.srv.old", Version: "1.0.0", Endpoints: []*registry.Endpoint{
				{Name: "Say.Hello", Request: msg("Request", leaf("name", "string")), Response: msg("Response", leaf("msg", "string")), Metadata: stream},
			}, Nodes: []*registry.Node{
				{ID: "go.micro.srv.old-cac3166d-f112-11f1-93d2-f62a79347ad1", Address: "127.0.0.1:37111",
					Metadata: map[string]string{"broker": "http", "registry": "consul", "server": "rpc", "transport": "http"}}}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			entries := readEntries(t, tc.file)
			if len(entries) != len(tc.want) {
				t.Fatalf("%d entries, want %d", len(entries), len(tc.want))
			}
			for i, e := range entries {
				got, err := decodeEntry(e.Service, e.Node.Address)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want[i]) {
					gj, _ := json.Marshal(got)
					wj, _ := json.Marshal(tc.want[i])
					t.Errorf("instance %d:\n got  %s\n want %s", i, gj, wj)
				}
				// Our encoder writes what go-micro writes, byte for byte.
				for _, tag := range e.Service.Tags {
					kind, text, ok, err := tagText(tag)
					if !ok || err != nil {
						t.Fatalf("tag %q: %v %v", tag, ok, err)
					}
					if again := encodeTag(kind, text); again != tag {
						t.Errorf("encodeTag(%c, %s) = %s, go-micro wrote %s", kind, text, again, tag)
					}
				}
			}
		})
	}
}

// TestGoMicroPlainForms reads the plain tags go-micro wrote before May 2016
// (go-micro commit e94179623 replaced them): "v=" + version, "e=" + the
// endpoint's JSON, "t=" + {"key":"value"}.
func TestGoMicroPlainForms(t *testing.T) {
	svc := &api.AgentService{ID: "old-1", Service: "go.micro.srv.old", Address: "10.0.0.7", Port: 8080, Tags: []string{
		`t={"server":"rpc"}`,
		`e={"name":"Say.Hello","request":{"name":"Request","type":"Request","values":[{"name":"name","type":"string","values":null}]},"response":null,"metadata":null}`,
		`v=0.1.0`,
		`t={"transport":"http"}`,
	}}
	got, err := decodeEntry(svc, "")
	if err != nil {
		t.Fatal(err)
	}
	want := &registry.Service{Name: "go.micro.srv.old", Version: "0.1.0",
		Endpoints: []*registry.Endpoint{{Name: "Say.Hello", Request: msg("Request", leaf("name", "string"))}},
		Nodes: []*registry.Node{{ID: "old-1", Address: "10.0.0.7:8080",
			Metadata: map[string]string{"server": "rpc", "transport": "http"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func zlibHex(text string) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(text))
	w.Close()
	return hex.EncodeToString(b.Bytes())
}

// TestBrokenTags shows that a tag that does not decode costs only itself:
// the rest of the instance is read, and the error names the tag.
func TestBrokenTags(t *testing.T) {
	good := []string{
		encodeTag(kindVersion, []byte("1.0.0")),
		encodeTag(kindMetadata, []byte(`{"protocol":"mucp"}`)),
		encodeTag(kindEndpoint, []byte(`{"name":"Say.Hello"}`)),
	}
	for _, tc := range []struct {
		name, tag string
		wantErr   string // "" for a tag that is not go-micro's: ignored
	}{
		{"bad hex", "e-zz", "hex"},
		{"odd hex", "t-abc", "hex"},
		{"not zlib", "e-" + hex.EncodeToString([]byte("plain text")), "zlib"},
		{"truncated zlib", "e-" + zlibHex(`{"name":"X.Y"}`)[:12], "zlib"},
		{"endpoint not an object", "e-" + zlibHex(`[1,2]`), "endpoint"},
		{"endpoint null", "e-" + zlibHex(`null`), "endpoint"},
		{"metadata not strings", "t-" + zlibHex(`{"a":1}`), "metadata"},
		{"plain metadata not JSON", "t=transport=http", "metadata"},
		{"zlib bomb", "e-" + zlibHex(strings.Repeat(" ", maxTagText+10)), "inflates"},
		{"another tool's tag", "traefik.enable=true", ""},
		{"one letter", "e", ""},
		{"empty", "", ""},
		{"unknown form", "e+abc", ""},
		{"microbot's", Tag, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &api.AgentService{ID: "n1", Service: "s", Port: 1, Tags: append([]string{tc.tag}, good...)}
			got, err := decodeEntry(svc, "127.0.0.1")
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one about %q", err, tc.wantErr)
			}
			if got == nil || got.Version != "1.0.0" || len(got.Endpoints) != 1 || got.Endpoints[0].Name != "Say.Hello" ||
				got.Nodes[0].Metadata["protocol"] != "mucp" || got.Nodes[0].Address != "127.0.0.1:1" {
				t.Fatalf("the good tags were not read: %+v", got)
			}
		})
	}
}

// TestWrittenTags reads back with go-micro's decoding the tags microbot
// writes: version, endpoints and node metadata as registered.
func TestWrittenTags(t *testing.T) {
	s := largeService(3)
	s.Nodes[0].Address = "[::1]:4000"
	s.Nodes[0].Metadata = map[string]string{"protocol": "mucp", "transport": "http", "server": "mucp"}
	reg, omitted, err := registration(s, s.Nodes[0], 10*time.Second)
	if err != nil || omitted != "" {
		t.Fatalf("registration: %v, omitted %q", err, omitted)
	}
	if reg.Tags[0] != Tag || reg.Tags[len(reg.Tags)-1] != VersionTagPrefix+s.Version || !strings.HasPrefix(reg.Tags[1], "v-") {
		t.Fatalf("tags %q: want %q, go-micro's version first, then the others, the plain version last", reg.Tags, Tag)
	}
	if reg.Address != "::1" || reg.Port != 4000 {
		t.Fatalf("address %q port %d", reg.Address, reg.Port)
	}
	got, err := decodeEntry(&api.AgentService{ID: reg.ID, Service: reg.Name, Tags: reg.Tags, Address: reg.Address, Port: reg.Port}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := registry.CopyService(s)
	want.Metadata = nil // go-micro's tags have no place for service metadata
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tags read back:\n got  %+v\n want %+v", got, want)
	}
	if v, ok := tagVersion(reg.Tags); !ok || v != s.Version {
		t.Fatalf("tagVersion = %q, %v", v, ok)
	}
}

// TestTagBudget shows that a service too large for tags keeps its version
// and protocol in them (all go-micro needs to call it) and its full
// definition in the Meta.
func TestTagBudget(t *testing.T) {
	s := largeService(1000)
	s.Nodes[0].Metadata = map[string]string{"protocol": "mucp", "transport": "http"}
	reg, omitted, err := registration(s, s.Nodes[0], time.Second)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, tag := range reg.Tags {
		size += len(tag)
	}
	if len(reg.Tags) > maxTags || size > maxTagBytes {
		t.Fatalf("%d tags of %d bytes, over the budget of %d tags, %d bytes", len(reg.Tags), size, maxTags, maxTagBytes)
	}
	if !strings.Contains(omitted, "1000 endpoints") {
		t.Fatalf("omitted = %q, want the endpoints named", omitted)
	}
	got, err := fromTags(&api.AgentService{ID: reg.ID, Service: reg.Name, Tags: reg.Tags, Address: reg.Address, Port: reg.Port}, "")
	if err != nil || got.Version != s.Version || len(got.Endpoints) != 0 || !reflect.DeepEqual(got.Nodes[0].Metadata, s.Nodes[0].Metadata) {
		t.Fatalf("tags say %+v (%v)", got, err)
	}
	full, err := decodeEntry(&api.AgentService{ID: reg.ID, Service: reg.Name, Tags: reg.Tags, Meta: reg.Meta}, "")
	if err != nil || len(full.Endpoints) != 1000 {
		t.Fatalf("meta gives %d endpoints (%v)", len(full.Endpoints), err)
	}

	// Metadata beyond the budget: the protocol stays, other keys go first.
	s = largeService(0)
	s.Nodes[0].Metadata = map[string]string{"protocol": "mucp"}
	for i := range 100 {
		s.Nodes[0].Metadata[strings.Repeat("k", 3)+string(rune('a'+i%26))+strings.Repeat("x", i)] = strings.Repeat("v", 200)
	}
	reg, omitted, err = registration(s, s.Nodes[0], time.Second)
	if err != nil || !strings.Contains(omitted, "node metadata") {
		t.Fatalf("omitted %q, %v", omitted, err)
	}
	if len(reg.Tags) > maxTags {
		t.Fatalf("%d tags", len(reg.Tags))
	}
	got, _ = fromTags(&api.AgentService{Tags: reg.Tags}, "")
	if got.Nodes[0].Metadata["protocol"] != "mucp" {
		t.Fatalf("protocol left out: %v", got.Nodes[0].Metadata)
	}
}

func TestJoinAddress(t *testing.T) {
	for _, tc := range []struct {
		host, node string
		port       int
		want       string
	}{
		{"127.0.0.1", "", 8080, "127.0.0.1:8080"},
		{"::1", "", 80, "[::1]:80"},
		{"[::1]", "", 80, "[::1]:80"},
		{"fe80::1%eth0", "", 80, "[fe80::1%eth0]:80"},
		{"", "10.1.2.3", 9000, "10.1.2.3:9000"},
		{"", "2001:db8::5", 9000, "[2001:db8::5]:9000"},
		{"host.example", "", 0, "host.example"},
		{"unix:///tmp/sock", "", 0, "unix:///tmp/sock"},
	} {
		if got := joinAddress(tc.host, tc.node, tc.port); got != tc.want {
			t.Errorf("joinAddress(%q, %q, %d) = %q, want %q", tc.host, tc.node, tc.port, got, tc.want)
		}
	}
}

func TestTagVersion(t *testing.T) {
	for _, tc := range []struct {
		tags []string
		want string
		ok   bool
	}{
		{[]string{Tag, encodeTag(kindVersion, []byte("2.0")), "v=2.0"}, "2.0", true},
		{[]string{"v=1.0"}, "1.0", true},
		{[]string{"v-zz", "v=3"}, "3", true},
		{[]string{Tag, "t=x", "version"}, "", false},
		{nil, "", false},
	} {
		if got, ok := tagVersion(tc.tags); got != tc.want || ok != tc.ok {
			t.Errorf("tagVersion(%q) = %q, %v; want %q, %v", tc.tags, got, ok, tc.want, tc.ok)
		}
	}
}

package consul

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
)

// LargeService returns a service with n endpoints, each with a nested
// request and a response schema, as a big real service would publish.
func largeService(n int) *registry.Service {
	s := &registry.Service{Name: "go.micro.srv.big", Version: "3.1.4", Metadata: map[string]string{"team": "ops"}}
	for i := range n {
		s.Endpoints = append(s.Endpoints, &registry.Endpoint{
			Name: fmt.Sprintf("Big.Method%04d", i),
			Request: &registry.Value{Name: "Request", Type: fmt.Sprintf("Method%04dRequest", i), Values: []*registry.Value{
				{Name: "id", Type: "string"},
				{Name: "count", Type: "int32"},
				{Name: "labels", Type: "map[string]string"},
				{Name: "page", Type: "Page", Values: []*registry.Value{{Name: "offset", Type: "int64"}, {Name: "limit", Type: "int64"}}},
			}},
			Response: &registry.Value{Name: "Response", Type: fmt.Sprintf("Method%04dResponse", i), Values: []*registry.Value{
				{Name: "items", Type: "[]Item"},
				{Name: "total", Type: "int64"},
			}},
			Metadata: map[string]string{"stream": "false"},
		})
	}
	s.Nodes = []*registry.Node{{ID: "big-1", Address: "127.0.0.1:4000", Metadata: map[string]string{"transport": "http"}}}
	return s
}

func TestEncodingRoundTrip(t *testing.T) {
	node := &registry.Node{ID: "n1", Address: "127.0.0.1:8080", Metadata: map[string]string{"a.b/c d": "v", "": "empty key"}}
	tests := []struct {
		name string
		svc  *registry.Service
	}{
		{"minimal", &registry.Service{Name: "s", Nodes: []*registry.Node{{ID: "n1", Address: "127.0.0.1:1"}}}},
		{"empty maps and slices kept apart from nil", &registry.Service{
			Name: "s", Version: "", Metadata: map[string]string{}, Endpoints: []*registry.Endpoint{},
			Nodes: []*registry.Node{{ID: "n1", Address: "[::1]:80", Metadata: map[string]string{}}},
		}},
		{"nested schemas, odd strings", &registry.Service{
			Name: "s", Version: "v1 \"quoted\" ünïcode\n", Metadata: map[string]string{"consul-reserved": "x", "k": ""},
			Endpoints: []*registry.Endpoint{
				{Name: "A.B", Request: &registry.Value{Name: "R", Type: "R", Values: []*registry.Value{{Name: "x", Type: "X", Values: []*registry.Value{}}}}},
				{Name: "A.C", Metadata: map[string]string{}},
			},
			Nodes: []*registry.Node{node},
		}},
		{"address without port", &registry.Service{Name: "s", Nodes: []*registry.Node{{ID: "n1", Address: "unix:///tmp/sock"}}}},
		{"thousand endpoints", largeService(1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, _, err := registration(tc.svc, tc.svc.Nodes[0], 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(reg.Meta) > maxMetaKeys {
				t.Fatalf("%d meta keys, Consul allows %d", len(reg.Meta), maxMetaKeys)
			}
			keyRE := regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
			for k, v := range reg.Meta {
				if !keyRE.MatchString(k) || len(v) > maxMetaValue {
					t.Fatalf("meta %q (value of %d chars) breaks Consul's limits", k, len(v))
				}
			}
			got, err := decodeEntry(&api.AgentService{ID: reg.ID, Service: reg.Name, Meta: reg.Meta, Tags: reg.Tags}, "")
			if err != nil {
				t.Fatal(err)
			}
			want := registry.CopyService(tc.svc)
			want.Nodes = want.Nodes[:1]
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got  %#v\n want %#v", got, want)
			}
		})
	}
}

func TestEncodingChunks(t *testing.T) {
	// A thousand endpoints need several meta keys and still fit.
	reg, _, err := registration(largeService(1000), largeService(1000).Nodes[0], time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(reg.Meta[metaChunks])
	if n < 2 {
		t.Fatalf("a thousand endpoints took %d chunk(s); the test wants a multi-chunk definition", n)
	}
	t.Logf("1000 endpoints: %d meta chunks of %d", n, maxChunks)

	// Incompressible metadata beyond the budget is refused.
	huge := largeService(1)
	huge.Metadata = map[string]string{}
	for i := range 400 {
		b := make([]byte, 64)
		rand.Read(b)
		huge.Metadata[strconv.Itoa(i)] = hex.EncodeToString(b)
	}
	if _, _, err := registration(huge, huge.Nodes[0], time.Second); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("registration of a huge definition = %v, want ErrTooLarge", err)
	}
}

// TestDecodeCorrupt shows that an instance whose definition in the Meta
// does not decode is read from its go-micro tags, with an error saying why.
func TestDecodeCorrupt(t *testing.T) {
	svc := largeService(3)
	good, _, err := registration(svc, svc.Nodes[0], time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fromTags := registry.CopyService(svc)
	fromTags.Metadata = nil // the tags have no place for it
	with := func(change func(m map[string]string)) map[string]string {
		m := map[string]string{}
		for k, v := range good.Meta {
			m[k] = v
		}
		change(m)
		return m
	}
	for _, tc := range []struct {
		name string
		meta map[string]string
	}{
		{"unknown format", with(func(m map[string]string) { m[metaFormat] = "2" })},
		{"bad count", with(func(m map[string]string) { m[metaChunks] = "x" })},
		{"too many chunks", with(func(m map[string]string) { m[metaChunks] = "99" })},
		{"missing chunk", with(func(m map[string]string) { m[metaChunks] = "2" })},
		{"bad base64", with(func(m map[string]string) { m[metaChunkPrefix+"0"] = "!!!" })},
		{"bad deflate", with(func(m map[string]string) { m[metaChunkPrefix+"0"] = "AAAA" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeEntry(&api.AgentService{ID: good.ID, Service: good.Name, Meta: tc.meta,
				Tags: good.Tags, Address: good.Address, Port: good.Port}, "")
			if err == nil || !strings.Contains(err.Error(), "meta") {
				t.Fatalf("decoded a corrupt definition without saying so (err %v)", err)
			}
			if !reflect.DeepEqual(got, fromTags) {
				t.Fatalf("read from the tags:\n got  %+v\n want %+v", got, fromTags)
			}
		})
	}
}

func TestNextIndex(t *testing.T) {
	for _, tc := range []struct{ prev, got, want uint64 }{
		{0, 5, 5}, {5, 9, 9}, {9, 9, 9}, {9, 3, 0}, {0, 0, 1},
	} {
		if got := nextIndex(tc.prev, tc.got); got != tc.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", tc.prev, tc.got, got, tc.want)
		}
	}
}

func TestSplitAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
	}{
		{"127.0.0.1:8080", "127.0.0.1", 8080},
		{"[::1]:80", "::1", 80},
		{"example:http", "example:http", 0},
		{"nohost", "nohost", 0},
		{"h:99999", "h:99999", 0},
	} {
		if h, p := splitAddress(tc.in); h != tc.host || p != tc.port {
			t.Errorf("splitAddress(%q) = %q, %d; want %q, %d", tc.in, h, p, tc.host, tc.port)
		}
	}
}

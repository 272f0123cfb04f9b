package registry_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/microbot/microbot/framework/registry"
)

func svc(name, version string, meta string, nodes ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version}
	if meta != "" {
		s.Metadata = map[string]string{"m": meta}
	}
	for _, id := range nodes {
		addr := "127.0.0.1:1"
		if i := strings.IndexByte(id, '='); i >= 0 {
			id, addr = id[:i], id[i+1:]
		}
		s.Nodes = append(s.Nodes, &registry.Node{ID: id, Address: addr})
	}
	return s
}

func describe(rs []*registry.Result) string {
	var parts []string
	for _, r := range rs {
		var ids []string
		for _, n := range r.Service.Nodes {
			ids = append(ids, n.ID)
		}
		parts = append(parts, fmt.Sprintf("%s %s@%s%v", r.Action, r.Service.Name, r.Service.Version, ids))
	}
	return strings.Join(parts, "; ")
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		old, new []*registry.Service
		want     string
	}{
		{"nothing", nil, nil, ""},
		{"create", nil, []*registry.Service{svc("a", "1", "", "n1")}, "create a@1[n1]"},
		{"delete carries the nodes", []*registry.Service{svc("a", "1", "", "n1", "n2")}, nil, "delete a@1[n1 n2]"},
		{"same in another order", []*registry.Service{svc("a", "1", "", "n1", "n2")}, []*registry.Service{svc("a", "1", "", "n2", "n1")}, ""},
		{"node added", []*registry.Service{svc("a", "1", "", "n1")}, []*registry.Service{svc("a", "1", "", "n1", "n2")}, "update a@1[n1 n2]"},
		{"node gone, others stay", []*registry.Service{svc("a", "1", "", "n1", "n2")}, []*registry.Service{svc("a", "1", "", "n2")}, "update a@1[n2]"},
		{"address changed", []*registry.Service{svc("a", "1", "", "n1=x:1")}, []*registry.Service{svc("a", "1", "", "n1=x:2")}, "update a@1[n1]"},
		{"metadata changed", []*registry.Service{svc("a", "1", "x", "n1")}, []*registry.Service{svc("a", "1", "y", "n1")}, "update a@1[n1]"},
		{"nil and empty metadata are equal", []*registry.Service{{Name: "a", Metadata: map[string]string{}, Nodes: []*registry.Node{{ID: "n"}}}}, []*registry.Service{{Name: "a", Nodes: []*registry.Node{{ID: "n", Metadata: map[string]string{}}}}}, ""},
		{"versions are separate", []*registry.Service{svc("a", "1", "", "n1")}, []*registry.Service{svc("a", "2", "", "n2")}, "delete a@1[n1]; create a@2[n2]"},
		{"no nodes is absent", []*registry.Service{svc("a", "1", "")}, []*registry.Service{svc("a", "1", "", "n1"), svc("b", "1", "")}, "create a@1[n1]"},
		{"sorted", nil, []*registry.Service{svc("b", "1", "", "n"), svc("a", "2", "", "n"), svc("a", "1", "", "n")}, "create a@1[n]; create a@2[n]; create b@1[n]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := registry.Diff(tc.old, tc.new)
			if d := describe(got); d != tc.want {
				t.Fatalf("Diff = %q, want %q", d, tc.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	parts := []*registry.Service{
		svc("b", "1", "from-n3", "n3"),
		svc("a", "1", "from-n2", "n2"),
		svc("a", "1", "from-n1", "n1"),
		svc("a", "2", "v2", "n4"),
		svc("a", "1", "from-n2-again", "n2"), // n2 again: the last one wins
	}
	got := registry.Merge(parts)
	if d := describe([]*registry.Result{{Service: got[0]}, {Service: got[1]}, {Service: got[2]}}); len(got) != 3 || d != " a@1[n1 n2];  a@2[n4];  b@1[n3]" {
		t.Fatalf("Merge = %d services %q", len(got), d)
	}
	// The version-wide fields come from the smallest node ID, whatever the order.
	if got[0].Metadata["m"] != "from-n1" {
		t.Errorf("metadata of a@1 = %v, want the one of n1", got[0].Metadata)
	}
	// The result shares nothing with the parts.
	got[0].Nodes[0].ID = "changed"
	got[0].Metadata["m"] = "changed"
	if parts[2].Nodes[0].ID != "n1" || parts[2].Metadata["m"] != "from-n1" {
		t.Errorf("Merge result shares memory with its input")
	}
}

// MergeView groups as Merge does, and shares the parts' memory.
func TestMergeView(t *testing.T) {
	parts := []*registry.Service{
		svc("b", "1", "from-n3", "n3"),
		svc("a", "1", "from-n2", "n2"),
		svc("a", "1", "from-n1", "n1"),
		svc("a", "2", "v2", "n4"),
		svc("a", "1", "from-n2-again", "n2"),
	}
	parts[2].Endpoints = []*registry.Endpoint{{Name: "E"}}
	want := registry.Merge(parts)
	got := registry.MergeView(parts)
	if len(got) != len(want) {
		t.Fatalf("MergeView = %d services, Merge %d", len(got), len(want))
	}
	for i := range got {
		if !registry.Equal(got[i], want[i]) {
			t.Errorf("MergeView[%d] = %+v, Merge %+v", i, got[i], want[i])
		}
	}
	if got[0].Nodes[0] != parts[2].Nodes[0] || &got[0].Endpoints[0] != &parts[2].Endpoints[0] {
		t.Errorf("MergeView copied the nodes or endpoints of its parts")
	}
	got[0].Nodes[0], got[0].Nodes[1] = got[0].Nodes[1], got[0].Nodes[0]
	if parts[1].Nodes[0].ID != "n2" || parts[2].Nodes[0].ID != "n1" {
		t.Errorf("the Nodes slice of MergeView is the parts'")
	}
}

func TestValidate(t *testing.T) {
	ok := svc("a", "1", "", "n1")
	tests := []struct {
		name       string
		s          *registry.Service
		register   string // "" if valid
		deregister string
	}{
		{"valid", ok, "", ""},
		{"nil", nil, "no service", "no service"},
		{"empty name", svc("", "1", "", "n1"), "empty service name", "empty service name"},
		{"no nodes", svc("a", "1", ""), `service "a" has no nodes`, `service "a" has no nodes to deregister`},
		{"no id", svc("a", "1", "", "="), "node 0 has no id", "node 0 has no id"},
		{"no address", svc("a", "1", "", "n1="), `node "n1" has no address`, ""},
		{"twice", svc("a", "1", "", "n1", "n1"), `node id "n1" given twice`, `node id "n1" given twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				fn   func(*registry.Service) error
				want string
			}{{registry.ValidateRegister, tc.register}, {registry.ValidateDeregister, tc.deregister}} {
				err := c.fn(tc.s)
				switch {
				case c.want == "" && err != nil:
					t.Errorf("got %v, want nil", err)
				case c.want != "" && (!errors.Is(err, registry.ErrInvalid) || !strings.Contains(err.Error(), c.want)):
					t.Errorf("got %v, want an ErrInvalid saying %q", err, c.want)
				}
			}
		})
	}
}

func TestCopyService(t *testing.T) {
	s := &registry.Service{
		Name: "a", Metadata: map[string]string{"k": "v"},
		Endpoints: []*registry.Endpoint{{Name: "E", Request: &registry.Value{Name: "R", Values: []*registry.Value{{Name: "f", Values: []*registry.Value{{Name: "g"}}}}}}},
		Nodes:     []*registry.Node{{ID: "n", Metadata: map[string]string{"k": "v"}}},
	}
	c := registry.CopyService(s)
	if !registry.Equal(s, c) {
		t.Fatal("copy differs")
	}
	c.Metadata["k"] = "x"
	c.Endpoints[0].Request.Values[0].Values[0].Name = "x"
	c.Nodes[0].Metadata["k"] = "x"
	if s.Metadata["k"] != "v" || s.Endpoints[0].Request.Values[0].Values[0].Name != "g" || s.Nodes[0].Metadata["k"] != "v" {
		t.Fatal("copy shares memory with the original")
	}
	if registry.CopyService(nil) != nil || registry.Copy(nil) != nil {
		t.Fatal("copy of nil is not nil")
	}
}

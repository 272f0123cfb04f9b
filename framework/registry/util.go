package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
)

// This file holds helpers shared by the implementations of Registry: deep
// copies, validation of what callers hand in, grouping of per-node entries
// into services, and the diff of two snapshots into exact watch events.

// ErrInvalid is returned (wrapped) by Register and Deregister for a malformed
// service definition. Nothing is changed when it is returned.
var ErrInvalid = errors.New("invalid service")

// CopyService returns a deep copy of s (nil for nil): nothing in the copy
// shares memory with s.
func CopyService(s *Service) *Service {
	if s == nil {
		return nil
	}
	c := &Service{
		Name:     s.Name,
		Version:  s.Version,
		Metadata: maps.Clone(s.Metadata),
	}
	if s.Endpoints != nil {
		c.Endpoints = make([]*Endpoint, len(s.Endpoints))
		for i, e := range s.Endpoints {
			c.Endpoints[i] = CopyEndpoint(e)
		}
	}
	if s.Nodes != nil {
		c.Nodes = make([]*Node, len(s.Nodes))
		for i, n := range s.Nodes {
			c.Nodes[i] = CopyNode(n)
		}
	}
	return c
}

// Copy returns deep copies of services.
func Copy(services []*Service) []*Service {
	if services == nil {
		return nil
	}
	c := make([]*Service, len(services))
	for i, s := range services {
		c[i] = CopyService(s)
	}
	return c
}

// CopyNode returns a deep copy of n (nil for nil).
func CopyNode(n *Node) *Node {
	if n == nil {
		return nil
	}
	return &Node{ID: n.ID, Address: n.Address, Metadata: maps.Clone(n.Metadata)}
}

// CopyEndpoint returns a deep copy of e (nil for nil).
func CopyEndpoint(e *Endpoint) *Endpoint {
	if e == nil {
		return nil
	}
	return &Endpoint{
		Name:     e.Name,
		Request:  CopyValue(e.Request),
		Response: CopyValue(e.Response),
		Metadata: maps.Clone(e.Metadata),
	}
}

// CopyValue returns a deep copy of v and its nested values (nil for nil).
func CopyValue(v *Value) *Value {
	if v == nil {
		return nil
	}
	c := &Value{Name: v.Name, Type: v.Type}
	if v.Values != nil {
		c.Values = make([]*Value, len(v.Values))
		for i, f := range v.Values {
			c.Values[i] = CopyValue(f)
		}
	}
	return c
}

// ValidateRegister checks a service handed to Register: it needs a name and
// at least one node, and every node needs an ID (unique within s) and an
// address. Endpoints, if any, need a name. The error wraps ErrInvalid and
// says what is wrong.
func ValidateRegister(s *Service) error {
	if err := validateName(s); err != nil {
		return err
	}
	if len(s.Nodes) == 0 {
		return fmt.Errorf("%w: service %q has no nodes", ErrInvalid, s.Name)
	}
	if err := validateNodes(s, true); err != nil {
		return err
	}
	for i, e := range s.Endpoints {
		if e == nil {
			return fmt.Errorf("%w: service %q: endpoint %d is null", ErrInvalid, s.Name, i)
		}
		if strings.TrimSpace(e.Name) == "" {
			return fmt.Errorf("%w: service %q: endpoint %d has no name", ErrInvalid, s.Name, i)
		}
	}
	return nil
}

// ValidateDeregister checks a service handed to Deregister: it needs a name
// and at least one node, and every node needs an ID. The error wraps
// ErrInvalid.
func ValidateDeregister(s *Service) error {
	if err := validateName(s); err != nil {
		return err
	}
	if len(s.Nodes) == 0 {
		return fmt.Errorf("%w: service %q has no nodes to deregister", ErrInvalid, s.Name)
	}
	return validateNodes(s, false)
}

func validateName(s *Service) error {
	if s == nil {
		return fmt.Errorf("%w: no service", ErrInvalid)
	}
	if strings.TrimSpace(s.Name) == "" {
		return fmt.Errorf("%w: empty service name", ErrInvalid)
	}
	return nil
}

func validateNodes(s *Service, needAddress bool) error {
	seen := make(map[string]bool, len(s.Nodes))
	for i, n := range s.Nodes {
		switch {
		case n == nil:
			return fmt.Errorf("%w: service %q: node %d is null", ErrInvalid, s.Name, i)
		case strings.TrimSpace(n.ID) == "":
			return fmt.Errorf("%w: service %q: node %d has no id", ErrInvalid, s.Name, i)
		case needAddress && strings.TrimSpace(n.Address) == "":
			return fmt.Errorf("%w: service %q: node %q has no address", ErrInvalid, s.Name, n.ID)
		case seen[n.ID]:
			return fmt.Errorf("%w: service %q: node id %q given twice", ErrInvalid, s.Name, n.ID)
		}
		seen[n.ID] = true
	}
	return nil
}

// Merge groups services by name and version into one Service per pair, the
// way GetService returns them. It is meant for registries that store one
// entry per node (parts usually hold one node each). Nodes are joined and
// sorted by ID; a node ID given twice keeps its last occurrence. The
// version-wide fields (Metadata, Endpoints) are taken from the part holding
// the smallest node ID, so the result does not depend on the order of parts
// or on which node refreshed last. Parts without nodes only contribute when
// no part of their name and version has nodes. The result is a deep copy,
// sorted by name then version.
func Merge(parts []*Service) []*Service { return merge(parts, true) }

// MergeView groups parts as Merge does, without the deep copy: the
// Services returned are new, and so are their Nodes slices, but their
// metadata, endpoints and nodes are those of parts. It is for registries
// that keep parts unchanged once made (a cache of decoded entries) and hand
// out only copies; neither the parts nor the result may be changed while
// the other is in use.
func MergeView(parts []*Service) []*Service { return merge(parts, false) }

func merge(parts []*Service, deep bool) []*Service {
	type group struct {
		svc   *Service
		owner string // smallest node ID seen; "" before the first node
		nodes map[string]*Node
	}
	groups := map[[2]string]*group{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		k := [2]string{p.Name, p.Version}
		g := groups[k]
		if g == nil {
			g = &group{nodes: map[string]*Node{}}
			groups[k] = g
		}
		for _, n := range p.Nodes {
			if n == nil {
				continue
			}
			g.nodes[n.ID] = n
			if g.svc == nil || g.owner == "" || n.ID < g.owner {
				g.svc, g.owner = p, n.ID
			}
		}
		if g.svc == nil {
			g.svc = p
		}
	}
	out := make([]*Service, 0, len(groups))
	for _, g := range groups {
		s := &Service{
			Name:      g.svc.Name,
			Version:   g.svc.Version,
			Metadata:  g.svc.Metadata,
			Endpoints: g.svc.Endpoints,
		}
		if deep {
			s.Metadata = maps.Clone(g.svc.Metadata)
			if g.svc.Endpoints != nil {
				s.Endpoints = make([]*Endpoint, len(g.svc.Endpoints))
				for i, e := range g.svc.Endpoints {
					s.Endpoints[i] = CopyEndpoint(e)
				}
			}
		}
		if len(g.nodes) > 0 {
			s.Nodes = make([]*Node, 0, len(g.nodes))
			for _, n := range g.nodes {
				if deep {
					n = CopyNode(n)
				}
				s.Nodes = append(s.Nodes, n)
			}
			sortNodes(s.Nodes)
		}
		out = append(out, s)
	}
	sortServices(out)
	return out
}

func sortNodes(nodes []*Node) {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
}

func sortServices(ss []*Service) {
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].Name != ss[j].Name {
			return ss[i].Name < ss[j].Name
		}
		return ss[i].Version < ss[j].Version
	})
}

// Diff compares two snapshots of a registry (each holding at most one
// Service per name and version, as Merge returns) and returns the watch
// events that lead from old to new, sorted by name then version:
//
//   - Create when a name and version has nodes in new and none in old; the
//     Result holds the whole service as in new.
//   - Update when it has nodes in both but anything differs (its nodes, their
//     addresses or metadata, the service's metadata or endpoints); the Result
//     holds the whole service as in new. A node that went away while others
//     of the same version stay is reported this way.
//   - Delete when it has nodes in old and none in new; the Result holds the
//     service as in old, with the nodes that went away. Other versions of the
//     same name may still be up.
//
// Services without nodes count as absent. Nil and empty maps and slices
// are equal, and the order of nodes does not matter. The Results are deep
// copies.
func Diff(old, new []*Service) []*Result {
	index := func(ss []*Service) map[[2]string]*Service {
		m := make(map[[2]string]*Service, len(ss))
		for _, s := range ss {
			if s != nil && len(s.Nodes) > 0 {
				m[[2]string{s.Name, s.Version}] = s
			}
		}
		return m
	}
	o, n := index(old), index(new)
	var out []*Result
	for k, ns := range n {
		os, ok := o[k]
		switch {
		case !ok:
			out = append(out, &Result{Action: Create, Service: CopyService(ns)})
		case !Equal(os, ns):
			out = append(out, &Result{Action: Update, Service: CopyService(ns)})
		}
	}
	for k, os := range o {
		if _, ok := n[k]; !ok {
			out = append(out, &Result{Action: Delete, Service: CopyService(os)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Service, out[j].Service
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	return out
}

// Equal reports whether a and b describe the same service: same name,
// version, metadata, endpoints and nodes, ignoring the order of nodes and
// the difference between nil and empty maps or slices.
func Equal(a, b *Service) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(canonical(a), canonical(b))
}

// canonical encodes s with its nodes sorted. encoding/json sorts map keys
// and drops empty maps and slices (omitempty), which makes the encoding a
// canonical form.
func canonical(s *Service) []byte {
	c := *s
	c.Nodes = make([]*Node, len(s.Nodes))
	for i, n := range s.Nodes {
		if n == nil {
			n = &Node{}
		}
		c.Nodes[i] = n
	}
	sortNodes(c.Nodes)
	b, err := json.Marshal(&c)
	if err != nil { // cannot happen: Service holds only strings, maps and slices
		panic("registry: encoding a service: " + err.Error())
	}
	return b
}

package command

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/registry"
)

// The completions of the built-ins' parameters (see [CompleteFunc]): the
// names of commands for help, service names from the registry, a service's
// endpoints and an endpoint's request as a JSON skeleton for query, and a
// service's definition for deregister.

// completeHelp proposes the words of the commands the caller may see.
func (b *builtins) completeHelp(ctx context.Context, req *Request, partial string) []string {
	return nextWords(b.table.Visible(ctx, req), req.Words[req.Matched:], partial)
}

// completeService proposes service names for a command taking one.
func (b *builtins) completeService(ctx context.Context, req *Request, partial string) []string {
	if len(req.Params()) != 0 {
		return nil
	}
	return b.serviceNames(ctx, partial)
}

// completeQuery proposes a service, then one of its endpoints, then the
// endpoint's request as JSON with every field empty.
func (b *builtins) completeQuery(ctx context.Context, req *Request, partial string) []string {
	p := req.Params()
	switch len(p) {
	case 0:
		return b.serviceNames(ctx, partial)
	case 1:
		var out []string
		for _, e := range b.endpoints(ctx, p[0]) {
			if strings.HasPrefix(e.Name, partial) {
				out = append(out, e.Name)
			}
		}
		return out
	case 2:
		for _, e := range b.endpoints(ctx, p[0]) {
			if e.Name != p[1] {
				continue
			}
			if s := Skeleton(e.Request); s != "" && strings.HasPrefix(s, partial) {
				return []string{s}
			}
			return nil
		}
	}
	return nil
}

// completeDeregister proposes service names and, once the name is
// unambiguous, the service's definition naming every node, which is what
// deregister takes.
func (b *builtins) completeDeregister(ctx context.Context, req *Request, partial string) []string {
	if len(req.Params()) != 0 {
		return nil
	}
	names := b.serviceNames(ctx, partial)
	if len(names) != 1 {
		return names
	}
	svcs, err := b.reg.GetService(ctx, names[0])
	if err != nil || len(svcs) == 0 {
		return names
	}
	return []string{definitionOf(svcs)}
}

// serviceNames returns the names of the registered services that start
// with prefix, sorted, each once. The http broker's subscriber
// registrations (topic:…) are no services: they are proposed only to a
// prefix that starts as they do.
func (b *builtins) serviceNames(ctx context.Context, prefix string) []string {
	svcs, err := b.reg.ListServices(ctx)
	if err != nil {
		return nil
	}
	_, topics := broker.TopicOfService(prefix)
	var out []string
	for _, s := range svcs {
		if _, topic := broker.TopicOfService(s.Name); topic != topics {
			continue
		}
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, s.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// endpoints returns the endpoints of every version of a service, each name
// once, in the order the versions list them.
func (b *builtins) endpoints(ctx context.Context, service string) []*registry.Endpoint {
	svcs, err := b.reg.GetService(ctx, service)
	if err != nil {
		return nil
	}
	var out []*registry.Endpoint
	seen := map[string]bool{}
	for _, s := range svcs {
		for _, e := range s.Endpoints {
			if e != nil && e.Name != "" && !seen[e.Name] {
				seen[e.Name] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// definitionOf returns the JSON definition deregister takes for the nodes
// of svcs (the versions of one service): its name, its version if it has
// only one, and the id of every node.
func definitionOf(svcs []*registry.Service) string {
	type node struct {
		ID string `json:"id"`
	}
	var d struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
		Nodes   []node `json:"nodes"`
	}
	d.Name = svcs[0].Name
	for _, s := range svcs {
		if len(svcs) == 1 {
			d.Version = s.Version
		}
		for _, n := range s.Nodes {
			d.Nodes = append(d.Nodes, node{ID: n.ID})
		}
	}
	out, _ := json.Marshal(d)
	return spaceJSON(string(out))
}

// maxSkeletonDepth bounds the nesting of a skeleton (schemas may be
// recursive).
const maxSkeletonDepth = 4

// Skeleton returns the JSON of a request described by v with every field
// empty, for a person to fill in: {"name": "", "count": 0, "tags": []}.
// Strings and bytes are "", numbers 0, booleans false, lists [], maps {},
// messages their fields, other types (enums, times) null. It returns ""
// if v is nil.
func Skeleton(v *registry.Value) string {
	if v == nil {
		return ""
	}
	var b strings.Builder
	writeSkeleton(&b, v, 0)
	return b.String()
}

func writeSkeleton(b *strings.Builder, v *registry.Value, depth int) {
	typ := v.Type
	switch {
	case typ == "[]byte" || typ == "[]uint8":
		b.WriteString(`""`)
	case strings.HasPrefix(typ, "[]"):
		b.WriteString("[]")
	case strings.HasPrefix(typ, "map["):
		b.WriteString("{}")
	case len(v.Values) > 0 || depth == 0:
		if depth >= maxSkeletonDepth {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		n := 0
		for _, f := range v.Values {
			if f == nil || f.Name == "" {
				continue
			}
			if n > 0 {
				b.WriteString(", ")
			}
			n++
			name, _ := json.Marshal(f.Name)
			b.Write(name)
			b.WriteString(": ")
			writeSkeleton(b, f, depth+1)
		}
		b.WriteByte('}')
	default:
		b.WriteString(scalarSkeleton(typ))
	}
}

// scalarSkeleton returns the empty value of a scalar type named as the
// framework's schemas name them (Go and protobuf names).
func scalarSkeleton(typ string) string {
	switch typ {
	case "string", "bytes":
		return `""`
	case "bool":
		return "false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
		"float32", "float64", "float", "double", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64":
		return "0"
	}
	return "null"
}

// spaceJSON puts a space after the colons and commas of compact JSON
// outside strings, as a person writes it.
func spaceJSON(s string) string {
	var b strings.Builder
	inString, escaped := false, false
	for _, r := range s {
		b.WriteRune(r)
		switch {
		case escaped:
			escaped = false
		case inString && r == '\\':
			escaped = true
		case r == '"':
			inString = !inString
		case !inString && (r == ':' || r == ','):
			b.WriteByte(' ')
		}
	}
	return b.String()
}

package notify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/microbot/microbot/bot/access"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/internal/trustedfile"
)

// Routes are static routes: topics whose events go to named rooms whatever
// the rooms watch, from a file (--notify_routes):
//
//	routes:
//	  - topic: alerts.prod
//	    rooms: [slack:C0123ABCD, xmpp:ops@conference.example.org]
//	  - topic: deploys
//	    rooms: shell:console
//
// A room is "input:room" as in the access policy (hipchat: is xmpp:).
// The zero value routes nothing.
type Routes struct {
	file    string
	byTopic map[string][]Place
}

// File returns the file the routes came from ("" for none).
func (r *Routes) File() string {
	if r == nil {
		return ""
	}
	return r.file
}

// Topics returns the routed topics, sorted.
func (r *Routes) Topics() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.byTopic))
	for t := range r.byTopic {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Places returns the rooms topic is routed to.
func (r *Routes) Places(topic string) []Place {
	if r == nil {
		return nil
	}
	return r.byTopic[topic]
}

// Len returns how many topic and room pairs there are.
func (r *Routes) Len() int {
	n := 0
	if r != nil {
		for _, ps := range r.byTopic {
			n += len(ps)
		}
	}
	return n
}

// LoadRoutes reads a routes file. inputs are the inputs a room may name
// (the ones that can post); a room of another input is an error, as is a
// bad topic, a room not written input:room, an unknown field or an empty
// file. Errors name the file and line. The file must belong to this user or
// to root and not be writable by everyone (see package
// internal/trustedfile): whoever may change it decides which rooms see
// which events.
func LoadRoutes(path string, inputs []string) (*Routes, error) {
	data, err := trustedfile.Read(path, maxRoutesSize, "whoever may change it decides which rooms see which events")
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return ParseRoutes(path, data, inputs)
}

// maxRoutesSize bounds a routes file.
const maxRoutesSize = 4 << 20

// routesFile is a routes file as written.
type routesFile struct {
	Routes []fileRoute `yaml:"routes"`
}

type fileRoute struct {
	Topic string   `yaml:"topic"`
	Rooms []string `yaml:"-"`
	line  int
}

// UnmarshalYAML reads a route keeping its line, and its rooms as one word
// or a list.
func (r *fileRoute) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a route must be a mapping (topic: ..., rooms: ...)", n.Line)
	}
	r.line = n.Line
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return fmt.Errorf("line %d: field %q given twice in a route", k.Line, k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "topic":
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: topic: want a topic name", v.Line)
			}
			r.Topic = v.Value
		case "rooms":
			switch v.Kind {
			case yaml.ScalarNode:
				r.Rooms = []string{v.Value}
			case yaml.SequenceNode:
				for _, c := range v.Content {
					if c.Kind != yaml.ScalarNode {
						return fmt.Errorf("line %d: rooms: want input:room words", c.Line)
					}
					r.Rooms = append(r.Rooms, c.Value)
				}
			default:
				return fmt.Errorf("line %d: rooms: want input:room or a list of them", v.Line)
			}
		default:
			return fmt.Errorf("line %d: unknown field %q in a route (the fields are topic, rooms)", k.Line, k.Value)
		}
	}
	return nil
}

// ParseRoutes reads routes from data, YAML, which came from the file name
// (for messages). See LoadRoutes.
func ParseRoutes(name string, data []byte, inputs []string) (*Routes, error) {
	var f routesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the routes file is empty: write at least one route, or give no routes file", name)
		}
		return nil, yamlError(name, err)
	}
	if len(f.Routes) == 0 {
		return nil, fmt.Errorf("%s: no routes (want routes: [{topic: ..., rooms: [...]}, ...]); give no routes file for none", name)
	}
	rs := &Routes{file: name, byTopic: map[string][]Place{}}
	for i, fr := range f.Routes {
		at := fmt.Sprintf("%s:%d: route %d", name, fr.line, i+1)
		if err := broker.ValidateTopic(fr.Topic); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if len(fr.Rooms) == 0 {
			return nil, fmt.Errorf("%s: topic %s: no rooms", at, fr.Topic)
		}
		for _, room := range fr.Rooms {
			p, err := ParsePlace(room)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			p = placeOf(p.Input, p.Room)
			if !slices.Contains(inputs, p.Input) {
				return nil, fmt.Errorf("%s: room %s: the bot posts on %s, not on %q", at, room, strings.Join(inputs, ", "), p.Input)
			}
			if !slices.Contains(rs.byTopic[fr.Topic], p) {
				rs.byTopic[fr.Topic] = append(rs.byTopic[fr.Topic], p)
			}
		}
	}
	return rs, nil
}

// yamlError turns a YAML error into one line per problem, each
// "file:line: message" (or "file: message" without a line).
func yamlError(name string, err error) error {
	var msgs []string
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for i, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if n, msg, ok := strings.Cut(rest, ": "); ok {
				msgs[i] = name + ":" + n + ": " + msg
				continue
			}
		}
		msgs[i] = name + ": " + m
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// placeOf is the place of a room of an input, under the one name the
// access policy knows the input by (exec is shell, hipchat is xmpp; XMPP
// addresses in lower case).
func placeOf(input, room string) Place {
	p, _ := ParsePlace(access.Qualify(input, room))
	return p
}

// InputName returns the one name an input's rooms go by in watches and
// routes: its events' (hipchat is xmpp, exec is shell).
func InputName(name string) string { return placeOf(name, "-").Input }

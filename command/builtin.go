package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/input"
)

// Caller calls services. *client.Client is one.
type Caller interface {
	Call(ctx context.Context, service, endpoint string, req, rsp any, opts ...client.CallOption) error
}

// Reserved returns the words no command added at run time may take besides
// the names of the built-ins that cannot be replaced: "confirm" is kept for
// the confirmation of dangerous commands. The slice is new each call.
func Reserved() []string { return []string{"confirm"} }

// builtins holds what the built-in commands need.
type builtins struct {
	table         *Table
	reg           registry.Registry
	caller        Caller
	healthTimeout time.Duration
	ownTopics     []string
	now           func() time.Time
}

// BuiltinOption configures the built-in commands.
type BuiltinOption func(*builtins)

// WithHealthTimeout bounds the health call to each node (default 5 s; the
// command's own deadline applies too).
func WithHealthTimeout(d time.Duration) BuiltinOption {
	return func(b *builtins) { b.healthTimeout = d }
}

// WithOwnTopics names the topic prefixes of the bots' own plumbing (the
// progress of commands): list services neither lists nor counts the http
// broker's subscriptions of those topics, which say nothing to the people
// reading the list; get service topic:<topic> still shows one.
func WithOwnTopics(prefixes ...string) BuiltinOption {
	return func(b *builtins) { b.ownTopics = append(b.ownTopics, prefixes...) }
}

// RegisterBuiltins registers the built-in commands in t, in the order of
// the original micro bot's help, and reserves the words of [Reserved]. reg and c are the
// registry and client list, get, query, health, register and deregister
// use.
func RegisterBuiltins(t *Table, reg registry.Registry, c Caller, opts ...BuiltinOption) error {
	b := &builtins{table: t, reg: reg, caller: c, healthTimeout: 5 * time.Second, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	t.Reserve(Reserved()...)
	return t.Register(b.commands()...)
}

func (b *builtins) commands() []*Command {
	return []*Command{
		{Name: "help", Usage: "help", Description: "Displays help for all known commands", Run: b.help, Complete: b.completeHelp},
		{Name: "list services", Usage: "list services", Description: "Returns a list of registered services", Run: b.listServices},
		{Name: "get service", Usage: "get service [name]", Description: "Returns a registered service", Run: b.getService, Complete: b.completeService},
		{Name: "query", Aliases: []string{"call"}, Usage: "query [service] [method] [request]", Description: "Returns the response for a service query", Run: b.query, Complete: b.completeQuery},
		{Name: "health", Usage: "health [service]", Description: "Returns health of a service", Run: b.health, Complete: b.completeService},
		{Name: "register service", Usage: "register service [definition]", Description: "Registers a service", Run: b.register},
		{Name: "deregister service", Usage: "deregister service [definition]", Description: "Deregisters a service", Run: b.deregister, Complete: b.completeDeregister},
		{Name: "echo", Usage: "echo [text]", Description: "Returns the [text]", Replaceable: true, Run: echo},
		{Name: "hello", Usage: "hello", Description: "Returns a greeting", Replaceable: true, Run: hello},
		{Name: "ping", Usage: "ping", Description: "Returns pong", Replaceable: true, Run: ping},
		{Name: "time", Usage: "time", Description: "Returns the server time", Replaceable: true, Run: b.time},
		{Name: "the three laws", Aliases: []string{"three laws"}, Usage: "the three laws", Description: "Returns the three laws of robotics", Replaceable: true, Run: threeLaws},
	}
}

// help lists the commands the caller may see, or the line of the commands
// whose name starts with the words given ("help get").
func (b *builtins) help(ctx context.Context, req *Request) (*input.Reply, error) {
	cmds := b.table.Visible(ctx, req)
	if want := fold(strings.Join(req.Params(), " ")); want != "" {
		cmds = slices.DeleteFunc(cmds, func(c *Command) bool {
			for _, p := range c.patterns() {
				if strings.HasPrefix(strings.Join(p, " "), want) {
					return false
				}
			}
			return true
		})
		if len(cmds) == 0 {
			return nil, fmt.Errorf("no command %s — type \"help\" for the list", Quote(strings.Join(req.Params(), " ")))
		}
	}
	lines := make([]string, len(cmds))
	for i, c := range cmds {
		lines[i] = c.HelpLine()
	}
	return Text(strings.Join(lines, "\n")), nil
}

// listServices lists the registered services, leaving out the http
// broker's subscriber registrations ("topic:alerts": no service), which it
// counts in a line of its own unless they are the bots' own (see
// [WithOwnTopics]); get service shows one.
func (b *builtins) listServices(ctx context.Context, req *Request) (*input.Reply, error) {
	svcs, err := b.reg.ListServices(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	var names, topics []string
	for _, s := range svcs {
		if topic, ok := broker.TopicOfService(s.Name); ok {
			if !b.ownTopic(topic) {
				topics = append(topics, s.Name)
			}
			continue
		}
		names = append(names, line(s.Name))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	slices.Sort(topics)
	topics = slices.Compact(topics)
	note := ""
	switch len(topics) {
	case 0:
	case 1:
		note = "(1 http broker subscription not listed: get service topic:<topic>)"
	default:
		note = fmt.Sprintf("(%d http broker subscriptions not listed: get service topic:<topic>)", len(topics))
	}
	if len(names) == 0 {
		return Text(strings.TrimSpace("no services registered " + note)), nil
	}
	if note != "" {
		names = append(names, "", note)
	}
	return Code(strings.Join(names, "\n")), nil
}

// ownTopic reports whether topic is one of the bots' own (see
// [WithOwnTopics]).
func (b *builtins) ownTopic(topic string) bool {
	for _, p := range b.ownTopics {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

func (b *builtins) getService(ctx context.Context, req *Request) (*input.Reply, error) {
	p := req.Params()
	if len(p) != 1 {
		return nil, Usagef(req.Command, "which service?")
	}
	svcs, err := b.reg.GetService(ctx, p[0])
	if err != nil {
		return nil, serviceError(p[0], err)
	}
	return Code(formatService(svcs)), nil
}

// query calls an endpoint with a JSON request and shows the JSON response.
func (b *builtins) query(ctx context.Context, req *Request) (*input.Reply, error) {
	p := req.Params()
	if len(p) < 2 {
		return nil, Usagef(req.Command, "which service and method?")
	}
	service, method := p[0], p[1]
	body, err := JSONObject(req.Rest(2))
	if err != nil {
		return nil, fmt.Errorf("request: %w — nothing was sent", err)
	}
	var rsp json.RawMessage
	if err := b.caller.Call(ctx, service, method, body, &rsp, client.WithContentType("application/json")); err != nil {
		return nil, CallError(service, method, err)
	}
	out, err := indentJSON(rsp)
	if err != nil {
		return nil, fmt.Errorf("%s %s answered with invalid JSON: %w", service, method, err)
	}
	// JSON escapes C0 controls in strings, but C1 controls, bidi controls
	// and invalid UTF-8 may stand in it as they are.
	return Code(input.Printable(out)), nil
}

// health calls Debug.Health on every node of a service, in parallel.
func (b *builtins) health(ctx context.Context, req *Request) (*input.Reply, error) {
	p := req.Params()
	if len(p) != 1 {
		return nil, Usagef(req.Command, "health of what?")
	}
	svcs, err := b.reg.GetService(ctx, p[0])
	if err != nil {
		return nil, serviceError(p[0], err)
	}
	type result struct {
		node   *registry.Node
		status string
		err    error
	}
	var results [][]result
	var wg sync.WaitGroup
	for _, s := range svcs {
		rs := make([]result, len(s.Nodes))
		results = append(results, rs)
		for i, n := range s.Nodes {
			rs[i].node = n
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, b.healthTimeout)
				defer cancel()
				var rsp struct {
					Status string `json:"status"`
				}
				err := b.caller.Call(cctx, s.Name, "Debug.Health", json.RawMessage(`{}`), &rsp,
					client.WithNode(n), client.WithContentType("application/json"),
					client.WithRequestTimeout(b.healthTimeout), client.WithRetries(0))
				rs[i].status, rs[i].err = rsp.Status, err
			})
		}
	}
	wg.Wait()
	var sb strings.Builder
	failed, total := 0, 0
	fmt.Fprintf(&sb, "service %s\n", line(svcs[0].Name))
	for i, s := range svcs {
		fmt.Fprintf(&sb, "\nversion %s\n\n", orDash(line(s.Version)))
		rows := [][]string{{"NODE", "ADDRESS", "STATUS"}}
		for _, r := range results[i] {
			total++
			status := orDash(line(r.status))
			if r.err != nil {
				failed++
				status = "error: " + line(CallError(s.Name, "Debug.Health", r.err).Error())
			}
			rows = append(rows, []string{line(r.node.ID), line(r.node.Address), status})
		}
		sb.WriteString(Columns(rows))
	}
	rep := Code(strings.TrimRight(sb.String(), "\n"))
	if failed > 0 {
		rep.Text += fmt.Sprintf("\nerror: %d of %d nodes unhealthy", failed, total)
		rep.Error = true
	}
	return rep, nil
}

func (b *builtins) register(ctx context.Context, req *Request) (*input.Reply, error) {
	s, err := parseDefinition(req, true)
	if err != nil {
		return nil, err
	}
	if err := b.reg.Register(ctx, s); err != nil {
		return nil, fmt.Errorf("registering %s: %w", s.Name, err)
	}
	return Text(fmt.Sprintf("registered %s (%s)", s.Name, plural(len(s.Nodes), "node"))), nil
}

func (b *builtins) deregister(ctx context.Context, req *Request) (*input.Reply, error) {
	s, err := parseDefinition(req, false)
	if err != nil {
		return nil, err
	}
	if err := b.reg.Deregister(ctx, s); err != nil {
		return nil, fmt.Errorf("deregistering %s: %w", s.Name, err)
	}
	return Text(fmt.Sprintf("deregistered %s (%s)", s.Name, plural(len(s.Nodes), "node"))), nil
}

func echo(ctx context.Context, req *Request) (*input.Reply, error) {
	p := req.Params()
	if len(p) == 0 {
		return nil, Usagef(req.Command, "echo what?")
	}
	return Text(strings.Join(p, " ")), nil
}

func hello(context.Context, *Request) (*input.Reply, error) { return Text("hey what's up?"), nil }

func ping(context.Context, *Request) (*input.Reply, error) { return Text("pong"), nil }

func (b *builtins) time(context.Context, *Request) (*input.Reply, error) {
	return Text("Server time is: " + b.now().Format(time.RFC1123)), nil
}

func threeLaws(context.Context, *Request) (*input.Reply, error) {
	return Text(strings.Join([]string{
		"1. A robot may not injure a human being or, through inaction, allow a human being to come to harm.",
		"2. A robot must obey the orders given it by human beings except where such orders would conflict with the First Law.",
		"3. A robot must protect its own existence as long as such protection does not conflict with the First or Second Law.",
	}, "\n")), nil
}

// definition is the JSON form register and deregister accept: a
// registry.Service whose nodes may also give their port apart, as the
// micro toolkit's examples do ({"address": "127.0.0.1", "port": 8080}).
type definition struct {
	Name      string               `json:"name"`
	Version   string               `json:"version"`
	Metadata  map[string]string    `json:"metadata"`
	Endpoints []*registry.Endpoint `json:"endpoints"`
	Nodes     []definitionNode     `json:"nodes"`
}

type definitionNode struct {
	ID       string            `json:"id"`
	Address  string            `json:"address"`
	Port     json.Number       `json:"port"`
	Metadata map[string]string `json:"metadata"`
}

// parseDefinition reads and checks the JSON service definition of register
// (full: nodes need an address) or deregister.
func parseDefinition(req *Request, full bool) (*registry.Service, error) {
	raw := rawParam(req, 0)
	if raw == "" {
		return nil, Usagef(req.Command, "which service? give its JSON definition, e.g. "+
			`{"name": "foo", "version": "1.0.0", "nodes": [{"id": "foo-1", "address": "127.0.0.1:8080"}]}`)
	}
	var d definition
	if err := decodeStrict(raw, &d); err != nil {
		return nil, fmt.Errorf("definition: %w", err)
	}
	if d.Name == "" || strings.ContainsFunc(d.Name, isSpaceOrControl) {
		return nil, errors.New(`definition: "name" must be set, without spaces`)
	}
	if len(d.Nodes) == 0 {
		return nil, errors.New(`definition: "nodes" must list at least one node`)
	}
	s := &registry.Service{Name: d.Name, Version: d.Version, Metadata: d.Metadata, Endpoints: d.Endpoints}
	seen := map[string]bool{}
	for i, n := range d.Nodes {
		if n.ID == "" {
			return nil, fmt.Errorf(`definition: node %d: "id" must be set`, i+1)
		}
		if seen[n.ID] {
			return nil, fmt.Errorf("definition: node id %q given twice", n.ID)
		}
		seen[n.ID] = true
		addr := n.Address
		if n.Port != "" {
			port, err := strconv.ParseUint(n.Port.String(), 10, 16)
			if err != nil || port == 0 {
				return nil, fmt.Errorf("definition: node %q: port %s is not a port number", n.ID, n.Port)
			}
			if _, _, err := net.SplitHostPort(addr); err != nil {
				addr = net.JoinHostPort(addr, n.Port.String())
			}
		}
		if full || addr != "" {
			if err := checkAddress(addr); err != nil {
				return nil, fmt.Errorf("definition: node %q: %w", n.ID, err)
			}
		}
		s.Nodes = append(s.Nodes, &registry.Node{ID: n.ID, Address: addr, Metadata: n.Metadata})
	}
	return s, nil
}

// checkAddress checks a node address is host:port.
func checkAddress(addr string) error {
	if addr == "" {
		return errors.New(`"address" must be set (host:port)`)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); host == "" || err != nil || p == 0 {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	return nil
}

// rawParam returns the text from parameter i to the end, verbatim; if that
// is a single quoted word ('{"a": 1}' as typed in a shell), its content.
func rawParam(req *Request, i int) string {
	raw := req.Rest(i)
	if j := req.Matched + i; j == len(req.Words)-1 && req.Words[j].Quoted {
		return req.Words[j].Text
	}
	return raw
}

// JSONObject checks that raw, the JSON a person typed, is one JSON object
// (empty means {}; one pair of quotes around it, typed as in a shell, is
// taken off) and returns it compacted, numbers as written. An error says
// what is wrong and where.
func JSONObject(raw string) (json.RawMessage, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) >= 2 && (raw[0] == '\'' || raw[0] == '"') && raw[len(raw)-1] == raw[0] && raw[1] == '{' {
		raw = raw[1 : len(raw)-1] // '{"name": "John"}' typed as in a shell
	}
	var v any
	if err := decodeStrict(raw, &v); err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("must be a JSON object ({...}), not %s", jsonKind(v))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		return nil, err
	}
	return json.RawMessage(buf.Bytes()), nil
}

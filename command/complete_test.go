package command_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/input"
)

func complete(t *testing.T, table *command.Table, user, head string) (int, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := &input.Event{Input: "shell", UserID: user, Text: head}
	from, got := table.Complete(ctx, ev)
	if ev.Text != head {
		t.Errorf("Complete changed the event's text to %q", ev.Text)
	}
	return from, got
}

func TestComplete(t *testing.T) {
	f := newFixture(t)
	trial := func(context.Context, *command.Request) (*input.Reply, error) { return command.Text("ok"), nil }
	if err := f.table.Put(&command.Command{Name: "trial", Run: trial}); err != nil {
		t.Fatal(err)
	}
	svcs, err := f.reg.GetService(context.Background(), "go.micro.srv.greeter")
	if err != nil || len(svcs) != 1 || len(svcs[0].Nodes) != 1 {
		t.Fatalf("greeter: %v, %v", svcs, err)
	}
	node := svcs[0].Nodes[0].ID
	tests := []struct {
		head string
		from int
		want string // candidates joined by |
	}{
		{"", 0, "call|deregister|echo|get|health|hello|help|list|ping|query|register|the|three|time|trial"},
		{"he", 0, "health|hello|help"},
		{"HE", 0, "health|hello|help"},
		{"  quer", 2, "query"},
		{"tri", 0, "trial"},
		{"li", 0, "list"},
		{"list ", 5, "services"},
		{"list s", 5, "services"},
		{"list services ", 14, ""},
		{"get s", 4, "service"},
		{"nosuch ", 7, ""},
		{"get service go.micro.srv.gr", 12, "go.micro.srv.greeter"},
		{"get service ", 12, "go.micro.srv.greeter"},
		{"get service x", 12, ""},
		{"get service go.micro.srv.greeter ", 33, ""},
		{"health go", 7, "go.micro.srv.greeter"},
		{"query go.micro.srv.gr", 6, "go.micro.srv.greeter"},
		{"call go.micro.srv.gr", 5, "go.micro.srv.greeter"},
		{"query go.micro.srv.greeter ", 27, "Debug.Health|Say.Hello"},
		{"query go.micro.srv.greeter Say", 27, "Say.Hello"},
		{"query go.micro.srv.greeter Say.Hello ", 37, `{"name": ""}`},
		{"query go.micro.srv.greeter Say.Hello {", 37, `{"name": ""}`},
		{`query go.micro.srv.greeter Say.Hello {"x`, 37, ""},
		{"query go.micro.srv.greeter Nope.Nope ", 37, ""},
		{"query nosuch ", 13, ""},
		{"deregister service go.micro.srv.gr", 19, `{"name": "go.micro.srv.greeter", "version": "1.0.0", "nodes": [{"id": "` + node + `"}]}`},
		{"register service ", 17, ""},
		{"help ge", 5, "get"},
		{"help get ", 9, "service"},
		{"ping ", 5, ""},
		{"“query” go.micro", len("“query” go.micro"), ""}, // typographic quotes: no completion rather than a wrong one
	}
	for _, tt := range tests {
		from, got := complete(t, f.table, "ann", tt.head)
		if from != tt.from || strings.Join(got, "|") != tt.want {
			t.Errorf("Complete(%q) = %d, %q; want %d, %q", tt.head, from, strings.Join(got, "|"), tt.from, tt.want)
		}
	}
}

func TestCompleteOnlyWhatTheCallerMaySee(t *testing.T) {
	reg := memory.New()
	c, err := client.New(client.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hideQuery := func(ctx context.Context, req *command.Request, cmd *command.Command) bool {
		return req.Event.UserID != "bob" || cmd.Name != "query"
	}
	table := command.NewTable(command.WithVisibility(hideQuery))
	if err := command.RegisterBuiltins(table, reg, c); err != nil {
		t.Fatal(err)
	}
	reg.Register(context.Background(), &registry.Service{Name: "go.micro.srv.x", Nodes: []*registry.Node{{ID: "x-1", Address: "127.0.0.1:1"}}})
	for _, tt := range []struct{ user, head, want string }{
		{"ann", "que", "query"},
		{"bob", "que", ""},
		{"ann", "query go", "go.micro.srv.x"},
		{"bob", "query go", ""},
		{"bob", "call go", ""},
		{"bob", "health go", "go.micro.srv.x"},
		{"bob", "help q", ""},
	} {
		if _, got := complete(t, table, tt.user, tt.head); strings.Join(got, "|") != tt.want {
			t.Errorf("%s: Complete(%q) = %q, want %q", tt.user, tt.head, got, tt.want)
		}
	}
}

// stuckRegistry answers nothing until the caller gives up.
type stuckRegistry struct{ registry.Registry }

func (stuckRegistry) ListServices(ctx context.Context) ([]*registry.Service, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (stuckRegistry) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestCompleteGivesUpWithTheContext(t *testing.T) {
	table := command.NewTable()
	if err := command.RegisterBuiltins(table, stuckRegistry{memory.New()}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	for _, head := range []string{"get service go", "query go.micro.srv.x ", "deregister service x"} {
		if _, got := table.Complete(ctx, &input.Event{Text: head}); len(got) != 0 {
			t.Errorf("Complete(%q) on a stuck registry = %q", head, got)
		}
	}
}

func TestSkeleton(t *testing.T) {
	str := func(name string) *registry.Value { return &registry.Value{Name: name, Type: "string"} }
	deep := &registry.Value{Name: "d", Type: "Node"}
	deep.Values = []*registry.Value{{Name: "next", Type: "Node", Values: []*registry.Value{{Name: "next", Type: "Node", Values: []*registry.Value{{Name: "next", Type: "Node", Values: []*registry.Value{{Name: "next", Type: "Node", Values: []*registry.Value{str("leaf")}}}}}}}}}
	tests := []struct {
		v    *registry.Value
		want string
	}{
		{nil, ""},
		{&registry.Value{Name: "Empty", Type: "Empty"}, "{}"},
		{&registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{str("name")}}, `{"name": ""}`},
		{&registry.Value{Name: "R", Type: "R", Values: []*registry.Value{
			{Name: "count", Type: "int64"}, {Name: "ok", Type: "bool"}, {Name: "ratio", Type: "double"},
			{Name: "tags", Type: "[]string"}, {Name: "blob", Type: "bytes"}, {Name: "raw", Type: "[]byte"},
			{Name: "labels", Type: "map[string]string"}, {Name: "kind", Type: "Kind"}, {Name: "", Type: "string"},
			{Name: "sub", Type: "Sub", Values: []*registry.Value{str("a"), {Name: "b", Type: "uint32"}}},
			{Name: "say \"hi\"", Type: "string"},
		}}, `{"count": 0, "ok": false, "ratio": 0, "tags": [], "blob": "", "raw": "", "labels": {}, "kind": null, "sub": {"a": "", "b": 0}, "say \"hi\"": ""}`},
		{deep, `{"next": {"next": {"next": {"next": {}}}}}`},
	}
	for _, tt := range tests {
		if got := command.Skeleton(tt.v); got != tt.want {
			t.Errorf("Skeleton(%+v)\n got %s\nwant %s", tt.v, got, tt.want)
		}
	}
}

// Completion offers nothing that holds a control character: a candidate is
// typed into the reader's line as it is (issue 15, item 9).
func TestCompleteSkipsUnprintable(t *testing.T) {
	f := newFixture(t)
	if err := f.reg.Register(context.Background(), &registry.Service{Name: "go.micro.srv.gr\x1b]0;x\x07",
		Endpoints: []*registry.Endpoint{{Name: "Say.\u202eHello"}},
		Nodes:     []*registry.Node{{ID: "e1", Address: "127.0.0.1:1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, got := complete(t, f.table, "ann", "get service go.micro.srv.gr"); strings.Join(got, "|") != "go.micro.srv.greeter" {
		t.Errorf("candidates %q", got)
	}
	if _, got := complete(t, f.table, "ann", "query go.micro.srv.gr\x1b]0;x\x07 Say"); len(got) != 0 {
		t.Errorf("candidates %q", got)
	}
}

// BenchmarkComplete completes a service name among 1,000 registered
// services, and a command word, as Tab does, on the memory and the local
// registry.
func BenchmarkComplete(b *testing.B) {
	ctx := context.Background()
	for _, kind := range []string{"memory", "local"} {
		var reg registry.Registry = memory.New()
		if kind == "local" {
			l, err := local.New(local.WithDir(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			reg = l
		}
		table := command.NewTable()
		if err := command.RegisterBuiltins(table, reg, nil); err != nil {
			b.Fatal(err)
		}
		for i := range 1000 {
			name := fmt.Sprintf("go.micro.srv.s%03d", i)
			if err := reg.Register(ctx, &registry.Service{Name: name, Nodes: []*registry.Node{{ID: name + "-1", Address: "127.0.0.1:1"}}}); err != nil {
				b.Fatal(err)
			}
		}
		for _, head := range []string{"get service go.micro.srv.s99", "he"} {
			b.Run(kind+"/"+strings.Fields(head)[0], func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, got := table.Complete(ctx, &input.Event{Text: head}); len(got) == 0 {
						b.Fatal("no candidates")
					}
				}
			})
		}
	}
}

// TestCompleteLeavesTopicsOut: service names proposed leave the http
// broker's subscriber registrations out, unless what is typed starts as
// they do.
func TestCompleteLeavesTopicsOut(t *testing.T) {
	f := newFixture(t)
	registerTopic(t, f.reg, "alerts")
	registerTopic(t, f.reg, "go.micro.bot.progress.0123")
	for _, tt := range []struct {
		head string
		want string
	}{
		{"get service ", "go.micro.srv.greeter"},
		{"health ", "go.micro.srv.greeter"},
		{"query t", ""},
		{"get service topic:", "topic:alerts|topic:go.micro.bot.progress.0123"},
		{"get service topic:a", "topic:alerts"},
	} {
		if _, got := complete(t, f.table, "ann", tt.head); strings.Join(got, "|") != tt.want {
			t.Errorf("Complete(%q) = %q, want %q", tt.head, strings.Join(got, "|"), tt.want)
		}
	}
}

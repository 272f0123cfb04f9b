package command

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/microbot/microbot/input"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"ping", []string{"ping"}},
		{"list   services", []string{"list", "services"}},
		{"list\tservices\t", []string{"list", "services"}},
		{"echo \"hello  world\" x", []string{"echo", "hello  world", "x"}},
		{"echo 'a b' c", []string{"echo", "a b", "c"}},
		{"echo don't do it", []string{"echo", "don't", "do", "it"}},
		{"echo \"unclosed quote", []string{"echo", "\"unclosed", "quote"}},
		{"echo \"\"", []string{"echo", ""}},
		{"echo \"ab\"cd", []string{"echo", "abcd"}},
		{"echo\u00a0nbsp", []string{"echo", "nbsp"}},
		{"echo \xff\xfe", []string{"echo", "\xff\xfe"}},
	}
	for _, tt := range tests {
		var got []string
		for _, w := range Split(Normalize(tt.in)) {
			got = append(got, w.Text)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeTypographicQuotes(t *testing.T) {
	got := Normalize("  query svc M {\u201cname\u201d: \u201cJohn\u2019s\u201d} ")
	want := `query svc M {"name": "John's"}`
	if got != want {
		t.Errorf("Normalize = %q, want %q", got, want)
	}
	words := Split(Normalize("echo \u201chello world\u201d"))
	if len(words) != 2 || words[1].Text != "hello world" || !words[1].Quoted {
		t.Errorf("typographic quotes do not quote: %+v", words)
	}
}

func run(text string) RunFunc {
	return func(context.Context, *Request) (*input.Reply, error) { return Text(text), nil }
}

func testTable(t testing.TB) *Table {
	t.Helper()
	tb := NewTable()
	err := tb.Register(
		&Command{Name: "help", Usage: "help", Run: run("help")},
		&Command{Name: "list services", Usage: "list services", Run: run("list")},
		&Command{Name: "get service", Usage: "get service [name]", Run: run("get")},
		&Command{Name: "query", Aliases: []string{"call"}, Usage: "query [service] [method] [request]", Run: run("query")},
		&Command{Name: "echo", Usage: "echo [text]", Replaceable: true, Run: run("echo")},
		&Command{Name: "the three laws", Aliases: []string{"three laws"}, Usage: "the three laws", Replaceable: true, Run: run("laws")},
		&Command{Name: "the", Usage: "the [thing]", Replaceable: true, Run: run("the")},
	)
	if err != nil {
		t.Fatal(err)
	}
	tb.Reserve("confirm")
	return tb
}

func TestMatch(t *testing.T) {
	tb := testTable(t)
	tests := []struct {
		in      string
		want    string // command name; "" for none
		params  []string
		similar []string
	}{
		{"help", "help", nil, nil},
		{"HELP", "help", nil, nil},
		{"Help me", "help", []string{"me"}, nil},
		{"list services", "list services", nil, nil},
		{"List  Services  now", "list services", []string{"now"}, nil},
		{"list", "", nil, []string{"list services"}},
		{"list nodes", "", nil, []string{"list services"}},
		{"get service go.micro.srv.greeter", "get service", []string{"go.micro.srv.greeter"}, nil},
		{"call svc Say.Hello", "query", []string{"svc", "Say.Hello"}, nil},
		{"the three laws", "the three laws", nil, nil}, // longest pattern wins over "the"
		{"the Three Laws of robotics", "the three laws", []string{"of", "robotics"}, nil},
		{"three laws", "the three laws", nil, nil},
		{"the cake", "the", []string{"cake"}, nil},
		{"foo", "", nil, nil},
		{"", "", nil, nil},
		{"\"list\" services", "list services", nil, nil},
	}
	for _, tt := range tests {
		req := tb.Match(tt.in)
		got := ""
		if req.Command != nil {
			got = req.Command.Name
		}
		if got != tt.want {
			t.Errorf("Match(%q) = %q, want %q", tt.in, got, tt.want)
			continue
		}
		if p := req.Params(); req.Command != nil && (len(p) != len(tt.params) || (len(p) > 0 && !slices.Equal(p, tt.params))) {
			t.Errorf("Match(%q).Params() = %q, want %q", tt.in, p, tt.params)
		}
		var sim []string
		for _, c := range req.Similar {
			sim = append(sim, c.Name)
		}
		if !slices.Equal(sim, tt.similar) {
			t.Errorf("Match(%q).Similar = %q, want %q", tt.in, sim, tt.similar)
		}
	}
}

func TestRestKeepsTheRawTail(t *testing.T) {
	tb := testTable(t)
	req := tb.Match("query  go.micro.srv.greeter   Say.Hello   {\"name\":   \"John  Smith\"}  ")
	if got, want := req.Rest(2), `{"name":   "John  Smith"}`; got != want {
		t.Errorf("Rest(2) = %q, want %q", got, want)
	}
	if got := req.Rest(4); got != "" {
		t.Errorf("Rest past the end = %q, want empty", got)
	}
	if got := req.Args(); got[0] != "query" || len(got) != 5 {
		t.Errorf("Args = %q", got)
	}
}

func TestPutReplacesToysAndRefusesProtected(t *testing.T) {
	tb := testTable(t)
	svc := &Command{Name: "echo", Usage: "echo [anything] (service)", Run: run("service echo")}
	if err := tb.Put(svc); err != nil {
		t.Fatal(err)
	}
	if req := tb.Match("echo hi"); req.Command != svc {
		t.Fatalf("echo with a service up matched %v", req.Command.Name)
	}
	if n := countUsage(tb, "echo"); n != 1 {
		t.Errorf("help lists %d echo lines, want 1", n)
	}
	if !tb.Remove("echo") {
		t.Fatal("Remove(echo) = false")
	}
	if req := tb.Match("echo hi"); req.Command == nil || req.Command.Usage != "echo [text]" {
		t.Fatalf("built-in echo did not come back")
	}

	// A service named "the" takes the word: "the three laws" is hidden too.
	if err := tb.Put(&Command{Name: "the", Run: run("svc the")}); err != nil {
		t.Fatal(err)
	}
	if req := tb.Match("the three laws"); req.Command == nil || req.Command.Name != "the" || req.Command.Replaceable {
		t.Errorf("the three laws with service 'the' up: %+v", req.Command)
	}
	tb.Remove("the")

	for _, name := range []string{"help", "list", "LIST", "get", "query", "call", "confirm"} {
		err := tb.Put(&Command{Name: name, Run: run("x")})
		if !errors.Is(err, ErrReserved) {
			t.Errorf("Put(%q) = %v, want ErrReserved", name, err)
		}
	}
	for _, name := range []string{"", "two words", " lead"} {
		if err := tb.Put(&Command{Name: name, Run: run("x")}); err == nil {
			t.Errorf("Put(%q) accepted", name)
		}
	}
	if tb.Remove("nothing") {
		t.Error("Remove of an unknown command = true")
	}
}

func countUsage(tb *Table, prefix string) int {
	n := 0
	for _, c := range tb.Commands() {
		if strings.HasPrefix(c.Usage, prefix) {
			n++
		}
	}
	return n
}

func TestRegisterRefusesDuplicates(t *testing.T) {
	tb := testTable(t)
	if err := tb.Register(&Command{Name: "call", Run: run("x")}); err == nil {
		t.Error("a pattern taken by an alias was accepted")
	}
	if err := tb.Register(&Command{Name: "x"}); err == nil {
		t.Error("a command without Run was accepted")
	}
}

func TestExecuteUnknownAndErrors(t *testing.T) {
	tb := testTable(t)
	ctx := context.Background()
	tests := []struct {
		in, want string
	}{
		{"foo bar", `unknown command "foo" — type "help" for the list`},
		{"list", `unknown command "list" — did you mean "list services"? type "help" for the list`},
		{"\x00\xff", `unknown command "\x00\xff" — type "help" for the list`},
		{strings.Repeat("é", 50), `unknown command "` + strings.Repeat("é", 40) + `"…`},
	}
	for _, tt := range tests {
		rep := tb.Execute(ctx, tb.Match(tt.in))
		if !rep.Error || !strings.HasPrefix(rep.Text, tt.want) {
			t.Errorf("Execute(%q) = %+v, want an error starting %q", tt.in, rep, tt.want)
		}
		if !utf8.ValidString(rep.Text) {
			t.Errorf("reply to %q is not valid UTF-8: %q", tt.in, rep.Text)
		}
	}
	fail := &Command{Name: "fail", Usage: "fail", Run: func(context.Context, *Request) (*input.Reply, error) {
		return nil, fmt.Errorf("it broke")
	}}
	if err := tb.Put(fail); err != nil {
		t.Fatal(err)
	}
	if rep := tb.Execute(ctx, tb.Match("fail")); !rep.Error || rep.Text != "error: it broke" {
		t.Errorf("failing command reply = %+v", rep)
	}
}

func TestVisibilityFiltersSuggestions(t *testing.T) {
	tb := NewTable(WithVisibility(func(ctx context.Context, req *Request, c *Command) bool {
		return c.Name != "list services"
	}))
	if err := tb.Register(&Command{Name: "list services", Usage: "list services", Run: run("x")},
		&Command{Name: "ping", Usage: "ping", Run: run("pong")}); err != nil {
		t.Fatal(err)
	}
	req := tb.Match("list")
	if rep := tb.Execute(context.Background(), req); strings.Contains(rep.Text, "list services") {
		t.Errorf("a hidden command was suggested: %q", rep.Text)
	}
	if v := tb.Visible(context.Background(), req); len(v) != 1 || v[0].Name != "ping" {
		t.Errorf("Visible = %v", v)
	}
}

// FuzzMatch checks the parser and the matcher never panic, keep offsets
// inside the line, and give a reply that is valid UTF-8.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{
		"help", "list services", `query go.micro.srv.greeter Say.Hello {"name": "John"}`,
		"echo “hi there”", "echo 'a", "the three laws of robotics", "\x00\xff\xfe", "   ",
		"call svc M '{\"a\": [1, 2]}'", "echo \"\" ''", "\u00a0\u2028echo",
	} {
		f.Add(s)
	}
	tb := testTable(f)
	if err := tb.Put(&Command{Name: "deploy", Run: run("deployed")}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		req := tb.Match(s)
		for i, w := range req.Words {
			if w.Start < 0 || w.End > len(req.Text) || w.Start >= w.End {
				t.Fatalf("word %d %+v out of the line %q", i, w, req.Text)
			}
		}
		for i := range req.Params() {
			if r := req.Rest(i); !strings.HasSuffix(req.Text, r) || r == "" {
				t.Fatalf("Rest(%d) = %q is not a tail of %q", i, r, req.Text)
			}
		}
		if req.Command != nil && req.Matched > len(req.Words) {
			t.Fatalf("matched %d of %d words", req.Matched, len(req.Words))
		}
		if rep := tb.Execute(context.Background(), req); rep == nil || !utf8.ValidString(rep.Text) && req.Command == nil {
			t.Fatalf("bad reply %+v for %q", rep, s)
		}
	})
}

// BenchmarkMatchExecute matches and runs a line with 1,000 commands added
// at run time.
func BenchmarkMatchExecute(b *testing.B) {
	tb := testTable(b)
	for i := range 1000 {
		if err := tb.Put(&Command{Name: fmt.Sprintf("cmd%d", i), Run: run("ok")}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		req := tb.Match("cmd777 deploy web  --version 2")
		if rep := tb.Execute(ctx, req); rep.Text != "ok" {
			b.Fatal(rep.Text)
		}
	}
}

// BenchmarkPut measures adding one command to a table of 1,000 and
// matching a line right after (the worst case: every change rebuilt).
func BenchmarkPut(b *testing.B) {
	tb := testTable(b)
	for i := range 1000 {
		if err := tb.Put(&Command{Name: fmt.Sprintf("cmd%d", i), Run: run("ok")}); err != nil {
			b.Fatal(err)
		}
	}
	c := &Command{Name: "extra", Run: run("ok")}
	for b.Loop() {
		if err := tb.Put(c); err != nil {
			b.Fatal(err)
		}
		if tb.Match("extra").Command != c {
			b.Fatal("extra not matched")
		}
	}
}

// Fold is the one normalisation of names: two names have the same key
// exactly when strings.EqualFold says they are equal.
func TestFold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"deploy", "deploy"},
		{"DEPLOY", "deploy"},
		{"Go.Micro.Bot.Deploy", "go.micro.bot.deploy"},
		{"\u212a8s", "k8s"},   // Kelvin sign
		{"ba\u017fh", "bash"}, // long s
		{"\u03a3\u03c3\u03c2", "\u03c3\u03c3\u03c3"},
		{"\u0130stanbul", "\u0130stanbul"}, // İ folds to nothing else
		{"stra\u00dfe", "stra\u00dfe"},
		{"STRA\u1e9eE", "stra\u00dfe"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	words := []string{"deploy", "DEPLOY", "k8s", "\u212a8S", "bash", "ba\u017fh", "i", "I", "\u0130", "\u0131", "\u03c3", "\u03c2", "\u00df", "\u1e9e", "ss", "x\xffy", "x\xfey"}
	for _, a := range words {
		for _, b := range words {
			if same, fold := strings.EqualFold(a, b), Fold(a) == Fold(b); same != fold {
				t.Errorf("%q, %q: EqualFold %v, same Fold %v", a, b, same, fold)
			}
		}
	}
}

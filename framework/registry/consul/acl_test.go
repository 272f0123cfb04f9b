package consul_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/testenv"
)

// docPolicy returns the ACL policy docs/consul.md gives after the line
// "<!-- acl-policy:NAME -->", so the documented policies are the tested
// ones.
func docPolicy(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "docs", "consul.md")); err == nil {
				break
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("docs/consul.md not found above the working directory")
		}
		dir = parent
	}
	doc, err := os.ReadFile(filepath.Join(dir, "docs", "consul.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "<!-- acl-policy:"+name+" -->\n```hcl\n")
	if !ok {
		t.Fatalf("docs/consul.md has no policy %q", name)
	}
	policy, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatalf("docs/consul.md: policy %q does not end", name)
	}
	return policy
}

// withToken returns a registry of addr using token the way deployments
// give it, through CONSUL_HTTP_TOKEN (empty: no token).
func withToken(t *testing.T, token string, addr string) *consul.Registry {
	t.Helper()
	t.Setenv(api.HTTPTokenEnvName, token)
	t.Setenv(api.HTTPTokenFileEnvName, "")
	return newRegistry(t, consul.WithAddrs(addr))
}

// runMicrobot runs `microbot exec CMD` against Consul at addr with env
// appended, and returns its exit status and output.
func runMicrobot(t *testing.T, bin, addr, cmd string, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	// The flags after exec: exec has its own (given before it, they are
	// ignored).
	c := exec.CommandContext(ctx, bin, "exec", "--registry=consul", "--registry_address="+addr, "--discovery_wait=1s", cmd)
	c.Env = append(os.Environ(), "CONSUL_HTTP_ADDR=", "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=")
	c.Env = append(c.Env, env...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	if ctx.Err() != nil {
		t.Fatalf("microbot exec %q still running after %v:\n%s", cmd, 2*wait, out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("microbot exec %q: %v", cmd, err)
	}
	return 0, out.String()
}

// TestACL runs an agent with ACLs on and default policy deny. A greeter
// process and microbot, each with a token holding the policy docs/consul.md
// gives, work: the greeter registers, the bot lists, gets, watches and
// queries it, registers itself and writes its KV prefix. Without a token,
// with a token Consul does not know, or with one lacking a permission,
// every call fails at once with an error naming what is missing, never an
// empty answer.
func TestACL(t *testing.T) {
	agent := consultest.Start(t, consultest.WithACL())
	ctx := ctxT(t)
	tokens := map[string]string{}
	for name, rules := range map[string]string{
		"microbot":   docPolicy(t, "microbot"),
		"greeter":    docPolicy(t, "greeter"),
		"no-node":    `service_prefix "" { policy = "read" }`,
		"only-other": `service_prefix "other." { policy = "read" }` + "\n" + `node_prefix "" { policy = "read" }`,
	} {
		tok, err := agent.CreateToken(ctx, name, rules)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
	}
	bin := testenv.Build(t, "github.com/microbot/microbot/examples/greeter")
	botBin := testenv.Build(t, "github.com/microbot/microbot/cmd/microbot")

	// What the policies allow.
	bot := withToken(t, tokens["microbot"], agent.Addr())
	w, err := bot.Watch(ctx)
	if err != nil {
		t.Fatalf("watch with the microbot token: %v", err)
	}
	defer w.Stop()
	ws := follow(t, w)
	startGreeter(t, bin, "greeter-acl", agent.Addr(), "CONSUL_HTTP_TOKEN="+tokens["greeter"])
	expectNodes(t, bot, greeterName, "greeter-acl")
	ws.expect(t, "greeter-acl")
	c, err := client.New(client.WithRegistry(bot))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := hello(ctx, c, "ACL"); err != nil {
		t.Fatalf("query with the microbot token: %v", err)
	}
	self := greeter("go.micro.srv.bot", "1", "bot-1")
	if err := bot.Register(ctx, self, registry.WithTTL(time.Minute)); err != nil {
		t.Fatalf("the bot registering itself: %v", err)
	}
	expectNodes(t, bot, "go.micro.srv.bot", "bot-1")
	// The greeter's token may not read its own instance (no node:read),
	// yet its registry confirms the registration reached the catalog, from
	// Consul saying that its ACLs hid the instance: registered once.
	rec := newRecorder(t, agent.Addr())
	gr := withToken(t, tokens["greeter"], rec.addr())
	if err := gr.Register(ctx, greeter(greeterName, "1", "greeter-confirm"), registry.WithTTL(time.Minute)); err != nil {
		t.Fatalf("register with the greeter's token: %v", err)
	}
	if !consul.WaitConfirmed(gr, wait) {
		t.Errorf("the greeter's token: the registration still unconfirmed after %v", wait)
	}
	reqs := rec.take()
	if n := len(slices.DeleteFunc(slices.Clone(reqs), func(r string) bool { return r != "PUT /v1/agent/service/register" })); n != 1 {
		t.Errorf("the greeter's token: registered %d times, want once: %q", n, reqs)
	}
	if err := gr.Deregister(ctx, greeter(greeterName, "1", "greeter-confirm")); err != nil {
		t.Fatal(err)
	}
	kv := bot.KV()
	if err := kv.Put(ctx, "microbot/watches/room", []byte("x")); err != nil {
		t.Errorf("KV write under microbot/ with the microbot token: %v", err)
	}
	if pairs, _, err := kv.List(ctx, "microbot/", 0); err != nil || len(pairs) != 1 {
		t.Errorf("KV list of microbot/ with the microbot token: %v, %v", pairs, err)
	}
	if _, _, err := withToken(t, tokens["greeter"], agent.Addr()).KV().List(ctx, "microbot/", 0); !errors.Is(err, consul.ErrPermissionDenied) {
		t.Errorf("KV list of microbot/ with the greeter's token: %v, want a refusal", err)
	}
	if err := kv.Delete(ctx, "microbot/watches/room"); err != nil {
		t.Errorf("KV delete under microbot/ with the microbot token: %v", err)
	}
	if err := kv.Put(ctx, "other/x", []byte("x")); !errors.Is(err, consul.ErrPermissionDenied) || !strings.Contains(err.Error(), "key:write") {
		t.Errorf("KV write outside microbot/ with the microbot token: %v, want a refusal naming key:write", err)
	}

	// microbot itself, as a process.
	code, out := runMicrobot(t, botBin, agent.Addr(), "list services", "CONSUL_HTTP_TOKEN="+tokens["microbot"])
	if code != 0 || !strings.Contains(out, greeterName) {
		t.Errorf("microbot exec \"list services\" with its token: status %d:\n%s", code, out)
	}
	code, out = runMicrobot(t, botBin, agent.Addr(), `query go.micro.srv.greeter Say.Hello {"name": "ACL"}`, "CONSUL_HTTP_TOKEN="+tokens["microbot"])
	if code != 0 || !strings.Contains(out, "Hello ACL") {
		t.Errorf("microbot exec query with its token: status %d:\n%s", code, out)
	}
	code, out = runMicrobot(t, botBin, agent.Addr(), "list services")
	if code != 1 || !strings.Contains(out, "no ACL token is set") || !strings.Contains(out, "service:read") {
		t.Errorf("microbot exec \"list services\" without a token: status %d, want 1 and an error naming service:read:\n%s", code, out)
	}
	for _, tok := range tokens {
		if strings.Contains(out, tok) {
			t.Errorf("microbot's output holds a token:\n%s", out)
		}
	}

	// What they refuse.
	other := greeter("go.micro.srv.other", "1", "other-1")
	type call struct {
		name string
		do   func(r *consul.Registry) error
	}
	list := call{"ListServices", func(r *consul.Registry) error { _, err := r.ListServices(ctx); return err }}
	get := call{"GetService", func(r *consul.Registry) error { _, err := r.GetService(ctx, greeterName); return err }}
	register := call{"Register", func(r *consul.Registry) error { return r.Register(ctx, other) }}
	watch := call{"Watch", func(r *consul.Registry) error {
		w, err := r.Watch(ctx)
		if err == nil {
			w.Stop()
		}
		return err
	}}
	tests := []struct {
		token string // a name in tokens, "" for none, or "unknown"
		calls []call
		want  []string // in every error
	}{
		{"", []call{list, watch}, []string{"no ACL token is set", "service:read on the services"}},
		{"", []call{get}, []string{"no ACL token is set", `service:read on "go.micro.srv.greeter"`}},
		{"", []call{register}, []string{"anonymous token lacks permission 'service:write' on \"go.micro.srv.other\""}},
		{"unknown", []call{list, get, register, watch}, []string{"ACL not found", "CONSUL_HTTP_TOKEN"}},
		{"greeter", []call{register}, []string{"lacks permission 'service:write' on \"go.micro.srv.other\""}},
		{"greeter", []call{list, watch}, []string{"left out", `service:read on "go.micro.srv.greeter" and node:read`}},
		{"no-node", []call{list, get}, []string{"left out", `service:read on "go.micro.srv.greeter" and node:read`}},
		{"only-other", []call{list}, []string{"left out", "service:read on the services"}},
		{"only-other", []call{get}, []string{"left out", `service:read on "go.micro.srv.greeter"`}},
	}
	for _, tt := range tests {
		token := tokens[tt.token]
		if tt.token == "unknown" {
			token = "6d5c7b2a-0000-4000-8000-000000000000"
		}
		r := withToken(t, token, agent.Addr())
		for _, cl := range tt.calls {
			t.Run(fmt.Sprintf("token=%s/%s", cmp.Or(tt.token, "none"), cl.name), func(t *testing.T) {
				err := cl.do(r)
				if !errors.Is(err, consul.ErrPermissionDenied) {
					t.Fatalf("error %v, want one wrapping ErrPermissionDenied", err)
				}
				for _, want := range tt.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				if token != "" && strings.Contains(err.Error(), token) {
					t.Errorf("error %q holds the token", err)
				}
			})
		}
	}
	expectNodes(t, bot, "go.micro.srv.other") // nothing was registered
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/input/slack/slacktestws"
	"github.com/microbot/microbot/internal/testenv"
)

// These tests run microbot with an access policy, with command services
// (bot/access/internal/whoami) that declare rules in their registry
// metadata and answer with the identity the bot sent them, as separate
// processes in a local registry. Users are impersonated with --shell_user
// on the console, and through a fake Slack (slacktestws) by their Slack
// user ids.

// buildWhoami builds the whoami test service.
func buildWhoami(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "github.com/microbot/microbot/bot/access/internal/whoami")
}

// whoamiService starts whoami as the service name. meta is the node
// metadata the service sets in code (framework.WithMetadata), "k=v;k=v";
// args are more flags (--server_metadata k=v sets it on the command line).
func (w *world) whoamiService(name, meta string, args ...string) *proc {
	w.t.Helper()
	bin := buildWhoami(w.t)
	w.t.Setenv("WHOAMI_METADATA", meta)
	w.t.Setenv("WHOAMI_PLAIN", "")
	if !strings.HasPrefix(name, "go.micro.bot.") {
		w.t.Setenv("WHOAMI_PLAIN", "1")
	}
	return start(w.t, name, bin, append([]string{"--registry_address", w.reg, "--server_name", name}, args...)...)
}

// writePolicy writes a policy file in the test's directory.
func writePolicy(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// auditRecords reads an audit log file.
func auditRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.JSONLines[audit.Record](t, data)
}

// auditWant is what a test expects of an audit record.
type auditWant struct {
	user, command, decision, outcome string
}

func checkAudit(t *testing.T, path string, want []auditWant) []audit.Record {
	t.Helper()
	recs := auditRecords(t, path)
	// The first lines are the test waiting for the bot to be ready.
	for len(recs) > 0 && (recs[0].Command == "list services" || recs[0].Command == "help") {
		recs = recs[1:]
	}
	var got []auditWant
	for _, r := range recs {
		got = append(got, auditWant{r.UserID, r.Command, r.Decision, r.Outcome})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit records of %s:\n got %v\nwant %v", filepath.Base(path), got, want)
	}
	for _, r := range recs {
		if r.Input == "" || r.Room == "" || r.Time.IsZero() || time.Since(r.Time) > time.Hour || r.LatencyMS < 0 || r.Rule == "" && r.Command != "confirm" {
			t.Errorf("incomplete audit record %+v", r)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode: %v %v", st.Mode(), err)
	}
	return recs
}

var confirmCode = regexp.MustCompile(`"confirm ([a-z0-9]{6})"`)

func codeIn(t *testing.T, reply string) string {
	t.Helper()
	m := confirmCode.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("no confirmation code in %q", reply)
	}
	return m[1]
}

const consolePolicy = `# a policy for the console tests
admins: [shell:root]
groups:
  ops: [shell:alice]
rules:
  - commands: query
    services: go.micro.srv.greeter
    users: shell:bob
    action: deny
`

const greeterDef = `{"name": "go.micro.srv.extra", "nodes": [{"id": "extra-1", "address": "127.0.0.1:9"}]}`

func TestAccessConsole(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	writePolicy(t, policy, consolePolicy)
	w.greeter()
	w.whoamiService("go.micro.bot.deploy", "bot.group=ops")                           // set in code
	w.whoamiService("go.micro.bot.drop", "", "--server_metadata", "bot.confirm=true") // set by flag
	w.whoamiService("go.micro.bot.whoami", "")
	w.whoamiService("go.micro.srv.whoami", "")
	consoles := 0
	console := func(user string, args ...string) (*console, string) {
		consoles++
		log := filepath.Join(dir, fmt.Sprintf("%s-%d.audit", user, consoles))
		c := w.bot(append([]string{"--shell_user", user, "--policy", policy, "--audit_log", log}, args...)...)
		c.until("list services", contains("go.micro.srv.greeter", "go.micro.srv.whoami", "go.micro.bot.deploy", "go.micro.bot.drop", "go.micro.bot.whoami"))
		return c, log
	}
	unknown := func(cmd string) string {
		return fmt.Sprintf(`unknown command "%s" — type "help" for the list`, cmd)
	}

	// alice is in ops: she may deploy, and see it in help.
	alice, aliceLog := console("alice", "--shell_user_name", "Alice")
	help := alice.until("help", contains("deploy [words]", "drop [words]", "whoami [words]"))
	expect(t, "alice's help", help, func(s string) bool {
		return strings.Contains(s, "confirm [code] - ") && !strings.Contains(s, "register service")
	})
	if got := alice.ask("deploy web v2"); got != "deploy ran: input=shell user_id=alice user_name=Alice room=console confirmed_by= args=web v2" {
		t.Errorf("deploy by alice: %q", got)
	}
	// A queried service gets her identity too.
	expect(t, "query whoami", alice.ask(`query go.micro.srv.whoami Who.Am {}`), contains(`"Micro-User-Id": "alice"`, `"Micro-Input": "shell"`, `"Micro-Room": "console"`, `"Micro-User-Name": "Alice"`))
	// drop asks for a confirmation (its metadata), which she gives.
	rep := alice.ask("drop table users")
	c1 := codeIn(t, rep)
	if rep != `drop needs confirmation: type "confirm `+c1+`" here within 2m` {
		t.Errorf("drop: %q", rep)
	}
	if got := alice.ask("confirm " + c1); got != "drop ran: input=shell user_id=alice user_name=Alice room=console confirmed_by=shell:alice args=table users" {
		t.Errorf("confirmed drop: %q", got)
	}
	expect(t, "a code used twice", alice.ask("confirm "+c1), contains("error: no command is waiting for confirmation with code"))
	// Not an admin.
	if got := alice.ask("deregister service " + greeterDef); got != "you are not allowed to run deregister service on go.micro.srv.extra here (admins only)" {
		t.Errorf("deregister by alice: %q", got)
	}
	alice.close()
	checkAudit(t, aliceLog, []auditWant{
		{"alice", "deploy", audit.Allowed, audit.OK},
		{"alice", "query", audit.Allowed, audit.OK},
		{"alice", "drop", audit.ConfirmationRequired, ""},
		{"alice", "drop", audit.Confirmed, audit.OK},
		{"alice", "confirm", audit.Denied, ""},
		{"alice", "deregister service", audit.Denied, ""},
	})

	// bob is in no group: deploy does not exist for him; a rule keeps him
	// from querying the greeter, directly or not.
	bob, bobLog := console("bob")
	help = bob.until("help", contains("drop [words]"))
	expect(t, "bob's help", help, func(s string) bool { return !strings.Contains(s, "deploy") })
	if got := bob.ask("deploy web v2"); got != unknown("deploy") {
		t.Errorf("deploy by bob: %q", got)
	}
	if got := bob.ask(`query go.micro.srv.greeter Say.Hello {"name": "Bob"}`); got != "you are not allowed to run query on go.micro.srv.greeter here" {
		t.Errorf("query by bob: %q", got)
	}
	if got := bob.ask(`call go.micro.bot.deploy Command.Exec {"args": ["deploy", "web"]}`); got != "you are not allowed to run query on go.micro.bot.deploy here" {
		t.Errorf("bob calling the deploy service: %q", got)
	}
	expect(t, "bob's whoami", bob.ask("whoami"), contains("user_id=bob"))
	bob.close()
	recs := checkAudit(t, bobLog, []auditWant{
		{"bob", "deploy", audit.Denied, ""},
		{"bob", "query", audit.Denied, ""},
		{"bob", "query", audit.Denied, ""},
		{"bob", "whoami", audit.Allowed, audit.OK},
	})
	if recs[0].Rule != "service metadata bot.group=ops" || recs[1].Target != "go.micro.srv.greeter" || recs[2].Target != "go.micro.bot.deploy" {
		t.Errorf("bob's records: %+v", recs)
	}

	// root is an admin: register service waits for a confirmation. With
	// a tiny --confirm_timeout it expires before it comes.
	late, lateLog := console("root", "--confirm_timeout", "1ms")
	c2 := codeIn(t, late.ask("register service "+greeterDef))
	time.Sleep(10 * time.Millisecond)
	if got := late.ask("confirm " + c2); got != "error: the confirmation of register service expired (codes last 1ms): run the command again" {
		t.Errorf("late confirmation: %q", got)
	}
	expect(t, "after expiry", late.ask("list services"), lacks("go.micro.srv.extra"))
	late.close()
	checkAudit(t, lateLog, []auditWant{
		{"root", "register service", audit.ConfirmationRequired, ""},
		{"root", "register service", audit.Expired, ""},
		{"root", "list services", audit.Allowed, audit.OK},
	})
	root, rootLog := console("root")
	c3 := codeIn(t, root.ask("register service "+greeterDef))
	expect(t, "registered after confirmation", root.ask("confirm "+c3), contains("registered go.micro.srv.extra (1 node)"))
	expect(t, "list after register", root.ask("list services"), contains("go.micro.srv.extra"))
	root.close()
	recs = checkAudit(t, rootLog, []auditWant{
		{"root", "register service", audit.ConfirmationRequired, ""},
		{"root", "register service", audit.Confirmed, audit.OK},
		{"root", "list services", audit.Allowed, audit.OK},
	})
	if r := recs[1]; r.Decision != audit.Confirmed || r.Code != c3 || r.ConfirmedBy != "shell:root" || r.RequestedBy != "shell:root" ||
		r.Target != "go.micro.srv.extra" || r.Args != `{"name":"go.micro.srv.extra","nodes":[{"id":"extra-1","address":"127.0.0.1:9"}]}` {
		t.Errorf("root's confirmed record: %+v", r)
	}
}

func TestAccessBadPolicy(t *testing.T) {
	build(t)
	dir := t.TempDir()
	bad, empty := filepath.Join(dir, "bad.yaml"), filepath.Join(dir, "empty.yaml")
	writePolicy(t, bad, "admins: [shell:root]\nrules:\n  - commands: ping\n    action: maybe\n")
	writePolicy(t, empty, "")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bins.microbot, append(args, "--registry_address", dir)...)
		cmd.Stdin = strings.NewReader("ping\n")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--policy", bad}, "microbot: " + bad + `:3: rule 1: action "maybe": say allow or deny`},
		{[]string{"exec", "--policy", bad, "ping"}, bad + `:3: rule 1: action "maybe"`},
		{[]string{"--policy", empty}, "microbot: " + empty + ": the policy file is empty"},
		{[]string{"exec", "--policy", empty, "ping"}, empty + ": the policy file is empty"},
		{[]string{"--policy", filepath.Join(dir, "missing.yaml")}, "missing.yaml: no such file or directory"},
		{[]string{"--admins", "root"}, `--admins: "root": want input:id`},
		{[]string{"--audit_log", dir}, "--audit_log: audit log"},
		{[]string{"--confirm_timeout", "-1s"}, "--confirm_timeout must be positive"},
	} {
		out, code := run(tt.args...)
		if code != 1 || !strings.Contains(out, tt.want) || strings.Contains(out, "pong") {
			t.Errorf("microbot %q: status %d, output:\n%s\nwant %q", tt.args, code, out, tt.want)
		}
	}
}

// microbot exec is the console: a rule for the room shell:console holds
// for it, and its audit record says so (issue 15, item 10).
func TestExecIsTheConsole(t *testing.T) {
	build(t)
	dir := t.TempDir()
	policy, auditLog := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "audit.log")
	writePolicy(t, policy, "rules:\n  - commands: ping\n    rooms: shell:console\n    action: deny\n")
	for _, args := range [][]string{{"exec"}, {}} {
		cmd := exec.Command(bins.microbot, append(args, "--registry_address", dir, "--policy", policy, "--audit_log", auditLog)...)
		if len(args) > 0 {
			cmd.Args = append(cmd.Args, "ping")
		} else {
			cmd.Stdin = strings.NewReader("ping\n")
		}
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "you are not allowed to run ping here") || strings.Contains(string(out), "pong") {
			t.Errorf("microbot %q ping: %s", args, out)
		}
	}
	recs := auditRecords(t, auditLog)
	if len(recs) != 2 {
		t.Fatalf("%d audit records, want 2", len(recs))
	}
	for _, r := range recs {
		if r.Room != "console" || r.Decision != audit.Denied {
			t.Errorf("audit record: input %q room %q decision %q", r.Input, r.Room, r.Decision)
		}
	}
}

func TestAccessReload(t *testing.T) {
	w := newWorld(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, policy, "rules:\n  - commands: ping\n    users: shell:tester\n    action: deny\n")
	c := w.bot("--policy", policy)
	if got := c.ask("ping"); got != "you are not allowed to run ping here" {
		t.Fatalf("ping: %q", got)
	}
	writePolicy(t, policy, "rules:\n  - commands: time\n    users: shell:tester\n    action: deny\n")
	c.p.cmd.Process.Signal(syscall.SIGHUP)
	c.until("ping", func(s string) bool { return s == "pong" })
	if got := c.ask("time"); got != "you are not allowed to run time here" {
		t.Errorf("time after the reload: %q", got)
	}
	// A broken file is refused: the policy in effect stays, and the log says
	// why, with the file and line.
	writePolicy(t, policy, "rules:\n  - commands: ping\n    users: shell:tester\n    action: deny\n  - command: time\n    action: allow\n")
	c.p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.p.stderr.String(), policy+`:5: unknown field \"command\" in a rule`) {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged for the broken policy; stderr:\n%s", c.p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect(t, "log", c.p.stderr.String(), contains("keeping the policy in effect"))
	if got := c.ask("ping"); got != "pong" {
		t.Errorf("ping after a failed reload: %q", got)
	}
	if got := c.ask("time"); got != "you are not allowed to run time here" {
		t.Errorf("time after a failed reload: %q", got)
	}
	c.close()
}

// Through Slack the policy sees the Slack user ids: the same text from two
// users of one channel is allowed for one and not the other, and the
// two-person rule takes two people of the channel.
func TestAccessSlack(t *testing.T) {
	w := newWorld(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, policy, `
groups:
  ops: [slack:UOPS1, slack:UOPS2]
rules:
  - commands: wipe
    groups: ops
    action: allow
    confirm: two-person
  - commands: wipe
    action: deny
`)
	w.whoamiService("go.micro.bot.deploy", "bot.group=ops")
	w.whoamiService("go.micro.bot.wipe", "")
	srv := slacktestws.New(
		slacktestws.WithUser("UOPS1", "Ada"),
		slacktestws.WithUser("UOPS2", "Grace"),
		slacktestws.WithUser("UDEV", "Eve"),
		slacktestws.WithPingInterval(time.Second),
	)
	t.Cleanup(srv.Close)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	p := start(t, "microbot", bins.microbot, "--inputs", "slack", "--registry_address", w.reg, "--policy", policy, "--audit_log", auditLog,
		"--slack_app_token", srv.AppToken, "--slack_bot_token", srv.BotToken, "--slack_api_url", srv.APIURL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.WaitConnections(ctx, 1); err != nil {
		t.Fatalf("microbot did not connect: %v\n%s", err, p.stderr.String())
	}
	posts := 0
	say := func(user, text string) string {
		t.Helper()
		if _, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: user, Text: "<@" + srv.BotUserID + "> " + text}); err != nil {
			t.Fatal(err)
		}
		got, err := srv.WaitPosts(ctx, posts+1)
		if err != nil {
			t.Fatalf("no reply to %q: %v", text, err)
		}
		posts = len(got)
		return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(got[len(got)-1].Text)
	}
	// The deploy command service may not be discovered yet: wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(say("UOPS1", "help"), "deploy [words]") {
		if time.Now().After(deadline) {
			t.Fatal("deploy never showed in help")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := say("UDEV", "help"); strings.Contains(got, "deploy") || strings.Contains(got, "wipe") {
		t.Errorf("help for UDEV: %q", got)
	}
	if got := say("UDEV", "deploy web"); !strings.Contains(got, `unknown command "deploy"`) {
		t.Errorf("deploy by UDEV: %q", got)
	}
	if got := say("UOPS1", "deploy web"); !strings.Contains(got, "deploy ran: input=slack user_id=UOPS1 user_name=Ada room=C1 confirmed_by= args=web") {
		t.Errorf("deploy by UOPS1: %q", got)
	}
	code := codeIn(t, say("UOPS1", "wipe disk"))
	for _, tt := range []struct{ user, want string }{
		{"UOPS1", "you asked for wipe: someone else allowed to run it must confirm it (two-person rule)"},
		{"UDEV", "you are not allowed to run wipe here, so you cannot confirm it"},
		{"UOPS2", "wipe ran: input=slack user_id=UOPS1 user_name=Ada room=C1 confirmed_by=slack:UOPS2 args=disk"},
		{"UOPS2", "no command is waiting for confirmation with code"},
	} {
		if got := say(tt.user, "confirm "+code); !strings.Contains(got, tt.want) {
			t.Errorf("confirm by %s: %q, want %q", tt.user, got, tt.want)
		}
	}
	recs := auditRecords(t, auditLog)
	var got []string
	for _, r := range recs {
		if r.Command != "help" {
			got = append(got, r.UserID+" "+r.Command+" "+r.Decision)
		}
		if r.Input != "slack" || r.Room != "C1" {
			t.Errorf("record %+v", r)
		}
	}
	want := []string{"UDEV deploy denied", "UOPS1 deploy allowed", "UOPS1 wipe confirmation-required", "UOPS1 wipe denied", "UDEV wipe denied",
		"UOPS2 wipe confirmed", "UOPS2 confirm denied"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	p.stop(t)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/input/slack/slacktestws"
	"github.com/microbot/microbot/internal/testenv"
)

// Events into chat, end to end: the real bot on the console (pipes), on
// the Slack test server and on prosody; events published by `microbot
// publish` (another process) or by a publisher service of the test, over
// the http broker and over NATS; watches kept in the local registry's
// directory, or in a real Consul's KV store.

// publishCLI runs `microbot publish TOPIC JSON` with args (the registry
// and broker flags) and returns its output; it fails the test unless the
// exit status is want.
func publishCLI(t *testing.T, args []string, topic, js string, want int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := runChild(exec.CommandContext(ctx, bins.microbot, append(append([]string{"publish"}, args...), topic, js)...))
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("microbot publish: %v", err)
	}
	if code != want {
		t.Fatalf("microbot publish %s %s: status %d, want %d:\n%s", topic, js, code, want, out)
	}
	return out
}

// runChild runs cmd to its end as a child of the test (testenv.StartCommand:
// it dies with the test) and returns its output, stdout and stderr.
func runChild(cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := testenv.StartCommand(cmd); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return out.String(), err
}

// post reads the lines the console prints for one post: up to its "— "
// line (source and time), or its only line for a summary.
func (c *console) post(what string) []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.nextLine(what)
		lines = append(lines, l)
		if strings.HasPrefix(l, "— ") || strings.HasPrefix(l, "+") && len(lines) == 1 {
			return lines
		}
	}
}

// sayLine writes a line and a marker, and returns every line printed up
// to the marker's answer: the line's reply, and posts printed meanwhile.
func (c *console) sayLine(line string) []string {
	c.t.Helper()
	c.n++
	mark := fmt.Sprintf("@@mark-%d", c.n)
	if _, err := io.WriteString(c.in, line+"\n"+mark+"\n"); err != nil {
		c.t.Fatal(err)
	}
	var got []string
	for {
		l := c.nextLine("the answer to " + line)
		if strings.Contains(l, `"`+mark+`"`) {
			return got
		}
		got = append(got, l)
	}
}

// TestNotifyConsole: watch → publish → the post on the console, rendered;
// any JSON too; watching lists the watch; unwatch stops it; a watch
// survives a restart of the bot; a user who is no admin cannot watch;
// microbot exec adds a watch the running bot follows.
func TestNotifyConsole(t *testing.T) {
	for _, name := range []string{"http", "nats"} {
		t.Run(name, func(t *testing.T) {
			flags := brokerArgs(t, name)
			w := newWorld(t)
			pubArgs := append([]string{"--registry_address", w.reg}, flags...)
			c := w.bot(append(flags, "--admins", "shell:tester")...)
			expect(t, "watch", c.ask("watch deploys"), contains("watching deploys: its events will be posted here"))

			out := publishCLI(t, pubArgs, "deploys", `{"title": "deploy of web v2 started", "severity": "warning",
				"fields": [{"name": "service", "value": "web"}], "source": "ci", "thread_key": "web-v2"}`, 0)
			if !strings.HasPrefix(out, "published a notification of ") {
				t.Errorf("publish said %q", out)
			}
			post := c.post("the notification")
			if len(post) != 3 || post[0] != "[WARNING] deploy of web v2 started" || post[1] != "service: web" || !strings.HasPrefix(post[2], "— ci, ") {
				t.Errorf("notification printed as %q", post)
			}
			publishCLI(t, pubArgs, "deploys", `{"status": "green", "n": 3}`, 0)
			if post := c.post("the JSON"); strings.Join(post, "\n") != "{\n  \"status\": \"green\",\n  \"n\": 3\n}\n— deploys" {
				t.Errorf("JSON printed as %q", post)
			}
			publishCLI(t, pubArgs, "deploys", `{"title": "x", "severity": "urgent"}`, 2)

			expect(t, "watching", c.ask("watching"), contains("TOPIC", "deploys", "shell:tester", "subscribed"))
			expect(t, "watch other", c.ask("watch other"), contains("watching other"))
			expect(t, "unwatch", c.ask("unwatch deploys"), contains("stopped watching deploys here"))
			expect(t, "unwatch again", c.ask("unwatch deploys"), contains("error: this room does not watch deploys"))
			publishCLI(t, pubArgs, "deploys", `{"title": "lost"}`, 0)
			publishCLI(t, pubArgs, "other", `{"title": "kept"}`, 0)
			if post := c.post("the post on other"); post[0] != "kept" {
				t.Errorf("after unwatch deploys, the next post is %q, want the one on other", post)
			}

			// microbot exec, as someone else: refused; as the admin: the
			// watch is stored, and the running bot follows it.
			execArgs := append([]string{"exec", "--registry_address", w.reg, "--admins", "shell:tester"}, flags...)
			if b, err := runChild(exec.Command(bins.microbot, append(execArgs, "--shell_user", "mallory", "watch", "third")...)); err == nil || !strings.Contains(b, "you are not allowed to run watch here") {
				t.Errorf("exec watch as mallory: %v\n%s", err, b)
			}
			if b, err := runChild(exec.Command(bins.microbot, append(execArgs, "--shell_user", "tester", "watch", "third")...)); err != nil || !strings.Contains(b, "watching third") {
				t.Errorf("exec watch as tester: %v\n%s", err, b)
			}
			c.until("watching", contains("third", "subscribed"))
			c.close()

			// Restarted, the bot watches what it watched.
			c = w.bot(append(flags, "--admins", "shell:tester")...)
			c.until("watching", func(s string) bool { return contains("other", "third", "subscribed")(s) && lacks("subscribing")(s) })
			publishCLI(t, pubArgs, "other", `{"title": "after the restart", "severity": "critical"}`, 0)
			if post := c.post("the post after the restart"); post[0] != "[CRITICAL] after the restart" {
				t.Errorf("after the restart: %q", post)
			}
			c.close()

			// Not an admin: watch, unwatch and publish are refused;
			// watching is for everyone.
			c = w.bot(flags...)
			expect(t, "watch as no admin", c.ask("watch deploys"), contains("you are not allowed to run watch here"))
			expect(t, "publish as no admin", c.ask(`publish deploys {"title": "x"}`), contains("you are not allowed to run publish here"))
			expect(t, "watching as no admin", c.ask("watching"), contains("other"))
			c.close()
		})
	}
}

// opsAddress waits for the ops listener's address in a JSON log.
func opsAddress(t *testing.T, p *proc) string {
	t.Helper()
	var rec struct{ Address string }
	line := waitLog(t, p, `"msg":"ops HTTP listener started"`)
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Address == "" {
		t.Fatalf("listener line %q: %v", line, err)
	}
	return "http://" + rec.Address
}

// testPublisher returns a broker of a service of the test, publishing on
// the broker the flags name (registry w.reg unless flags say otherwise).
func testPublisher(t testing.TB, reg string, flags []string) broker.Broker {
	t.Helper()
	svc, err := framework.NewService(framework.WithName("go.micro.srv.storm"),
		framework.WithArgs(append([]string{"storm", "--registry_address", reg}, flags...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	return svc.Broker()
}

var summary = regexp.MustCompile(`^\+(\d+) more on storm$`)

// TestNotifyStorm: 5,000 events on a watched topic are paced and folded,
// every one counted; a command typed during the storm is answered before
// the storm's posts are out.
func TestNotifyStorm(t *testing.T) {
	const events = 5000
	for _, name := range []string{"http", "nats"} {
		t.Run(name, func(t *testing.T) {
			flags := brokerArgs(t, name)
			w := newWorld(t)
			c := w.bot(append(flags, "--admins", "shell:tester", "--http_address", "127.0.0.1:0", "--log_format", "json", "--notify_interval", "1s")...)
			ops := opsAddress(t, c.p)
			metric := func(series string) float64 {
				_, page := testenv.Get(t, ops+"/metrics")
				return max(testenv.Metric(page, series), 0)
			}
			expect(t, "watch", c.ask("watch storm"), contains("watching storm"))
			pub := testPublisher(t, w.reg, flags)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			for i := range events {
				m := &broker.Message{Header: map[string]string{"Content-Type": "text/plain"}, Body: fmt.Appendf(nil, "storm event %d", i)}
				if err := pub.Publish(ctx, "storm", m); err != nil {
					t.Fatalf("publishing event %d: %v", i, err)
				}
			}

			// Once the storm reaches the console (its first post), a
			// command: answered while the storm's posts are still on their
			// way (the room gets one a second).
			var lines []string
			for len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "storm event ") {
				lines = append(lines, c.nextLine("the storm's first post"))
			}
			got := c.sayLine("ping")
			lines = append(lines, got...)
			if !contains("pong")(strings.Join(got, "\n")) {
				t.Fatalf("ping answered %q", got)
			}
			queued, folded := metric(`microbot_notify_backlog{state="queued"}`), metric(`microbot_notify_backlog{state="folded"}`)
			if queued+folded == 0 {
				t.Errorf("the storm was over when ping was answered: the command waited for it")
			}

			// The storm ends: every event received (or dropped by the
			// broker, counted), and each posted or folded.
			var received, dropped, posted, foldedTotal float64
			testenv.Eventually(t, 2*time.Minute, "every event counted and the rooms idle", func() bool {
				received, dropped = metric(`microbot_notify_events_total{topic="storm"}`), metric(`microbot_notify_broker_dropped_total`)
				posted = metric(`microbot_notify_deliveries_total{outcome="posted",topic="storm"}`)
				foldedTotal = metric(`microbot_notify_deliveries_total{outcome="folded",topic="storm"}`)
				q, f := metric(`microbot_notify_backlog{state="queued"}`), metric(`microbot_notify_backlog{state="folded"}`)
				return received+dropped == events && posted+foldedTotal == received && q+f == 0
			})
			t.Logf("%d events: %v received, %v dropped by the broker, %v posted, %v folded", events, received, dropped, posted, foldedTotal)
			if foldedTotal < events/2 {
				t.Errorf("%v of %d events folded: the storm was not folded", foldedTotal, events)
			}
			if d := metric(`microbot_notify_deliveries_total{outcome="dropped",topic="storm"}`); d != 0 {
				t.Errorf("%v events dropped", d)
			}
			// The console shows exactly that: the posts, and summaries
			// adding up to the folded.
			shown, summed := 0, 0
			count := func(l string) {
				if strings.HasPrefix(l, "storm event ") {
					shown++
				} else if m := summary.FindStringSubmatch(l); m != nil {
					n, _ := strconv.Atoi(m[1])
					summed += n
				}
			}
			for _, l := range lines {
				count(l)
			}
			for shown != int(posted) || summed != int(foldedTotal) {
				count(c.nextLine(fmt.Sprintf("the rest of the storm (%d posts of %v, %d folded of %v shown)", shown, posted, summed, foldedTotal)))
			}
			c.close()
		})
	}
}

// TestNotifySlack: on Slack, a notification is a message with an
// attachment in the channel that watches its topic, and the ones with the
// same thread key go to the thread the first started; someone who is no
// admin cannot watch.
func TestNotifySlack(t *testing.T) {
	w := newWorld(t)
	srv := slacktestws.New(slacktestws.WithUser("U1", "Ada"), slacktestws.WithUser("U2", "Bob"), slacktestws.WithPingInterval(time.Second))
	t.Cleanup(srv.Close)
	p := start(t, "microbot", bins.microbot, "--inputs", "slack", "--registry_address", w.reg, "--admins", "slack:U1",
		"--slack_app_token", srv.AppToken, "--slack_bot_token", srv.BotToken, "--slack_api_url", srv.APIURL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.WaitConnections(ctx, 1); err != nil {
		t.Fatalf("microbot did not connect: %v\n%s", err, p.stderr.String())
	}
	ask := func(user, text string) slacktestws.Post {
		t.Helper()
		n := srv.PostCount()
		d, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: user, Text: "<@" + srv.BotUserID + "> " + text})
		if err != nil {
			t.Fatal(err)
		}
		posts, err := srv.WaitPosts(ctx, n+1)
		if err != nil {
			t.Fatalf("no answer to %q: %v", text, err)
		}
		if posts[n].ThreadTS != d.TS {
			t.Errorf("answer to %q in thread %q, want %q", text, posts[n].ThreadTS, d.TS)
		}
		return posts[n]
	}
	if got := ask("U2", "watch deploys"); !strings.Contains(got.Text, "you are not allowed to run watch here") {
		t.Errorf("Bob's watch: %q", got.Text)
	}
	if got := ask("U1", "watch deploys"); !strings.Contains(got.Text, "watching deploys") {
		t.Fatalf("Ada's watch: %q", got.Text)
	}
	pubArgs := []string{"--registry_address", w.reg}
	// publish publishes js and returns the post it makes.
	publish := func(js string) slacktestws.Post {
		t.Helper()
		n := srv.PostCount()
		publishCLI(t, pubArgs, "deploys", js, 0)
		posts, err := srv.WaitPosts(ctx, n+1)
		if err != nil {
			t.Fatalf("no post of %s: %v", js, err)
		}
		return posts[n]
	}
	first := publish(`{"title": "deploy of web v2 started", "severity": "info", "thread_key": "web-v2",
		"fields": [{"name": "service", "value": "web"}, {"name": "version", "value": "v2"}], "link": "https://ci.example.org/42", "source": "ci"}`)
	if first.Channel != "C1" || first.ThreadTS != "" || len(first.Attachments) != 1 {
		t.Fatalf("first notification posted as %+v", first)
	}
	a := first.Attachments[0]
	if a.Title != "deploy of web v2 started" || a.TitleLink != "https://ci.example.org/42" || a.Color != "#439FE0" ||
		len(a.Fields) != 2 || !a.Fields[0].Short || a.Footer != "ci" {
		t.Errorf("attachment %+v", a)
	}
	if second := publish(`{"title": "deploy of web v2 finished", "severity": "ok", "thread_key": "web-v2"}`); second.ThreadTS != first.TS || second.Attachments[0].Color != "good" {
		t.Errorf("second notification %+v: want it in the thread %s, green", second, first.TS)
	}
	if third := publish(`{"title": "unrelated"}`); third.ThreadTS != "" {
		t.Errorf("a notification without a thread key went to thread %q", third.ThreadTS)
	}
	// Slack's rate limit (HTTP 429) is waited out as it asks, as for replies.
	calls := len(srv.Calls("chat.postMessage"))
	srv.RateLimit("chat.postMessage", 1, time.Second)
	limited := publish(`{"title": "after a 429"}`)
	if c := srv.Calls("chat.postMessage")[calls:]; limited.Attachments[0].Title != "after a 429" || len(c) != 2 || c[0].Status != 429 || c[1].Status != 200 {
		t.Errorf("rate-limited post %+v after calls %+v: want a 429, then the post", limited, c)
	}
	if got := ask("U1", "unwatch deploys"); !strings.Contains(got.Text, "stopped watching deploys") {
		t.Errorf("unwatch: %q", got.Text)
	}
	p.stop(t)
}

// TestNotifyXMPP: in an XMPP room, a notification is plain text with its
// severity marker; someone who is no admin cannot watch.
func TestNotifyXMPP(t *testing.T) {
	x := newXMPPWorld(t)
	bot := x.bot("--admins", "xmpp:alice@localhost")
	alice := x.human("alice")
	alice.join("alice")
	bob := x.human("bob")
	bob.join("bob")
	if got := bob.inRoom("watch deploys"); !strings.Contains(got, "you are not allowed to run watch here") {
		t.Errorf("bob's watch: %q", got)
	}
	if got := alice.inRoom("watch deploys"); !strings.Contains(got, "watching deploys") {
		t.Fatalf("alice's watch: %q", got)
	}
	publishCLI(t, []string{"--registry_address", x.reg}, "deploys",
		`{"title": "db-1 down", "text": "no answer for 60s", "severity": "critical", "source": "prometheus"}`, 0)
	got := alice.reply(true, "the notification")
	if !strings.HasPrefix(got, "[CRITICAL] db-1 down\nno answer for 60s\n— prometheus, ") {
		t.Errorf("the room got %q", got)
	}
	bot.stop(t)
}

// TestNotifyConsul: with the Consul registry, the watches are in Consul's
// KV store: a second bot sees the first's watch, both share its events in
// one queue group (each event printed once, by one of them), and a bot
// started again watches what it watched.
func TestNotifyConsul(t *testing.T) {
	agent := consultest.Start(t)
	w := newWorld(t)
	flags := []string{"--registry", "consul", "--registry_address", agent.Addr(), "--admins", "shell:tester", "--notify_queue_group", "microbot"}
	a, b := w.bot(flags...), w.bot(flags...)
	expect(t, "watch", a.ask("watch deploys"), contains("watching deploys"))
	b.until("watching", contains("deploys", "subscribed"))
	pub := testPublisher(t, agent.Addr(), []string{"--registry", "consul"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Each event once, on one console or the other (one at a time, so
	// that no storm folds any).
	const events = 10
	seen := map[string]int{}
	for i := range events {
		m := &broker.Message{Header: map[string]string{"Content-Type": "text/plain"}, Body: fmt.Appendf(nil, "event %d", i)}
		if err := pub.Publish(ctx, "deploys", m); err != nil {
			t.Fatal(err)
		}
		var l string
		for !strings.HasPrefix(l, "event ") {
			select {
			case l = <-a.lines:
			case l = <-b.lines:
			case <-ctx.Done():
				t.Fatalf("event %d not printed (seen %v)", i, seen)
			}
		}
		seen[l]++
	}
	for i := range events {
		if k := fmt.Sprintf("event %d", i); seen[k] != 1 {
			t.Errorf("%s printed %d times", k, seen[k])
		}
	}
	a.close()
	b.close()
	c := w.bot(flags...)
	c.until("watching", contains("deploys", "subscribed"))
	c.close()
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/input/slack/slacktestws"
	"github.com/microbot/microbot/internal/testenv"
)

// The progress of long commands, end to end: the real bot and a real
// command service process (commandsvc/internal/testsvc: "trial await
// FILE" reports that it waits and answers once the file exists, so the
// test sees the progress while the command runs; "trial steps N D" reports
// N steps; "trial late D" reports after it answered), on the console with
// the http broker and with NATS (and NATS restarted), on the Slack test
// server (one message edited in place) and on prosody. Each test waits for
// the bot to log that it follows the progress topic, which it subscribes
// to once, at start.

// progressFollowed is what the bot logs once it follows the progress of
// command services.
const progressFollowed = "following the progress of commands"

// brokerArgs are the broker flags of each broker the tests run with; the
// bot and the command service get the same.
func brokerArgs(t testing.TB, name string) []string {
	switch name {
	case "http":
		return nil // the default: nothing but the shared registry
	case "nats":
		return []string{"--broker", "nats", "--broker_address", natstest.Start(t).Addr}
	}
	t.Fatalf("no broker %q", name)
	return nil
}

// trialOn starts the test command service with the broker flags.
func (w *world) trialOn(brokerFlags []string) *proc {
	return start(w.t, "trial", bins.testsvc, append([]string{"--registry_address", w.reg, "--server_name", "go.micro.bot.trial"}, brokerFlags...)...)
}

// progressSubscriptions is how many progress topics the http broker has
// registered in the world's local registry.
func (w *world) progressSubscriptions() int {
	w.t.Helper()
	reg, err := local.New(local.WithDir(w.reg))
	if err != nil {
		w.t.Fatal(err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svcs, err := reg.ListServices(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, s := range svcs {
		if strings.HasPrefix(s.Name, broker.TopicServicePrefix+commandsvc.ProgressTopicPrefix) {
			n++
		}
	}
	return n
}

// awaitProgress runs "command FILE", a command that reports "waiting for
// FILE" as progress and answers answer+FILE once the file exists: the
// progress line shows while the command runs (the test makes the file
// only once it has read the line), then the answer.
func (c *console) awaitProgress(command, answer string) {
	c.t.Helper()
	file := filepath.Join(c.t.TempDir(), "go")
	c.n++
	if _, err := io.WriteString(c.in, fmt.Sprintf("%s %s\n@@mark-%d\n", command, file, c.n)); err != nil {
		c.t.Fatal(err)
	}
	if l := c.nextLine("the progress line"); l != "waiting for "+file {
		c.t.Fatalf("first line %q, want the progress", l)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		c.t.Fatal(err)
	}
	if l := c.nextLine("the answer"); l != answer+file {
		c.t.Fatalf("answer %q, want %q", l, answer+file)
	}
	if l := c.nextLine("the marker's answer"); !strings.Contains(l, fmt.Sprintf(`"@@mark-%d"`, c.n)) {
		c.t.Fatalf("after the answer: %q", l)
	}
}

// nextLine returns the console's next line of output.
func (c *console) nextLine(what string) string {
	c.t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.t.Fatalf("microbot ended; waiting for %s", what)
		}
		return l
	case <-time.After(30 * time.Second):
		c.t.Fatalf("no %s within 30s", what)
	}
	return ""
}

func TestProgressConsole(t *testing.T) {
	for _, name := range []string{"http", "nats"} {
		t.Run(name, func(t *testing.T) {
			flags := brokerArgs(t, name)
			w := newWorld(t)
			w.trialOn(flags)
			c := w.bot(append(flags, "--command_timeout", "20s", "--http_address", "127.0.0.1:0", "--log_format", "json")...)
			ops := opsAddress(t, c.p)
			c.until("help", contains(trialHelp))
			waitLog(t, c.p, progressFollowed)

			// The progress shows while the command runs.
			c.awaitProgress("trial await", "trial saw ")

			// Every step before the answer, in order, the last one reported
			// just before Exec returns: no time between them (Progress
			// returns once the line is on its way in order, see commandsvc).
			if got, want := c.ask("trial steps 3 0s"), "step 1/3\nstep 2/3\nstep 3/3\ntrial did 3 steps"; got != want {
				t.Errorf("steps:\n%s\nwant:\n%s", got, want)
			}
			// A line published after the answer shows nowhere: not during
			// the next command, which outlasts it; it is counted dropped.
			expect(t, "late", c.ask("trial late 300ms"), func(s string) bool { return s == "trial answered" })
			expect(t, "after late", c.ask("trial sleep 1s"), func(s string) bool { return s == "trial slept 1s" })
			testenv.Eventually(t, 30*time.Second, "the late line counted dropped", func() bool {
				_, page := testenv.Get(t, ops+"/metrics")
				return testenv.Metric(page, `microbot_progress_lines_total{outcome="dropped"}`) == 1
			})
			_, page := testenv.Get(t, ops+"/metrics")
			if got := testenv.Metric(page, `microbot_progress_lines_total{outcome="shown"}`); got != 4 {
				t.Errorf("%v progress lines counted shown, want 4", got)
			}
			// Commands without progress work as before.
			expect(t, "ok", c.ask("trial ok hi"), func(s string) bool { return s == "trial says: hi" })
			// The commands subscribed to nothing: with the http broker the
			// registry holds one subscription, the bot's progress topic
			// (registered at start), which list services neither lists nor
			// counts: it is the bot's own.
			want := 0
			if name == "http" {
				want = 1
			}
			if got := w.progressSubscriptions(); got != want {
				t.Errorf("%d progress topics registered with the %s broker, want %d", got, name, want)
			}
			if got := c.ask("list services"); strings.Contains(got, "topic:") || strings.Contains(got, "subscription") {
				t.Errorf("list services with the %s broker: %q", name, got)
			}
			c.close()
		})
	}
}

// TestProgressNATSRestart: the bot's progress subscription, made once at
// start, comes back with the NATS server: once the server is restarted,
// progress shows again with nothing done.
func TestProgressNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	flags := []string{"--broker", "nats", "--broker_address", srv.Addr}
	w := newWorld(t)
	w.trialOn(flags)
	c := w.bot(append(flags, "--command_timeout", "20s")...)
	c.until("help", contains(trialHelp))
	waitLog(t, c.p, progressFollowed)
	// The step is reported just before Exec returns, and shows before the
	// answer all the same (see commandsvc).
	const want = "step 1/1\ntrial did 1 steps"
	if got := c.ask("trial steps 1 0s"); got != want {
		t.Fatalf("before the restart:\n%s\nwant:\n%s", got, want)
	}
	srv.Restart()
	c.until("trial steps 1 0s", func(s string) bool { return s == want })
	for range 5 {
		if got := c.ask("trial steps 1 0s"); got != want {
			t.Fatalf("after the restart:\n%s\nwant:\n%s", got, want)
		}
	}
	c.close()
}

// TestProgressSlack: on Slack the progress is one message in the
// command's thread, posted at the first line and edited (chat.update) as
// the next come, before the answer, which is a message of its own.
func TestProgressSlack(t *testing.T) {
	w := newWorld(t)
	w.trial()
	srv := slacktestws.New(slacktestws.WithUser("U1", "Ada"), slacktestws.WithPingInterval(time.Second))
	t.Cleanup(srv.Close)
	p := start(t, "microbot", bins.microbot, "--inputs", "slack", "--registry_address", w.reg, "--command_timeout", "20s",
		"--slack_app_token", srv.AppToken, "--slack_bot_token", srv.BotToken, "--slack_api_url", srv.APIURL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.WaitConnections(ctx, 1); err != nil {
		t.Fatalf("microbot did not connect: %v\n%s", err, p.stderr.String())
	}
	waitLog(t, p, progressFollowed)
	mention := func(text string) slacktestws.Delivery {
		t.Helper()
		d, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + srv.BotUserID + "> " + text})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	waitPosts := func(n int) []slacktestws.Post {
		t.Helper()
		posts, err := srv.WaitPosts(ctx, n)
		if err != nil {
			t.Fatalf("waiting for %d posts: %v (have %+v)", n, err, srv.Posts())
		}
		return posts
	}
	for n := 1; ; n++ { // the command service may not be discovered yet
		mention("help")
		if strings.Contains(waitPosts(n)[n-1].Text, "trial [ok") {
			break
		}
		if n == 100 {
			t.Fatal("trial never showed in help")
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := srv.PostCount()

	file := filepath.Join(t.TempDir(), "go")
	d := mention("trial await " + file)
	progress := waitPosts(before + 1)[before]
	if progress.Text != "waiting for "+file || progress.ThreadTS != d.TS {
		t.Fatalf("progress post %+v, want the line in the thread of %s", progress, d.TS)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	answer := waitPosts(before + 2)[before+1]
	if answer.Text != "trial saw "+file || answer.ThreadTS != d.TS {
		t.Fatalf("answer %+v", answer)
	}

	d = mention("trial steps 3 300ms")
	posts := waitPosts(before + 4)
	progress, answer = posts[before+2], posts[before+3]
	if progress.ThreadTS != d.TS || answer.ThreadTS != d.TS || answer.Text != "trial did 3 steps" {
		t.Fatalf("posts %+v and %+v, want the progress then the answer in the thread of %s", progress, answer, d.TS)
	}
	if progress.Text != "step 1/3\nstep 2/3\nstep 3/3" || progress.Edits < 1 {
		t.Errorf("progress message %q edited %d times: want every step in it, edited in place", progress.Text, progress.Edits)
	}
	for _, u := range srv.Updates() {
		if u.TS == progress.TS && u.At.After(answer.At) {
			t.Errorf("the progress was edited (%q) after the answer", u.Text)
		}
	}
	if got := srv.PostCount(); got != before+4 {
		t.Errorf("%d posts, want one progress message and one answer per command: %+v", got-before, srv.Posts()[before:])
	}
	p.stop(t)
}

// TestProgressXMPP: on XMPP the progress comes as messages before the
// answer.
func TestProgressXMPP(t *testing.T) {
	x := newXMPPWorld(t)
	x.trial()
	bot := x.bot("--command_timeout", "20s")
	waitLog(t, bot.proc, progressFollowed)
	alice := x.human("alice")
	alice.until(alice.direct, "help", contains(trialHelp))
	file := filepath.Join(t.TempDir(), "go")
	if got := alice.direct("trial await " + file); got != "waiting for "+file {
		t.Fatalf("first message %q, want the progress", got)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := alice.reply(false, "trial await"); got != "trial saw "+file {
		t.Fatalf("answer %q", got)
	}
	bot.stop(t)
}

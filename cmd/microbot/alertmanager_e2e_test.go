package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/bot/ops"
	"github.com/microbot/microbot/input/slack/slacktestws"
	"github.com/microbot/microbot/internal/alertmanagertest"
	"github.com/microbot/microbot/internal/testenv"
)

// Alertmanager -> room, end to end: a real Prometheus Alertmanager
// (internal/alertmanagertest) calls the real bot's /hooks/alertmanager; the
// bot publishes each call as a notification on its topic, and the room
// that watches the topic (the console), or that a route sends it to (a
// Slack channel), shows it: firing, then resolved in the same thread. An
// Alertmanager with another token gets nothing into the room.

// amToken is the webhook's token: given to the bot through its
// environment, it must never show in its logs.
const amToken = "am-e2e-T0ken-5ecret-4471"

// hookAddr returns a free loopback address for the bot's ops listener
// (Alertmanager's configuration needs the URL before the bot starts).
func hookAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePorts(t, 1)[0]))
}

// diskFull is the alert the tests fire and resolve.
var diskFull = alertmanagertest.Alert{
	Labels:       map[string]string{"alertname": "DiskFull", "severity": "critical", "instance": "db1"},
	Annotations:  map[string]string{"summary": "disk full on db1"},
	GeneratorURL: "http://prometheus.example/graph?g0.expr=disk",
}

func TestAlertmanagerConsole(t *testing.T) {
	for _, name := range []string{"http", "nats"} {
		t.Run(name, func(t *testing.T) {
			flags := brokerArgs(t, name)
			w := newWorld(t)
			addr := hookAddr(t)
			t.Setenv("MICRO_ALERTMANAGER_TOKEN", amToken)
			c := w.bot(append(flags, "--admins", "shell:tester", "--http_address", addr, "--alertmanager_topic", "alerts.test")...)
			expect(t, "watch", c.ask("watch alerts.test"), contains("watching alerts.test"))
			c.until("watching", contains("alerts.test", "subscribed"))

			hook := "http://" + addr + ops.PathAlertmanager
			am := alertmanagertest.Start(t, alertmanagertest.Config{WebhookURL: hook, Token: amToken})
			am.Fire(t, diskFull)
			fired := c.post("the firing alert")
			want := []string{"[CRITICAL] FIRING: DiskFull", "disk full on db1", "instance: db1", "severity: critical", diskFull.GeneratorURL}
			if len(fired) != len(want)+1 || strings.Join(fired[:len(want)], "\n") != strings.Join(want, "\n") || !strings.HasPrefix(fired[len(want)], "— alertmanager, ") {
				t.Errorf("firing alert printed as\n%s\nwant\n%s\n— alertmanager, <time>", strings.Join(fired, "\n"), strings.Join(want, "\n"))
			}
			am.Resolve(t, diskFull)
			if resolved := c.post("the resolved alert"); resolved[0] != "[OK] RESOLVED: DiskFull" {
				t.Errorf("resolved alert printed as %q", resolved)
			}

			// Another token: refused, counted, nothing in the room.
			intruder := alertmanagertest.Start(t, alertmanagertest.Config{WebhookURL: hook, Token: "not-the-token"})
			intruder.Fire(t, alertmanagertest.Alert{Labels: map[string]string{"alertname": "Intruder"}})
			metric := `microbot_alertmanager_requests_total{outcome="unauthorized"}`
			testenv.Eventually(t, 30*time.Second, "the refused call counted", func() bool {
				_, page := testenv.Get(t, "http://"+addr+"/metrics")
				return testenv.Metric(page, metric) >= 1
			})
			if got := c.sayLine("ping"); strings.Join(got, "\n") != "pong" {
				t.Errorf("after the refused call the console printed %q, want only the answer to ping", got)
			}
			_, page := testenv.Get(t, "http://"+addr+"/metrics")
			if n := testenv.Metric(page, `microbot_alertmanager_requests_total{outcome="published"}`); n != 2 {
				t.Errorf("%v calls published, want 2 (firing, resolved)", n)
			}
			c.close()
			if strings.Contains(c.p.stderr.String(), amToken) || strings.Contains(c.p.stderr.String(), "5ecret") {
				t.Error("the webhook's token shows in the bot's logs")
			}
		})
	}
}

// TestAlertmanagerSlack: a route sends the alerts to a Slack channel: the
// firing alert is an attachment (dark red: critical; the labels as fields,
// the title linked to Prometheus), the resolved one is in its thread,
// green.
func TestAlertmanagerSlack(t *testing.T) {
	w := newWorld(t)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n  - topic: alerts\n    rooms: [slack:C1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := slacktestws.New(slacktestws.WithPingInterval(time.Second))
	t.Cleanup(srv.Close)
	addr := hookAddr(t)
	t.Setenv("MICRO_ALERTMANAGER_TOKEN", amToken)
	p := start(t, "microbot", bins.microbot, "--inputs", "slack", "--registry_address", w.reg, "--notify_routes", routes,
		"--http_address", addr, "--log_format", "json", "--log_level", "debug",
		"--slack_app_token", srv.AppToken, "--slack_bot_token", srv.BotToken, "--slack_api_url", srv.APIURL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.WaitConnections(ctx, 1); err != nil {
		t.Fatalf("microbot did not connect: %v\n%s", err, p.stderr.String())
	}
	// The route's subscription is made: watching says so.
	for n := 1; ; n++ {
		if _, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + srv.BotUserID + "> watching"}); err != nil {
			t.Fatal(err)
		}
		posts, err := srv.WaitPosts(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if txt := posts[n-1].Text; strings.Contains(txt, "alerts") && strings.Contains(txt, "subscribed") && !strings.Contains(txt, "subscribing") {
			break
		}
		if n == 100 {
			t.Fatalf("the route was never subscribed: %q", posts[n-1].Text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := srv.PostCount()

	am := alertmanagertest.Start(t, alertmanagertest.Config{WebhookURL: "http://" + addr + ops.PathAlertmanager, Token: amToken})
	am.Fire(t, diskFull)
	posts, err := srv.WaitPosts(ctx, before+1)
	if err != nil {
		t.Fatalf("no post of the firing alert: %v", err)
	}
	fired := posts[before]
	if fired.Channel != "C1" || fired.ThreadTS != "" || len(fired.Attachments) != 1 {
		t.Fatalf("firing alert posted as %+v", fired)
	}
	a := fired.Attachments[0]
	if a.Title != "FIRING: DiskFull" || a.TitleLink != diskFull.GeneratorURL || a.Color != "#7A0019" || a.Footer != "alertmanager" ||
		len(a.Fields) != 2 || a.Fields[0].Title != "instance" || a.Fields[0].Value != "db1" || !strings.Contains(a.Text, "disk full on db1") {
		t.Errorf("firing attachment %+v", a)
	}
	am.Resolve(t, diskFull)
	posts, err = srv.WaitPosts(ctx, before+2)
	if err != nil {
		t.Fatalf("no post of the resolved alert: %v", err)
	}
	resolved := posts[before+1]
	if resolved.ThreadTS != fired.TS || len(resolved.Attachments) != 1 || resolved.Attachments[0].Title != "RESOLVED: DiskFull" || resolved.Attachments[0].Color != "good" {
		t.Errorf("resolved alert posted as %+v: want it in the thread %s, green", resolved, fired.TS)
	}
	p.stop(t)
	if strings.Contains(p.stderr.String(), amToken) || strings.Contains(p.stderr.String(), "5ecret") {
		t.Error("the webhook's token shows in the bot's logs")
	}
}

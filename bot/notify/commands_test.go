package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/input"
	pb "github.com/microbot/microbot/proto/bot"
)

// recorder is a Publisher that records what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []published
	err  error
}

type published struct {
	topic string
	body  string
	md    metadata.Metadata
}

func (r *recorder) Publish(ctx context.Context, topic string, msg any, opts ...client.CallOption) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	md, _ := metadata.FromContext(ctx)
	r.msgs = append(r.msgs, published{topic, string(msg.(json.RawMessage)), md})
	return nil
}

// TestCommands runs watch, unwatch, watching and publish as a person
// types them, through a command table.
func TestCommands(t *testing.T) {
	w := newWorld(t)
	pub := &recorder{}
	table := command.NewTable()
	if err := table.Register(Commands(CommandsConfig{Store: w.store, Notifier: w.n, Publisher: pub, Inputs: w.n.Inputs(), Logger: quiet})...); err != nil {
		t.Fatal(err)
	}
	say := func(in, room, text string) *input.Reply {
		t.Helper()
		req := table.Match(text)
		req.Event = &input.Event{Input: in, UserID: "alice", Room: room, Text: text, Addressed: true}
		return table.Execute(w.ctx, req)
	}
	for _, tt := range []struct {
		in, room, line string
		want           string // the reply contains it
		isErr          bool
	}{
		{"shell", "console", "watching", "this room watches no topic", false},
		{"shell", "console", "watch", "which topic? (usage: watch [topic])", true},
		{"shell", "console", "watch a b", "which topic?", true},
		{"shell", "console", "watch alerts.*", `topic "alerts.*": wildcard`, true},
		{"shell", "console", "watch deploys", "watching deploys: its events will be posted here", false},
		{"shell", "console", "watch deploys", "this room already watches deploys", false},
		{"exec", "console", "watch alerts", "watching alerts", false}, // microbot exec is the console
		{"slack", "C1", "watch deploys", "watching deploys", false},
		{"irc", "#ops", "watch deploys", "events cannot be posted on irc (they can on shell, slack)", true},
		{"shell", "console", "unwatch nothing", "this room does not watch nothing", true},
		{"shell", "console", "unwatch alerts", "stopped watching alerts here", false},
		{"shell", "console", "publish", "which topic, and what JSON?", true},
		{"shell", "console", "publish deploys {", "invalid JSON", true},
		{"shell", "console", "publish deploys [1]", "must be a JSON object", true},
		{"shell", "console", `publish deploys {"title": "x", "severity": "urgent"}`, `severity "urgent": want info, ok, warning, error or critical — nothing was published`, true},
		{"shell", "console", `publish deploys {"title": "deploy started", "severity": "info", "thread_key": "d1"}`, "published a notification of", false},
		{"shell", "console", `publish deploys {"status": "ok"}`, "published JSON of 15 bytes on deploys", false},
	} {
		rep := say(tt.in, tt.room, tt.line)
		if !strings.Contains(rep.Text, tt.want) || rep.Error != tt.isErr {
			t.Errorf("%s:%s %q: %q (error %v), want %q (error %v)", tt.in, tt.room, tt.line, rep.Text, rep.Error, tt.want, tt.isErr)
		}
	}
	rep := say("shell", "console", "watching")
	if rep.Format != input.Code || !strings.Contains(rep.Text, "TOPIC") || !strings.Contains(rep.Text, "deploys") ||
		!strings.Contains(rep.Text, "shell:alice") || !strings.Contains(rep.Text, "subscribed") || strings.Contains(rep.Text, "alerts") {
		t.Errorf("watching:\n%s", rep.Text)
	}
	if len(pub.msgs) != 2 {
		t.Fatalf("published %d messages, want 2", len(pub.msgs))
	}
	// protojson's spacing varies on purpose: compare the decoded JSON.
	var got map[string]any
	if m := pub.msgs[0]; m.topic != "deploys" || m.md[pb.HeaderMessageType] != pb.NotificationType ||
		json.Unmarshal([]byte(m.body), &got) != nil || fmt.Sprint(got) != "map[severity:INFO thread_key:d1 title:deploy started]" {
		t.Errorf("notification published as %+v", m)
	}
	if m := pub.msgs[1]; m.md[pb.HeaderMessageType] != "" || m.body != `{"status":"ok"}` {
		t.Errorf("JSON published as %+v", m)
	}
	pub.err = errors.New("broker down")
	if rep := say("shell", "console", `publish deploys {"a": 1}`); !rep.Error || !strings.Contains(rep.Text, "publishing on deploys: broker down") {
		t.Errorf("publish with the broker down: %q", rep.Text)
	}
}

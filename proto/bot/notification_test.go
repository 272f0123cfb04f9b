package bot_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/microbot/microbot/framework/codec"
	"github.com/microbot/microbot/proto/bot"
)

// TestNotificationType: the constant is the message's full name.
func TestNotificationType(t *testing.T) {
	if got := string((&bot.Notification{}).ProtoReflect().Descriptor().FullName()); got != bot.NotificationType {
		t.Errorf("Notification's full name is %q, NotificationType %q", got, bot.NotificationType)
	}
}

// TestNotificationCodecs: a Notification goes through both codecs of the
// framework unchanged, and the JSON a script writes (snake_case or
// camelCase names, the severity by name) decodes.
func TestNotificationCodecs(t *testing.T) {
	n := &bot.Notification{
		Title: "Deploy of web v2", Text: "started by alice", Severity: bot.Notification_WARNING,
		Fields: []*bot.Notification_Field{{Name: "service", Value: "web"}, {Name: "version", Value: "v2"}},
		Link:   "https://ci.example.org/builds/42", ThreadKey: "deploy-web-v2", Source: "ci",
		Time: timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)),
	}
	for _, ct := range []string{codec.JSON, codec.Protobuf} {
		c, err := codec.For(ct)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Marshal(n)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", ct, err)
		}
		var got bot.Notification
		if err := c.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: Unmarshal: %v", ct, err)
		}
		if !proto.Equal(&got, n) {
			t.Errorf("%s: round trip gave %v, want %v", ct, &got, n)
		}
	}
	c, _ := codec.For(codec.JSON)
	for _, js := range []string{
		`{"title": "Deploy of web v2", "thread_key": "deploy-web-v2", "severity": "WARNING", "fields": [{"name": "service", "value": "web"}], "time": "2024-05-01T12:00:00Z"}`,
		`{"title": "Deploy of web v2", "threadKey": "deploy-web-v2", "severity": 3, "fields": [{"name": "service", "value": "web"}], "time": "2024-05-01T12:00:00Z"}`,
	} {
		var got bot.Notification
		if err := c.Unmarshal([]byte(js), &got); err != nil {
			t.Fatalf("Unmarshal %s: %v", js, err)
		}
		if got.GetThreadKey() != "deploy-web-v2" || got.GetSeverity() != bot.Notification_WARNING ||
			len(got.GetFields()) != 1 || !got.GetTime().AsTime().Equal(n.Time.AsTime()) {
			t.Errorf("Unmarshal %s = %v", js, &got)
		}
	}
}

// TestGoMicroCopyIsTheSame: the go-micro test programs publish the
// Notification from a copy of notification.proto (tools/gomicro, generated
// with 2019's tools in a module of its own); the copy differs only in its
// go_package, so the tests of events from go-micro test this message and
// not an older one.
func TestGoMicroCopyIsTheSame(t *testing.T) {
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for l := range strings.SplitSeq(string(b), "\n") {
			if !strings.HasPrefix(l, "option go_package") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	ours := read("notification.proto")
	copied := read(filepath.Join("..", "..", "tools", "gomicro", "proto", "notification", "notification.proto"))
	if ours != copied {
		t.Errorf("tools/gomicro/proto/notification/notification.proto is not proto/bot/notification.proto but for its go_package: copy it again and regenerate (see its doc.go)")
	}
}

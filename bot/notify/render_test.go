package notify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/input"
	pb "github.com/microbot/microbot/proto/bot"
)

func TestRender(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	when := time.Date(2024, 4, 30, 8, 0, 0, 0, time.UTC)
	note := &pb.Notification{Title: "disk\nfull", Text: "/var at 99%", Severity: pb.Notification_CRITICAL, Link: "https://g/d",
		ThreadKey: "disk-db1", Source: "prometheus", Time: timestamppb.New(when),
		Fields: []*pb.Notification_Field{{Name: "host", Value: "db-1"}}}
	protoBody, _ := proto.Marshal(note)
	typed := map[string]string{pb.HeaderMessageType: pb.NotificationType}
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	wantNote := input.Post{Title: "disk full", Text: "/var at 99%", Severity: input.SeverityCritical, Link: "https://g/d",
		Source: "prometheus", Time: when, Fields: []input.Field{{Name: "host", Value: "db-1"}}}
	bigJSON := "{" + strings.Repeat(`"k": 1, `, 100) + `"end": 2}`

	for _, tt := range []struct {
		name   string
		header map[string]string
		body   string
		kind   string
		post   *input.Post // compared whole when set
		text   string      // else: the text contains this
		thread string
	}{
		{"notification as protobuf, by header", hdr("Content-Type", "application/protobuf", pb.HeaderMessageType, pb.NotificationType),
			string(protoBody), KindNotification, &wantNote, "", "disk-db1"},
		{"header name in another case", hdr("content-type", "application/x-protobuf", "micro-message-type", pb.NotificationType),
			string(protoBody), KindNotification, &wantNote, "", "disk-db1"},
		{"notification by Content-Type parameter", hdr("Content-Type", "application/protobuf; proto=go.micro.bot.Notification"),
			string(protoBody), KindNotification, &wantNote, "", "disk-db1"},
		{"notification as JSON, typed", merge(typed, hdr("Content-Type", "application/json")),
			`{"title": "deploy", "severity": "warning", "threadKey": "d1"}`, KindNotification,
			&input.Post{Title: "deploy", Severity: input.SeverityWarning, Source: "deploys", Time: now}, "", "d1"},
		{"notification as JSON, untyped", hdr("Content-Type", "application/json"),
			`{"text": "hello"}`, KindNotification, &input.Post{Text: "hello", Source: "deploys", Time: now}, "", ""},
		{"notification as JSON without a content type", nil,
			`{"text": "hello"}`, KindNotification, &input.Post{Text: "hello", Source: "deploys", Time: now}, "", ""},
		{"typed but broken", merge(typed, hdr("Content-Type", "application/protobuf")),
			"\xff\xff\xff", KindUndecodable, nil, "a notification of 3 bytes on deploys that does not decode", ""},
		{"typed JSON that is not one", merge(typed, hdr("Content-Type", "application/json")),
			`{"foo": 1}`, KindUndecodable, nil, "does not decode (application/json)", ""},
		{"other JSON", hdr("Content-Type", "application/json"), `{"status":"ok","n":[1,2]}`, KindJSON,
			&input.Post{Text: "{\n  \"status\": \"ok\",\n  \"n\": [\n    1,\n    2\n  ]\n}", Format: input.Code, Source: "deploys"}, "", ""},
		{"JSON with a bad severity is JSON", hdr("Content-Type", "application/json"), `{"title": "x", "severity": "urgent"}`, KindJSON, nil, `"severity": "urgent"`, ""},
		{"long JSON cut", hdr("Content-Type", "application/json"), bigJSON, KindJSON, nil, "… (", ""},
		{"protobuf of unknown type", hdr("Content-Type", "application/protobuf"), "\x0a\x03abc", KindProtobuf, nil,
			"a protobuf message of 5 bytes on deploys (its type is not known here)", ""},
		{"protobuf of a named type", hdr("Content-Type", "application/protobuf", pb.HeaderMessageType, "acme.Deploy"), "\x0a\x03abc", KindProtobuf, nil,
			"a protobuf message of 5 bytes on deploys (type acme.Deploy, not known here)", ""},
		{"text", hdr("Content-Type", "text/plain; charset=utf-8"), "backup done", KindText, nil, "backup done", ""},
		{"text without a content type", nil, "backup done", KindText, nil, "backup done", ""},
		{"a JSON string is text", hdr("Content-Type", "application/json"), `"backup\ndone"`, KindText,
			&input.Post{Text: "backup\ndone", Source: "deploys"}, "", ""},
		{"empty", nil, "", KindText, nil, "an empty message on deploys", ""},
		{"binary", hdr("Content-Type", "image/png"), "\x89PNG\x00", KindOther, nil, "a message of 5 bytes on deploys (image/png)", ""},
		{"binary without a content type", nil, "\xff\x00\xfe", KindOther, nil, "(no content type)", ""},
		{"too large", nil, strings.Repeat("x", MaxBody+1), KindOther, nil, "too large to show here", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := render(&broker.Event{Topic: "deploys", Message: broker.Message{Header: tt.header, Body: []byte(tt.body)}}, now)
			if r.kind != tt.kind || r.threadKey != tt.thread {
				t.Errorf("kind %q thread %q, want %q %q", r.kind, r.threadKey, tt.kind, tt.thread)
			}
			if tt.post != nil {
				if got, want := fmt.Sprintf("%+v", r.post), fmt.Sprintf("%+v", *tt.post); got != want {
					t.Errorf("post\n%s\nwant\n%s", got, want)
				}
				return
			}
			if !strings.Contains(r.post.Text, tt.text) || r.post.Source != "deploys" {
				t.Errorf("post %+v: want its text to contain %q, from deploys", r.post, tt.text)
			}
			if len(r.post.Text) > MaxJSONBytes+100 {
				t.Errorf("post text of %d bytes: not short", len(r.post.Text))
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestRenderBounds: whatever a notification holds, the post is bounded.
func TestRenderBounds(t *testing.T) {
	n := &pb.Notification{Title: strings.Repeat("t", 10000), Text: strings.Repeat("é", 10000), Source: strings.Repeat("s", 1000)}
	for i := range 100 {
		n.Fields = append(n.Fields, &pb.Notification_Field{Name: fmt.Sprint(i), Value: strings.Repeat("v", 1000)})
	}
	r := fromNotification(n, "t", time.Now())
	p := r.post
	if len(p.Title) > MaxTitle+30 || len(p.Text) > MaxText+30 || len(p.Source) > MaxField+30 || len(p.Fields) != MaxFields+1 {
		t.Errorf("title %d, text %d, source %d bytes, %d fields", len(p.Title), len(p.Text), len(p.Source), len(p.Fields))
	}
	if !strings.HasSuffix(p.Text, "more)") || !strings.HasPrefix(p.Text, "éé") {
		t.Errorf("text cut as %q…", p.Text[len(p.Text)-30:])
	}
	if last := p.Fields[MaxFields]; last.Value != "80 more fields" {
		t.Errorf("last field %+v", last)
	}
}

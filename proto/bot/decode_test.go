package bot_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/proto/bot"
)

// TestDecode: what each kind of body decodes to, as the notifier and the
// progress of commands read it.
func TestDecode(t *testing.T) {
	note, _ := proto.Marshal(&bot.Notification{Title: "deploy", Text: "started"})
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tt := range []struct {
		name   string
		header map[string]string
		body   string
		kind   string
		title  string // of the notification
		text   string // of the notification, or the text
		mt     string
		typ    string
	}{
		{"protobuf by header", hdr("Content-Type", "application/protobuf", bot.HeaderMessageType, bot.NotificationType), string(note),
			bot.KindNotification, "deploy", "started", "application/protobuf", bot.NotificationType},
		{"header names in another case", hdr("content-type", "application/x-protobuf", "micro-message-type", bot.NotificationType), string(note),
			bot.KindNotification, "deploy", "started", "application/x-protobuf", bot.NotificationType},
		{"by Content-Type parameter", hdr("Content-Type", "application/protobuf; proto=go.micro.bot.Notification"), string(note),
			bot.KindNotification, "deploy", "started", "application/protobuf", bot.NotificationType},
		{"typed JSON", hdr("Content-Type", "application/json", bot.HeaderMessageType, bot.NotificationType), `{"title":"deploy","severity":"ok"}`,
			bot.KindNotification, "deploy", "", "application/json", bot.NotificationType},
		{"untyped JSON notification", nil, `{"text":"hello"}`, bot.KindNotification, "", "hello", "", ""},
		{"typed, broken", hdr("Content-Type", "application/protobuf", bot.HeaderMessageType, bot.NotificationType), "\xff\xff",
			bot.KindUndecodable, "", "", "application/protobuf", bot.NotificationType},
		{"typed JSON that is not one", hdr("Content-Type", "application/json", bot.HeaderMessageType, bot.NotificationType), `{"x":1}`,
			bot.KindUndecodable, "", "", "application/json", bot.NotificationType},
		{"other JSON", hdr("Content-Type", "application/json"), `{"x":1}`, bot.KindJSON, "", "", "application/json", ""},
		{"+json", hdr("Content-Type", "application/vnd.x+json"), `[1]`, bot.KindJSON, "", "", "application/vnd.x+json", ""},
		{"JSON string", hdr("Content-Type", "application/json"), ` "step 1\u00e9" `, bot.KindText, "", "step 1é", "application/json", ""},
		{"JSON string without a content type", nil, `"step 1"`, bot.KindText, "", "step 1", "", ""},
		{"protobuf of unknown type", hdr("Content-Type", "application/protobuf"), string(note), bot.KindProtobuf, "", "", "application/protobuf", ""},
		{"protobuf of another type", hdr("Content-Type", "application/protobuf", bot.HeaderMessageType, "acme.Deploy"), string(note),
			bot.KindProtobuf, "", "", "application/protobuf", "acme.Deploy"},
		{"text", hdr("Content-Type", "text/plain; charset=utf-8"), `{"x":1}`, bot.KindText, "", `{"x":1}`, "text/plain", ""},
		{"text without a content type", nil, "backup done", bot.KindText, "", "backup done", "", ""},
		{"empty", nil, "", bot.KindText, "", "", "", ""},
		{"binary", hdr("Content-Type", "image/png"), "\x89PNG", bot.KindOther, "", "", "image/png", ""},
		{"binary without a content type", nil, "\xff\x00", bot.KindOther, "", "", "", ""},
		{"bad content type", hdr("Content-Type", "Text/Plain;;"), "hi", bot.KindText, "", "hi", "text/plain;;", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := bot.Decode(tt.header, []byte(tt.body))
			text := d.Text
			if d.Notification != nil {
				text = d.Notification.GetText()
			}
			if d.Kind != tt.kind || d.Notification.GetTitle() != tt.title || text != tt.text || d.MediaType != tt.mt || d.Type != tt.typ {
				t.Errorf("Decode = %+v, want kind %q title %q text %q media type %q type %q", d, tt.kind, tt.title, tt.text, tt.mt, tt.typ)
			}
			if (d.Kind == bot.KindNotification) != (d.Notification != nil) || (d.Kind == bot.KindUndecodable) != (d.Err != nil) {
				t.Errorf("Decode = %+v: a notification only for KindNotification, an error only for KindUndecodable", d)
			}
		})
	}
}

// TestParseNotification: JSON is a Notification when all its fields are,
// with a known severity, and it has a title or a text.
func TestParseNotification(t *testing.T) {
	for _, tt := range []struct {
		json string
		ok   bool
		sev  bot.Notification_Severity
	}{
		{`{"title": "a"}`, true, 0},
		{`{"text": "a", "severity": "Critical"}`, true, bot.Notification_CRITICAL},
		{`{"text": "a", "severity": 3}`, true, bot.Notification_WARNING},
		{`{"text": "a", "severity": "urgent"}`, false, 0},
		{`{"text": "a", "extra": 1}`, false, 0},
		{`{"source": "ci"}`, false, 0},
		{`{}`, false, 0},
		{`[1]`, false, 0},
		{`"title"`, false, 0},
	} {
		n, err := bot.ParseNotification([]byte(tt.json))
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, bot.ErrNotNotification)) || (tt.ok && n.GetSeverity() != tt.sev) {
			t.Errorf("bot.ParseNotification(%s) = %v, %v", tt.json, n, err)
		}
	}
}

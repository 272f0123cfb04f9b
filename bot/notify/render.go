package notify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/input"
	pb "github.com/microbot/microbot/proto/bot"
)

// What a post shows of an event at most; the rest is cut, saying so.
const (
	MaxTitle     = 200       // bytes of a title, on one line
	MaxText      = 4000      // bytes of a notification's or a text's body
	MaxFields    = 20        // fields of a notification
	MaxField     = 300       // bytes of a field's name or value
	MaxJSONLines = 40        // lines of JSON shown
	MaxJSONBytes = 3000      // bytes of JSON shown
	MaxBody      = 256 << 10 // larger bodies are not decoded, only named
)

// Kinds of payload, as rendered: proto/bot's (bot.Decode).
const (
	KindNotification = pb.KindNotification
	KindJSON         = pb.KindJSON
	KindProtobuf     = pb.KindProtobuf // without a known type
	KindText         = pb.KindText
	KindOther        = pb.KindOther       // binary, or too large
	KindUndecodable  = pb.KindUndecodable // says it is a Notification, but is not
)

// rendered is an event made ready to post (without its room and thread).
type rendered struct {
	post      input.Post
	threadKey string
	kind      string
}

// render turns a published message into the post that shows it; it never
// fails (whatever cannot be shown is named: its size and topic). The body
// is read by bot.Decode: Notifications by type (the header or the
// Content-Type parameter), then JSON (a Notification written as JSON, a
// string, or any JSON, indented and cut short), protobuf without a known
// type (its size), text, and anything else (its size and content type).
func render(e *broker.Event, now time.Time) rendered {
	topic, body := e.Topic, e.Body
	if len(body) > MaxBody {
		return named(topic, fmt.Sprintf("a message of %s on %s, too large to show here", size(len(body)), topic), KindOther)
	}
	d := pb.Decode(e.Header, body)
	switch d.Kind {
	case pb.KindNotification:
		return fromNotification(d.Notification, topic, now)
	case pb.KindUndecodable:
		return named(topic, fmt.Sprintf("a notification of %s on %s that does not decode (%s): %v", size(len(body)), topic, cmp.Or(d.MediaType, "no content type"), d.Err), KindUndecodable)
	case pb.KindProtobuf:
		why := "its type is not known here"
		if d.Type != "" {
			why = "type " + oneLine(d.Type, MaxTitle) + ", not known here"
		}
		return named(topic, fmt.Sprintf("a protobuf message of %s on %s (%s)", size(len(body)), topic, why), KindProtobuf)
	case pb.KindJSON:
		return rendered{post: input.Post{Text: shortJSON(body), Format: input.Code, Source: topic}, kind: KindJSON}
	case pb.KindText:
		if strings.TrimSpace(d.Text) == "" {
			return named(topic, "an empty message on "+topic, KindText)
		}
		return rendered{post: input.Post{Text: cut(d.Text, MaxText), Source: topic}, kind: KindText}
	}
	return named(topic, fmt.Sprintf("a message of %s on %s (%s)", size(len(body)), topic, cmp.Or(d.MediaType, "no content type")), KindOther)
}

// named is a post that only says what came.
func named(topic, text, kind string) rendered {
	return rendered{post: input.Post{Text: text, Source: topic}, kind: kind}
}

// fromNotification is the post of n, published on topic.
func fromNotification(n *pb.Notification, topic string, now time.Time) rendered {
	p := input.Post{
		Title:    oneLine(n.GetTitle(), MaxTitle),
		Text:     cut(strings.Trim(n.GetText(), "\n"), MaxText),
		Severity: severityOf(n.GetSeverity()),
		Link:     oneLine(n.GetLink(), MaxField),
		Source:   cmp.Or(oneLine(n.GetSource(), MaxField), topic),
		Time:     now,
	}
	if t := n.GetTime(); t != nil && t.IsValid() {
		p.Time = t.AsTime()
	}
	for i, f := range n.GetFields() {
		if i == MaxFields {
			p.Fields = append(p.Fields, input.Field{Name: "…", Value: fmt.Sprintf("%d more fields", len(n.GetFields())-MaxFields)})
			break
		}
		p.Fields = append(p.Fields, input.Field{Name: oneLine(f.GetName(), MaxField), Value: cut(f.GetValue(), MaxField)})
	}
	if p.Title == "" && p.Text == "" && len(p.Fields) == 0 {
		p.Text = "(an empty notification)"
	}
	return rendered{post: p, threadKey: oneLine(n.GetThreadKey(), MaxField), kind: KindNotification}
}

// severityOf maps the proto's severity to the input's.
func severityOf(s pb.Notification_Severity) input.Severity {
	switch s {
	case pb.Notification_INFO:
		return input.SeverityInfo
	case pb.Notification_OK:
		return input.SeverityOK
	case pb.Notification_WARNING:
		return input.SeverityWarning
	case pb.Notification_ERROR:
		return input.SeverityError
	case pb.Notification_CRITICAL:
		return input.SeverityCritical
	}
	return input.SeverityNone
}

// shortJSON indents valid JSON and cuts it at MaxJSONLines lines or
// MaxJSONBytes bytes, at a line's end, saying how much was left out.
func shortJSON(body []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, body, "", "  "); err != nil {
		return cut(string(body), MaxJSONBytes)
	}
	s := b.String()
	lines := strings.Split(s, "\n")
	shown, n := 0, 0
	for shown < len(lines) && shown < MaxJSONLines && n+len(lines[shown])+1 <= MaxJSONBytes {
		n += len(lines[shown]) + 1
		shown++
	}
	if shown == len(lines) {
		return s
	}
	if shown == 0 { // one line longer than the whole budget
		return cut(s, MaxJSONBytes)
	}
	return strings.Join(lines[:shown], "\n") + fmt.Sprintf("\n… (%d more lines)", len(lines)-shown)
}

// cut shortens s to at most max bytes (at a rune boundary), saying so.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + fmt.Sprintf("… (%s more)", size(len(s)-i))
}

// oneLine puts s on one line, at most max bytes.
func oneLine(s string, max int) string {
	if strings.ContainsAny(s, "\r\n\t") {
		s = strings.Join(strings.Fields(s), " ")
	}
	return cut(s, max)
}

// size writes a byte count for people.
func size(n int) string {
	switch {
	case n == 1:
		return "1 byte"
	case n < 1024:
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d KB", (n+1023)/1024)
}

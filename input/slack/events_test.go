package slack

import (
	"testing"

	"github.com/slack-go/slack/slackevents"
)

func TestEventIDDeduplicates(t *testing.T) {
	in, err := New(Config{AppToken: "xapp-1-A1-test-token", BotToken: "xoxb-1-test-token"})
	if err != nil {
		t.Fatal(err)
	}
	in.self = &selfInfo{userID: "UBOT"}
	dm := func(eventID, ts string) slackevents.EventsAPIEvent {
		return slackevents.EventsAPIEvent{
			Type: slackevents.CallbackEvent,
			Data: &slackevents.EventsAPICallbackEvent{EventID: eventID},
			InnerEvent: slackevents.EventsAPIInnerEvent{Type: "message", Data: &slackevents.MessageEvent{
				Type: "message", ChannelType: "im", Channel: "D1", User: "U1", Text: "hi", TimeStamp: ts,
			}},
		}
	}
	tests := []struct {
		eventID, ts string
		want        bool
	}{
		{"Ev1", "1.000001", true},
		{"Ev1", "1.000002", false}, // the event id alone is enough
		{"Ev2", "1.000001", false}, // so is the message
		{"Ev3", "1.000003", true},
	}
	for _, tt := range tests {
		p := in.fromEventsAPI(dm(tt.eventID, tt.ts))
		if p == nil {
			t.Fatalf("delivery %s of message %s filtered out", tt.eventID, tt.ts)
		}
		if got := !in.handled(p.keys) && in.claim(p.keys); got != tt.want {
			t.Errorf("delivery %s of message %s handled = %v, want %v", tt.eventID, tt.ts, got, tt.want)
		}
	}
}

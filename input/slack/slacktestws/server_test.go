package slacktestws_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/microbot/microbot/input/slack/slacktestws"
)

func TestWebAPIBehavesLikeSlack(t *testing.T) {
	srv := slacktestws.New()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bot := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()))

	tests := []struct {
		name string
		call func() error
		want string // error, "" for success
	}{
		{"post", func() error {
			_, _, err := bot.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
			return err
		}, ""},
		{"too long", func() error {
			_, _, err := bot.PostMessageContext(ctx, "C1", slack.MsgOptionText(strings.Repeat("x", slacktestws.MaxTextLength+1), false))
			return err
		}, "msg_too_long"},
		{"wrong token", func() error {
			_, err := slack.New("xoxb-wrong", slack.OptionAPIURL(srv.APIURL())).AuthTestContext(ctx)
			return err
		}, "invalid_auth"},
		{"app token on the Web API", func() error {
			_, err := slack.New(srv.AppToken, slack.OptionAPIURL(srv.APIURL())).AuthTestContext(ctx)
			return err
		}, "not_allowed_token_type"},
		{"bot token opens no socket", func() error {
			_, _, err := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()), slack.OptionAppLevelToken(srv.BotToken)).StartSocketModeContext(ctx)
			return err
		}, "not_allowed_token_type"},
		{"unknown user", func() error {
			_, err := bot.GetUserInfoContext(ctx, "U404")
			return err
		}, "user_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}

	srv.RateLimit("chat.postMessage", 1, 1500*time.Millisecond)
	_, _, err := bot.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false))
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); !ok || rl.RetryAfter != 2*time.Second {
		t.Fatalf("rate limited post = %v, want Retry-After 2s (whole seconds)", err)
	}
	if n := len(srv.Posts()); n != 1 {
		t.Fatalf("%d posts recorded, want the one that succeeded", n)
	}
}

func TestSocketModeEnvelopes(t *testing.T) {
	srv := slacktestws.New(slacktestws.WithPingInterval(50 * time.Millisecond))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Disconnect("warning"); err == nil {
		t.Fatal("Disconnect with no connection succeeded")
	}

	_, url, err := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()), slack.OptionAppLevelToken(srv.AppToken)).StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pinged := make(chan struct{}, 1)
	ws.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return nil
	})
	type envelope struct {
		Type         string          `json:"type"`
		EnvelopeID   string          `json:"envelope_id"`
		RetryAttempt int             `json:"retry_attempt"`
		Reason       string          `json:"reason"`
		Payload      json.RawMessage `json:"payload"`
	}
	read := func() envelope {
		t.Helper()
		var e envelope
		if err := ws.ReadJSON(&e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := read(); e.Type != "hello" {
		t.Fatalf("first envelope %q, want hello", e.Type)
	}
	if err := srv.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}

	d, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "<@" + srv.BotUserID + "> hi", EventID: "Ev1", RetryAttempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := read()
	var p struct {
		EventID string `json:"event_id"`
		Event   struct {
			Type, Text, TS string
		} `json:"event"`
	}
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if e.Type != "events_api" || e.EnvelopeID != d.EnvelopeID || e.RetryAttempt != 1 || p.EventID != "Ev1" || p.Event.Type != "app_mention" || p.Event.TS != d.TS {
		t.Fatalf("envelope %+v payload %+v", e, p)
	}
	if srv.Acked(d.EnvelopeID) != 0 {
		t.Fatal("acked before the client acked")
	}
	if err := ws.WriteJSON(map[string]string{"envelope_id": d.EnvelopeID}); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitAck(ctx, d.EnvelopeID); err != nil {
		t.Fatal(err)
	}

	if _, err := srv.SlashCommand(ctx, slacktestws.SlashCommand{Text: "list", Channel: "C1", User: "U1"}); err != nil {
		t.Fatal(err)
	}
	if e := read(); e.Type != "slash_commands" || !strings.Contains(string(e.Payload), `"command":"/micro"`) {
		t.Fatalf("envelope %+v", e)
	}
	if err := srv.Disconnect("refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if e := read(); e.Type != "disconnect" || e.Reason != "refresh_requested" {
		t.Fatalf("envelope %+v", e)
	}
	// Reading handles pings; the read ends when the socket is dropped.
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	select {
	case <-pinged:
	case <-ctx.Done():
		t.Fatal("no ping")
	}
	if srv.DropConnections() != 1 {
		t.Fatal("no socket dropped")
	}
	select {
	case <-readErr:
	case <-ctx.Done():
		t.Fatal("socket still readable after the drop")
	}
}

// TestUpdate: chat.update changes a message the app posted, in place, and
// refuses one that does not exist, as Slack does.
func TestUpdate(t *testing.T) {
	srv := slacktestws.New()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bot := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()))
	_, ts, err := bot.PostMessageContext(ctx, "C1", slack.MsgOptionText("step 1", false), slack.MsgOptionTS("1700000000.000001"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, text, err := bot.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("step 2", false))
	if err != nil || text != "step 2" {
		t.Fatalf("update = %q, %v", text, err)
	}
	posts := srv.Posts()
	if len(posts) != 1 || posts[0].Text != "step 2" || posts[0].Edits != 1 || posts[0].ThreadTS != "1700000000.000001" {
		t.Fatalf("posts = %+v, want the one post, edited once, in its thread", posts)
	}
	if ups := srv.Updates(); len(ups) != 1 || ups[0].TS != ts || ups[0].Text != "step 2" {
		t.Fatalf("updates = %+v", ups)
	}
	for _, bad := range []struct{ channel, ts, want string }{
		{"C1", "1.000000", "message_not_found"},
		{"C2", ts, "message_not_found"},
	} {
		if _, _, _, err := bot.UpdateMessageContext(ctx, bad.channel, bad.ts, slack.MsgOptionText("x", false)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("update of %s %s = %v, want %s", bad.channel, bad.ts, err, bad.want)
		}
	}
	srv.RateLimit("chat.update", 1, time.Second)
	if _, _, _, err := bot.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("x", false)); err == nil {
		t.Fatal("rate-limited update succeeded")
	}
	if _, err := srv.WaitUpdates(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

// TestTwoConnectionsOfOneApp: an app with two Socket Mode connections gets
// deliveries on the one asked for, in turn WithRoundRobin, and a retry on
// the other connection than the first delivery's; acks say which carried
// them.
func TestTwoConnectionsOfOneApp(t *testing.T) {
	srv := slacktestws.New(slacktestws.WithRoundRobin())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()), slack.OptionAppLevelToken(srv.AppToken))
	type envelope struct {
		Type       string `json:"type"`
		EnvelopeID string `json:"envelope_id"`
		Payload    struct {
			EventID string `json:"event_id"`
		} `json:"payload"`
	}
	// Two connections, each read into its own channel and acking all.
	var got [3]chan envelope
	for n := 1; n <= 2; n++ {
		_, url, err := api.StartSocketModeContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		got[n] = make(chan envelope, 16)
		go func(ch chan envelope) {
			for {
				var e envelope
				if err := ws.ReadJSON(&e); err != nil {
					return
				}
				if e.EnvelopeID != "" {
					ws.WriteJSON(map[string]string{"envelope_id": e.EnvelopeID})
				}
				ch <- e
			}
		}(got[n])
		if err := srv.WaitConnections(ctx, n); err != nil {
			t.Fatal(err)
		}
		if e := <-got[n]; e.Type != "hello" {
			t.Fatalf("connection %d: first envelope %q", n, e.Type)
		}
	}
	if live := srv.LiveConnections(); len(live) != 2 || live[0] != 1 || live[1] != 2 {
		t.Fatalf("live connections %v, want [1 2]", live)
	}
	expect := func(n int, eventID string) {
		t.Helper()
		select {
		case e := <-got[n]:
			if e.Payload.EventID != eventID {
				t.Fatalf("connection %d got event %q, want %q", n, e.Payload.EventID, eventID)
			}
			if err := srv.WaitAck(ctx, e.EnvelopeID); err != nil {
				t.Fatal(err)
			}
			for _, a := range srv.Acks() {
				if a.EnvelopeID == e.EnvelopeID && a.Connection != n {
					t.Fatalf("ack of %s recorded on connection %d, want %d", e.EnvelopeID, a.Connection, n)
				}
			}
		case <-ctx.Done():
			t.Fatalf("connection %d: no event %s", n, eventID)
		}
	}
	// In turn.
	d1, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "one", EventID: "Ev1"})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "two", EventID: "Ev2"})
	if err != nil {
		t.Fatal(err)
	}
	if d1.Connection == d2.Connection {
		t.Fatalf("round robin sent both on connection %d", d1.Connection)
	}
	expect(d1.Connection, "Ev1")
	expect(d2.Connection, "Ev2")
	// A retry of Ev1 on the other connection.
	other := 3 - d1.Connection
	d3, err := srv.Mention(ctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "one", TS: d1.TS, EventID: "Ev1", RetryAttempt: 1, Connection: other})
	if err != nil || d3.Connection != other {
		t.Fatalf("retry sent on %d (%v), want %d", d3.Connection, err, other)
	}
	expect(other, "Ev1")
	// A connection that is not open.
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer scancel()
	if _, err := srv.Mention(sctx, slacktestws.Message{Channel: "C1", User: "U1", Text: "x", Connection: 7}); err == nil {
		t.Fatal("a delivery on connection 7 succeeded")
	}
}

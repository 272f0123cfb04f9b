package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/microbot/microbot/bot/access"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/input"
	pb "github.com/microbot/microbot/proto/bot"
)

// Publisher publishes a message to a topic (framework/client's Client).
type Publisher interface {
	Publish(ctx context.Context, topic string, msg any, opts ...client.CallOption) error
}

// CommandsConfig is what the watch commands work with.
type CommandsConfig struct {
	// Store keeps the watches (required).
	Store *Store
	// Notifier, if the bot runs one, is refreshed at once when a command
	// changes the watches, and tells watching the state of the
	// subscriptions. Without it (microbot exec) the watches are stored for
	// the bots that run one.
	Notifier *Notifier
	// Publisher, if set, serves the publish command.
	Publisher Publisher
	// Inputs are the inputs whose rooms may watch (those that can post).
	Inputs []string
	// Logger gets the warnings (default slog.Default()).
	Logger *slog.Logger
}

// Command names.
const (
	CmdWatch    = "watch"
	CmdUnwatch  = "unwatch"
	CmdWatching = "watching"
	CmdPublish  = "publish"
)

// Commands returns the chat commands of the watches, built-ins of the
// table: watch [topic], unwatch [topic], watching, and, with a Publisher,
// publish [topic] [json]. The access policy decides who runs them (by
// default, watch, unwatch and publish are for admins).
func Commands(cfg CommandsConfig) []*command.Command {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &commands{cfg}
	cmds := []*command.Command{
		{Name: CmdWatch, Usage: "watch [topic]", Description: "Posts the events published on a topic in this room", Run: c.watch},
		{Name: CmdUnwatch, Usage: "unwatch [topic]", Description: "Stops posting a topic's events in this room", Run: c.unwatch},
		{Name: CmdWatching, Usage: "watching", Description: "Lists the topics whose events are posted in this room", Run: c.watching},
	}
	if cfg.Publisher != nil {
		cmds = append(cmds, &command.Command{Name: CmdPublish, Usage: "publish [topic] [json]",
			Description: "Publishes a JSON message on a topic (a notification: {\"title\": ..., \"text\": ...})", Run: c.publish})
	}
	return cmds
}

type commands struct{ cfg CommandsConfig }

// place returns where req was asked, if its input can post there.
func (c *commands) place(req *command.Request) (Place, error) {
	ev := req.Event
	if ev == nil {
		return Place{}, errors.New("no room: the command was not typed in a room")
	}
	p := placeOf(ev.Input, ev.Room)
	if !slices.Contains(c.cfg.Inputs, p.Input) {
		return Place{}, fmt.Errorf("events cannot be posted on %s (they can on %s)", p.Input, strings.Join(c.cfg.Inputs, ", "))
	}
	return p, nil
}

// topicParam returns the one topic of req.
func topicParam(req *command.Request) (string, error) {
	params := req.Params()
	if len(params) != 1 {
		return "", command.Usagef(req.Command, "which topic?")
	}
	if err := broker.ValidateTopic(params[0]); err != nil {
		return "", command.Usagef(req.Command, "%s", strings.TrimPrefix(err.Error(), broker.ErrInvalid.Error()+" "))
	}
	return params[0], nil
}

// refresh puts a change of the watches in effect now, if a notifier runs
// here, and says how the topic's subscription is.
func (c *commands) refresh(ctx context.Context, topic string) string {
	n := c.cfg.Notifier
	if n == nil {
		return ""
	}
	if err := n.Refresh(ctx); err != nil {
		c.cfg.Logger.Warn("refreshing the watches", "err", err)
		return " (not in effect yet: " + err.Error() + ")"
	}
	for _, ts := range n.Topics() {
		if ts.Topic == topic && !ts.Subscribed && ts.Err != nil {
			return " (not subscribed yet, retrying: " + ts.Err.Error() + ")"
		}
	}
	return ""
}

// topicHere returns the one topic of req and the room it was asked in.
func (c *commands) topicHere(req *command.Request) (string, Place, error) {
	topic, err := topicParam(req)
	if err != nil {
		return "", Place{}, err
	}
	place, err := c.place(req)
	return topic, place, err
}

func (c *commands) watch(ctx context.Context, req *command.Request) (*input.Reply, error) {
	topic, place, err := c.topicHere(req)
	if err != nil {
		return nil, err
	}
	added, err := c.cfg.Store.Add(ctx, Watch{Topic: topic, Place: place, By: access.Qualify(req.Event.Input, req.Event.UserID), Since: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	if !added {
		return command.Text("this room already watches " + topic), nil
	}
	return command.Text("watching " + topic + ": its events will be posted here" + c.refresh(ctx, topic)), nil
}

func (c *commands) unwatch(ctx context.Context, req *command.Request) (*input.Reply, error) {
	topic, place, err := c.topicHere(req)
	if err != nil {
		return nil, err
	}
	removed, err := c.cfg.Store.Remove(ctx, topic, place)
	if err != nil {
		return nil, err
	}
	routed := c.cfg.Notifier != nil && slices.Contains(c.cfg.Notifier.Routes().Places(topic), place)
	if !removed {
		if routed {
			return nil, fmt.Errorf("this room does not watch %s; the routes file %s sends it here (change the file to stop it)", topic, c.cfg.Notifier.Routes().File())
		}
		return nil, fmt.Errorf("this room does not watch %s (watching lists what it watches)", topic)
	}
	msg := "stopped watching " + topic + " here" + c.refresh(ctx, topic)
	if routed {
		msg += "; the routes file " + c.cfg.Notifier.Routes().File() + " still sends it here"
	}
	return command.Text(msg), nil
}

func (c *commands) watching(ctx context.Context, req *command.Request) (*input.Reply, error) {
	if len(req.Params()) > 0 {
		return nil, command.Usagef(req.Command, "watching takes no parameter")
	}
	place, err := c.place(req)
	if err != nil {
		return nil, err
	}
	ws, err := c.cfg.Store.Of(ctx, place)
	if err != nil {
		return nil, err
	}
	state := map[string]string{}
	var routed []string
	if n := c.cfg.Notifier; n != nil {
		for _, ts := range n.Topics() {
			switch {
			case ts.Subscribed:
				state[ts.Topic] = "subscribed"
			case ts.Err != nil:
				state[ts.Topic] = "not subscribed: " + ts.Err.Error()
			default:
				state[ts.Topic] = "subscribing"
			}
		}
		r := n.Routes()
		for _, t := range r.Topics() {
			if slices.Contains(r.Places(t), place) {
				routed = append(routed, t)
			}
		}
	}
	if len(ws) == 0 && len(routed) == 0 {
		return command.Text("this room watches no topic (watch [topic] to start)"), nil
	}
	rows := [][]string{{"TOPIC", "SINCE", "BY", "STATE"}}
	orState := func(t string) string {
		if s, ok := state[t]; ok {
			return s
		}
		if c.cfg.Notifier == nil {
			return "-"
		}
		return "subscribing"
	}
	slices.SortFunc(ws, func(a, b Watch) int { return strings.Compare(a.Topic, b.Topic) })
	for _, w := range ws {
		rows = append(rows, []string{w.Topic, w.Since.UTC().Format("2006-01-02 15:04 UTC"), input.PrintableLine(cmp.Or(w.By, "-")), orState(w.Topic)})
	}
	for _, t := range routed {
		rows = append(rows, []string{t, "(routes file)", "-", orState(t)})
	}
	return command.Code(command.Columns(rows)), nil
}

func (c *commands) publish(ctx context.Context, req *command.Request) (*input.Reply, error) {
	params := req.Params()
	if len(params) < 2 {
		return nil, command.Usagef(req.Command, "which topic, and what JSON?")
	}
	kind, n, err := Publish(ctx, c.cfg.Publisher, params[0], req.Rest(1))
	if err != nil {
		return nil, err
	}
	return command.Text(fmt.Sprintf("published %s of %s on %s", kind, size(n), params[0])), nil
}

// ErrNotPublished is wrapped by the errors of Publish for a topic or JSON
// that is not valid: nothing was published.
var ErrNotPublished = errors.New("nothing was published")

// Publish publishes raw, a JSON object as a person or a script typed it,
// on topic through p, as application/json: a Notification (see
// bot.ParseNotification) re-encoded in the proto3 JSON mapping with the
// header Micro-Message-Type naming its type, any other object as it is.
// ctx's metadata (the caller) goes along as headers. It returns what was
// published ("a notification" or "JSON") and its size; an invalid topic or
// JSON is an error saying what is wrong, wrapping ErrNotPublished.
func Publish(ctx context.Context, p Publisher, topic, raw string) (kind string, n int, err error) {
	if err := broker.ValidateTopic(topic); err != nil {
		return "", 0, fmt.Errorf("%w — %w", err, ErrNotPublished)
	}
	if strings.TrimSpace(raw) == "" {
		return "", 0, fmt.Errorf(`no JSON to publish (e.g. {"title": "deploy started", "severity": "info"}) — %w`, ErrNotPublished)
	}
	body, err := command.JSONObject(raw)
	if err != nil {
		return "", 0, fmt.Errorf("%w — %w", err, ErrNotPublished)
	}
	kind = "JSON"
	if note, perr := pb.ParseNotification(body); perr == nil {
		if body, err = (protojson.MarshalOptions{UseProtoNames: true}).Marshal(note); err != nil {
			return "", 0, err
		}
		kind = "a notification"
		ctx = metadata.MergeContext(ctx, metadata.Metadata{pb.HeaderMessageType: pb.NotificationType})
	} else if looksLikeNotification(body) {
		return "", 0, fmt.Errorf("%w — %w", perr, ErrNotPublished)
	}
	if err := p.Publish(ctx, topic, json.RawMessage(body), client.WithContentType("application/json")); err != nil {
		return "", 0, fmt.Errorf("publishing on %s: %w", topic, err)
	}
	return kind, len(body), nil
}

// looksLikeNotification reports whether a JSON object that is not a
// Notification was surely meant as one: it has a title or a text (so the
// error saying why it is not one helps more than publishing it as JSON).
func looksLikeNotification(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, title := m["title"]
	_, text := m["text"]
	return title || text
}

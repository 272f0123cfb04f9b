package watch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/metadata"
	pb "github.com/microbot/microbot/proto/bot"
)

// Progress of a command service. When the bot shows a command's progress
// (command.ProgressFrom gives a function) and the watcher has a broker
// ([WithBroker]), running the command first subscribes to a topic made up
// for this one call (commandsvc.ProgressTopicPrefix and 128 random bits,
// so nobody else can guess it), passes it to Exec in the request metadata
// (commandsvc.MetaProgress), and shows each message published there as
// lines of progress. When Exec returns, the messages already received are
// shown (within a second), then nothing more: the subscription ends.
//
// The subscription is awaited up to the progress wait ([WithProgressWait],
// default 2 s) before Exec is called, so that the first lines are not
// lost; past that, Exec is called anyway (a broker down must not hold the
// command up) and the lines published before the subscription is made are
// lost; for 30 s after that, or after a failed subscription, the next
// calls do not wait at all.
//
// Messages are a proto/bot Notification (protobuf or JSON: its title and
// text), a JSON string, or plain text (text/plain); anything else is
// counted as undecodable by the broker and not shown.

// DefaultProgressWait bounds the wait for the progress subscription
// before Exec is called.
const DefaultProgressWait = 2 * time.Second

// progressSubscribeTimeout bounds one progress subscription (it goes on
// in the background past the progress wait).
const progressSubscribeTimeout = 10 * time.Second

// progressDrain bounds the wait for the progress already received when
// Exec returns.
const progressDrain = time.Second

// progressSlowFor is how long, after a progress subscription failed or
// was not made within the progress wait, the next ones are not waited for.
const progressSlowFor = 30 * time.Second

// maxProgressPending bounds the progress messages one call queues while
// the bot is busy showing earlier ones (the bot folds them anyway).
const maxProgressPending = 64

// Subscriber is what the watcher needs of a broker to follow the progress
// of the commands it runs; a framework/broker.Broker is one.
type Subscriber interface {
	Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error)
}

// WithBroker makes the watcher follow the progress of the command services
// it runs on b, the broker the services publish on (the bot's service's).
// Without one, no progress is followed.
func WithBroker(b Subscriber) Option { return func(o *options) { o.broker = b } }

// WithProgressWait bounds the wait for the progress subscription before
// Exec is called (default DefaultProgressWait).
func WithProgressWait(d time.Duration) Option { return func(o *options) { o.progressWait = d } }

// followProgress subscribes to a new progress topic for one call of
// service, showing what comes with report, and returns ctx with the topic
// in its metadata and the function that ends the subscription. Failures
// are logged: the command runs without progress.
func (w *Watcher) followProgress(ctx context.Context, service string, report command.ProgressFunc) (context.Context, func()) {
	var buf [16]byte
	rand.Read(buf[:]) // never fails (crypto/rand)
	topic := commandsvc.ProgressTopicPrefix + hex.EncodeToString(buf[:])
	log := w.opts.logger.With("service", service)

	var over atomic.Bool // Exec returned: show nothing more
	handle := func(ctx context.Context, e *broker.Event) error {
		lines, err := progressLines(e)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if over.Load() {
				return nil
			}
			report(l)
		}
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), progressSubscribeTimeout)
	subscribed := make(chan broker.Subscriber, 1)
	go func() {
		defer close(subscribed)
		sub, err := w.opts.broker.Subscribe(sctx, topic, handle, broker.WithMaxPending(maxProgressPending))
		if err != nil {
			w.slowUntil.Store(time.Now().Add(progressSlowFor).UnixNano())
			if sctx.Err() == nil {
				log.Warn("following a command's progress failed; it runs without", "err", err)
			}
			return
		}
		w.slowUntil.Store(0)
		subscribed <- sub
	}()
	wait := w.opts.progressWait
	if time.Now().UnixNano() < w.slowUntil.Load() {
		wait = 0 // the broker is down or slow: do not hold every command up
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	var sub broker.Subscriber
	select {
	case sub = <-subscribed:
	case <-t.C:
		w.slowUntil.Store(time.Now().Add(progressSlowFor).UnixNano())
		if wait > 0 {
			log.Warn("the progress subscription is slow; running the command without waiting for it (and the next ones, for a while)",
				"waited", wait, "for", progressSlowFor)
		}
	case <-ctx.Done():
	}
	stop := func() {
		cancel()
		if sub != nil {
			drain(sub, progressDrain)
		}
		over.Store(true)
		go unsubscribe(log, sub, subscribed)
	}
	return metadata.MergeContext(ctx, metadata.Metadata{commandsvc.MetaProgress: topic}), stop
}

// drain waits, up to d, until sub has handled every message it received:
// the lines published before Exec returned and already here go before the
// reply. (A line still on its way when Exec's answer came is not waited
// for: the broker and the RPC are two roads.)
func drain(sub broker.Subscriber, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		s := sub.Stats()
		if s.Pending == 0 && s.Received == s.Handled+s.Failed+s.Panicked+s.Undecodable+s.Dropped {
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// unsubscribe ends the progress subscription sub, or the one still being
// made (it comes on late, or not at all).
func unsubscribe(log *slog.Logger, sub broker.Subscriber, late <-chan broker.Subscriber) {
	if sub == nil {
		sub = <-late // its context is cancelled: it ends soon
	}
	if sub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Unsubscribe(ctx); err != nil {
		log.Debug("ending a progress subscription", "topic", sub.Topic(), "err", err)
	}
}

// progressLines decodes a progress message into the lines to show.
func progressLines(e *broker.Event) ([]string, error) {
	ct, _, err := mime.ParseMediaType(e.Header["Content-Type"])
	if err != nil && e.Header["Content-Type"] != "" {
		return nil, fmt.Errorf("%w: content type %q", broker.ErrUndecodable, e.Header["Content-Type"])
	}
	var text string
	var n pb.Notification
	switch ct {
	case "application/protobuf", "application/x-protobuf", "application/octet-stream":
		if err := proto.Unmarshal(e.Body, &n); err != nil {
			return nil, fmt.Errorf("%w: not a Notification: %v", broker.ErrUndecodable, err)
		}
		text = notificationText(&n)
	case "", "application/json":
		var s string
		if json.Unmarshal(e.Body, &s) == nil {
			text = s
			break
		}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(e.Body, &n); err != nil {
			return nil, fmt.Errorf("%w: neither a Notification nor a JSON string: %v", broker.ErrUndecodable, err)
		}
		text = notificationText(&n)
	case "text/plain":
		text = string(e.Body)
	default:
		return nil, fmt.Errorf("%w: content type %q (want a Notification, a JSON string or text/plain)", broker.ErrUndecodable, ct)
	}
	var lines []string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// notificationText is a notification's title and text, as progress.
func notificationText(n *pb.Notification) string {
	switch {
	case n.GetTitle() == "":
		return n.GetText()
	case n.GetText() == "":
		return n.GetTitle()
	}
	return n.GetTitle() + ": " + n.GetText()
}

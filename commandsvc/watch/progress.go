package watch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/internal/backoff"
	pb "github.com/microbot/microbot/proto/bot"
)

// Outcomes of a progress message, told to the progress hook.
const (
	// ProgressShown: for a running command, whose thread shows it (the
	// bot folds what comes faster than it shows).
	ProgressShown = "shown"
	// ProgressDropped: for a command that is over (published after its
	// reply), or for no command this watcher runs.
	ProgressDropped = "dropped"
	// ProgressUndecodable: not a message of progress (see the package
	// documentation).
	ProgressUndecodable = "undecodable"
)

// progressSubscribeTimeout bounds one attempt to subscribe to the
// progress topic.
const progressSubscribeTimeout = 10 * time.Second

// progressDrain bounds the wait, once Exec returned, for the progress
// messages already received.
const progressDrain = time.Second

// maxProgressPending bounds the progress messages queued while the bot is
// busy showing earlier ones (the bot folds them anyway).
const maxProgressPending = 256

// Subscriber is what the watcher needs of a broker to follow the progress
// of the commands it runs; a framework/broker.Broker is one.
type Subscriber interface {
	Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error)
}

// WithBroker makes the watcher follow the progress of the command services
// it runs on b, the broker the services publish on (the bot's service's).
// Without one, no progress is followed.
func WithBroker(b Subscriber) Option { return func(o *options) { o.broker = b } }

// WithProgressHook sets a function told the outcome of every progress
// message (ProgressShown, ProgressDropped, ProgressUndecodable), for
// metrics. It runs on the subscription's goroutine: it must be quick.
func WithProgressHook(f func(outcome string)) Option {
	return func(o *options) { o.progressHook = f }
}

// progress is the watcher's one progress subscription and the runs it
// serves.
type progress struct {
	b     Subscriber
	topic string
	hook  func(outcome string)

	mu   sync.Mutex
	sub  broker.Subscriber               // nil until subscribed, and once Run ends
	runs map[string]command.ProgressFunc // by run id: the commands running now
}

func newProgress(b Subscriber, hook func(string)) *progress {
	if hook == nil {
		hook = func(string) {}
	}
	return &progress{b: b, topic: commandsvc.ProgressTopicPrefix + randomID(), hook: hook, runs: map[string]command.ProgressFunc{}}
}

// randomID returns 128 random bits in hex.
func randomID() string {
	var buf [16]byte
	rand.Read(buf[:]) // never fails (crypto/rand)
	return hex.EncodeToString(buf[:])
}

// ProgressTopic returns the topic the watcher follows the progress of
// commands on, once it is subscribed, or "" (no broker, not subscribed
// yet, or Run has ended).
func (w *Watcher) ProgressTopic() string {
	if w.progress == nil {
		return ""
	}
	w.progress.mu.Lock()
	defer w.progress.mu.Unlock()
	if w.progress.sub == nil {
		return ""
	}
	return w.progress.topic
}

// keep subscribes to the progress topic, with backoff until it succeeds,
// and ends the subscription when ctx ends.
func (p *progress) keep(ctx context.Context, log *slog.Logger) {
	log = log.With("topic", p.topic)
	bo := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	var sub broker.Subscriber
	for {
		sctx, cancel := context.WithTimeout(ctx, progressSubscribeTimeout)
		s, err := p.b.Subscribe(sctx, p.topic, p.handle, broker.WithMaxPending(maxProgressPending))
		cancel()
		if err == nil {
			sub = s
			break
		}
		if ctx.Err() != nil {
			return
		}
		d := bo.Next()
		if bo.Failures() == 1 {
			log.Warn("following the progress of commands failed; they run without it until it works", "err", err)
		}
		log.Debug("subscribing to the progress topic failed", "err", err, "retry_in", d.Round(time.Millisecond))
		if !backoff.Sleep(ctx, d) {
			return
		}
	}
	p.mu.Lock()
	p.sub = sub
	p.mu.Unlock()
	log.Info("following the progress of commands")
	<-ctx.Done()
	p.mu.Lock()
	p.sub = nil // the next commands get no topic
	p.mu.Unlock()
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := sub.Unsubscribe(uctx); err != nil {
		log.Debug("ending the progress subscription", "err", err)
	}
}

// start begins a run of a command whose progress report shows: it returns
// ctx with the topic and a new run id in its metadata, and the function
// that ends the run once Exec has returned. Without a subscription, ctx is
// returned as it is.
func (p *progress) start(ctx context.Context, report command.ProgressFunc) (context.Context, func()) {
	p.mu.Lock()
	sub := p.sub
	if sub == nil {
		p.mu.Unlock()
		return ctx, func() {}
	}
	id := randomID()
	p.runs[id] = report
	p.mu.Unlock()
	ctx = metadata.MergeContext(ctx, metadata.Metadata{commandsvc.MetaProgress: p.topic, commandsvc.MetaProgressRun: id})
	return ctx, func() {
		deadline := time.Now().Add(progressDrain)
		p.flush(deadline)
		drain(sub, deadline)
		p.mu.Lock()
		delete(p.runs, id)
		p.mu.Unlock()
	}
}

// handle is the subscription's handler: it shows a message in the
// progress of the run it names.
func (p *progress) handle(_ context.Context, e *broker.Event) error {
	lines, err := progressLines(e)
	if err != nil {
		p.hook(ProgressUndecodable)
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	report := p.runs[broker.HeaderValue(e.Header, commandsvc.MetaProgressRun)]
	if report == nil {
		p.hook(ProgressDropped)
		return nil
	}
	for _, l := range lines {
		report(l) // never blocks (command.ProgressFunc)
	}
	p.hook(ProgressShown)
	return nil
}

// flush, when the broker can (broker.Flusher: nats, http, memory),
// waits until it has received every message its server sent it so far
// (bounded by deadline): once Exec has returned, every line the service
// flushed before (commandsvc.Progress does) is then counted by the
// subscription, for drain to wait for. Without it (mqtt), or when it fails
// (the connection is down: lines cannot come anyway), drain waits for what
// is here.
func (p *progress) flush(deadline time.Time) {
	f, ok := p.b.(broker.Flusher)
	if !ok {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_ = f.Flush(ctx)
}

// drain waits, until deadline, until sub has handled every message it had
// received when drain was called: after flush, every line published and
// flushed before Exec returned (see the package documentation), which so
// goes before the reply.
func drain(sub broker.Subscriber, deadline time.Time) {
	received := sub.Stats().Received
	for {
		s := sub.Stats()
		done := s.Handled + s.Failed + s.Panicked + s.Undecodable + s.Dropped
		// Or every message the subscription has is handled: a count of
		// received that ran a moment ahead (nats's counts a message just
		// handled as pending until nats.go takes the next) is not waited
		// for.
		if done >= received || s.Pending == 0 && done >= s.Received || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// progressLines decodes a progress message into the lines to show.
func progressLines(e *broker.Event) ([]string, error) {
	var text string
	d := pb.Decode(e.Header, e.Body)
	switch d.Kind {
	case pb.KindNotification:
		text = notificationText(d.Notification)
	case pb.KindText:
		text = d.Text
	case pb.KindJSON:
		var b bytes.Buffer
		if err := json.Compact(&b, e.Body); err != nil {
			return nil, fmt.Errorf("%w: %v", broker.ErrUndecodable, err)
		}
		text = b.String()
	case pb.KindProtobuf:
		var n pb.Notification
		if d.Type != "" || proto.Unmarshal(e.Body, &n) != nil {
			return nil, fmt.Errorf("%w: protobuf of type %q, not a Notification", broker.ErrUndecodable, d.Type)
		}
		text = notificationText(&n)
	case pb.KindUndecodable:
		return nil, fmt.Errorf("%w: not a Notification: %v", broker.ErrUndecodable, d.Err)
	default:
		return nil, fmt.Errorf("%w: content type %q (want a Notification, JSON or text)", broker.ErrUndecodable, d.MediaType)
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

package commandsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	pb "github.com/microbot/microbot/proto/bot"
)

// MetaProgress is the request metadata key of the topic the bot follows
// for the progress of the commands it runs.
const MetaProgress = "Micro-Progress-Topic"

// MetaProgressRun is the request metadata key, and the message header, of
// the run id of one Exec call: the bot shows a progress message in the
// thread of the call its run id names.
const MetaProgressRun = "Micro-Progress-Run"

// ProgressTopicPrefix starts every progress topic; Progress publishes to
// no other.
const ProgressTopicPrefix = "go.micro.bot.progress."

// Bounds of Progress.
const (
	// ProgressTimeout bounds one Progress call (less if ctx ends sooner).
	ProgressTimeout = 5 * time.Second
	// MaxProgressLine is the most bytes of one line Progress publishes; the
	// bot shows less (bot.MaxProgressLine).
	MaxProgressLine = 1024
)

// ErrNoPublisher is returned (wrapped) by Progress when the context of
// Exec has no client to publish with: the handler was made with Handler
// without WithPublisher.
var ErrNoPublisher = errors.New("commandsvc: no client to publish progress with")

// Publisher publishes messages on the broker; the framework's
// *client.Client is one. When it also has the method Flush (see flusher),
// as *client.Client has, Progress flushes what it published.
type Publisher interface {
	Publish(ctx context.Context, topic string, msg any, opts ...client.CallOption) error
}

// flusher is a Publisher that can confirm what it published went through
// (*client.Client: client.Flush, which returns an error wrapping
// errors.ErrUnsupported when its broker cannot).
type flusher interface {
	Flush(ctx context.Context) error
}

type publisherKey struct{}

// Progress tells the person who ran the command how it goes: line shows in
// the command's thread while Exec runs (see the package documentation). ctx is the context
// Exec was given (or one made from it). When nobody follows the command's
// progress (the bot gave no topic or run: a one-shot run, a bot without a
// broker) it does nothing and returns nil.
//
// Progress returns once the line is on its way in order: published, and,
// when the service's broker can tell (nats: a round trip to the server;
// http: Publish delivers already), flushed, so that a line reported before
// Exec returns shows before the reply (see the package documentation for
// the guarantee per broker). An error says the line could not be published,
// or that it was published but its flush failed (the connection broke: it
// may show, or not); the command may ignore it and go on. The call takes at
// most ProgressTimeout.
func Progress(ctx context.Context, line string) error {
	md, _ := metadata.FromContext(ctx)
	topic, _ := md.Get(MetaProgress)
	run, _ := md.Get(MetaProgressRun)
	if topic == "" || run == "" {
		return nil
	}
	if !strings.HasPrefix(topic, ProgressTopicPrefix) {
		return fmt.Errorf("commandsvc: progress topic %q does not start with %s: not publishing to it", topic, ProgressTopicPrefix)
	}
	pub, _ := ctx.Value(publisherKey{}).(Publisher)
	if pub == nil {
		return ErrNoPublisher
	}
	if len(line) > MaxProgressLine {
		line = strings.ToValidUTF8(line[:MaxProgressLine], "")
	}
	ctx, cancel := context.WithTimeout(ctx, ProgressTimeout)
	defer cancel()
	ctx = metadata.MergeContext(ctx, metadata.Metadata{pb.HeaderMessageType: pb.NotificationType, MetaProgressRun: run})
	if err := pub.Publish(ctx, topic, &pb.Notification{Text: line}, client.WithContentType("application/protobuf")); err != nil {
		return fmt.Errorf("commandsvc: progress: %w", err)
	}
	if f, ok := pub.(flusher); ok {
		if err := f.Flush(ctx); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("commandsvc: progress: the line was published but not confirmed (it may show, or not): %w", err)
		}
	}
	return nil
}

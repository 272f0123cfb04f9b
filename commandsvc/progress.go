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

// Progress of a long command. Command.Exec is one call, answered once; but
// while it runs, the command can tell the person who asked how it goes:
//
//	commandsvc.Progress(ctx, "step 2/5: migrating")
//
// The bot, when it can show progress (a chat message, not a one-shot
// `microbot exec`), follows one topic of its own on the broker
// (ProgressTopicPrefix and 128 random bits, one per bot process), and
// gives every Exec call that topic and a run id made up anew for the call
// (128 random bits) in the request's metadata (MetaProgress,
// MetaProgressRun). Progress publishes the line to the topic, with the run
// id in the message header MetaProgressRun, as a proto/bot Notification
// (its text) through the service's client, so on the service's broker:
// the service and the bot must share one (--broker, --broker_address; the
// default, http, needs only the shared registry). The bot shows the line
// in the thread of the command that run is, before its reply. A line
// published once Exec has returned, or naming a run the bot does not know,
// shows nowhere: knowing the bot's topic is not enough to write into
// another command's thread.
//
// A command service written with go-micro gets the same from its client:
// publish a Notification to the topic with the Exec context, whose
// metadata (the run id with it) go-micro sends as the message's headers.

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
// *client.Client is one.
type Publisher interface {
	Publish(ctx context.Context, topic string, msg any, opts ...client.CallOption) error
}

type publisherKey struct{}

// Progress tells the person who ran the command how it goes: line shows in
// the command's thread while Exec runs (see above). ctx is the context
// Exec was given (or one made from it). When nobody follows the command's
// progress (the bot gave no topic or run: a one-shot run, a bot without a
// broker) it does nothing and returns nil. An error says the line could not be published;
// the command may ignore it and go on. The call takes at most
// ProgressTimeout.
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
	return nil
}

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
// `microbot exec`), gives every Exec call a topic of its own, made up anew
// for the call (ProgressTopicPrefix and 128 random bits), in the request's
// metadata (MetaProgress), and follows it on the broker while the call
// runs. Progress publishes the line there, as a proto/bot Notification
// (its text) through the service's client, so on the service's broker:
// the service and the bot must share one (--broker, --broker_address; the
// default, http, needs only the shared registry). The lines show in the
// command's thread before its reply (see package bot). What is published
// once Exec has returned, or to a topic the bot did not give, shows
// nowhere.

// MetaProgress is the request metadata key of the topic the bot follows
// for the progress of one Exec call.
const MetaProgress = "Micro-Progress-Topic"

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
// progress (the bot gave no topic: a one-shot run, an older bot) it does
// nothing and returns nil. An error says the line could not be published;
// the command may ignore it and go on. The call takes at most
// ProgressTimeout.
func Progress(ctx context.Context, line string) error {
	md, _ := metadata.FromContext(ctx)
	topic, _ := md.Get(MetaProgress)
	if topic == "" {
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
	ctx = metadata.MergeContext(ctx, metadata.Metadata{pb.HeaderMessageType: pb.NotificationType})
	if err := pub.Publish(ctx, topic, &pb.Notification{Text: line}, client.WithContentType("application/protobuf")); err != nil {
		return fmt.Errorf("commandsvc: progress: %w", err)
	}
	return nil
}

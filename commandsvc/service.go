// Package commandsvc helps write a command service: a service of the
// framework, registered under the bot's namespace (go.micro.bot.<command>),
// that serves proto/bot's Command (Help, Exec) and so becomes the chat
// command <command> while it runs. It links only the framework and
// proto/bot; the bot's side, which finds these services and runs them, is
// package commandsvc/watch.
//
// [Run] serves a command in a few lines:
//
//	func main() {
//		err := commandsvc.Run(context.Background(), "go.micro.bot.hello", "hello [name]", "Greets someone",
//			func(ctx context.Context, args []string) (string, error) {
//				return "hello " + strings.Join(args[1:], " "), nil
//			})
//		if err != nil {
//			log.Fatal(err)
//		}
//	}
//
// The bot calls Command.Exec with every word typed, the command word
// included (["hello", "Ann"]), under its command timeout, and never retries
// it: a command may have side effects. A service can restrict itself with
// its registry metadata (bot.group, bot.confirm: see docs/access.md), set
// with framework.WithMetadata or --server_metadata.
//
// # Progress
//
// Command.Exec is one call, answered once; but while it runs, the command
// can tell the person who asked how it goes, one line at a time:
//
//	commandsvc.Progress(ctx, "step 2/5: migrating")
//
// The bot, when it can show progress (a chat message, not a one-shot
// `microbot exec`), follows one topic of its own on the broker
// ([ProgressTopicPrefix] and 128 random bits, one per bot process,
// subscribed to once at start), and gives every Exec call that topic and
// a run id made up anew for the call (128 random bits) in the request's
// metadata ([MetaProgress], [MetaProgressRun]). [Progress] publishes the
// line to the topic, with the run id in the message header
// [MetaProgressRun], as a proto/bot Notification (its text) through the
// service's client, so on the service's broker: the service and the bot
// must share one (--broker, --broker_address; the default, http, needs
// only the shared registry). The bot shows the line in the thread of the
// command that run is, before its reply. A line published once Exec has
// returned, or naming a run the bot does not know, shows nowhere: knowing
// the bot's topic is not enough to write into another command's thread.
//
// Which lines show before the reply, per broker (the service's and the
// bot's, which are one kind):
//
//   - http and memory: every line Progress published before Exec returned.
//     Publish returns once the bot's inbox has the line.
//   - nats: every line Progress published before Exec returned, when the
//     service and the bot use one server. The line and Exec's answer take
//     two roads (service → server → bot, and the RPC), so Progress returns
//     only once the server has routed the line to the bot's connection (a
//     round trip to the server after publishing: tens of µs on loopback),
//     and the bot, when Exec returns, makes a round trip on its own
//     connection before it counts the lines it has to show: a line the
//     server sent before that is then among them. (In a NATS cluster where
//     they use two servers, the route between them is a third road, not
//     waited for: the last line may come too late and not show.)
//   - mqtt: a line whose Progress returned is at the server (QoS 1's
//     acknowledgement), but MQTT 3.1.1 has no way to know it was handed on
//     to the bot: the lines shown are those that reached the bot by the
//     time Exec's answer did (most of them; the last one may not).
//
// Progress returns an error when the line was published but its round trip
// failed (the connection broke): it may show, or not.
//
// A command service written with go-micro gets the same from its client:
// publish a Notification to the topic with the Exec context, whose
// metadata (the run id with it) go-micro sends as the message's headers.
// With go-micro's http broker, that publish returns once the bot has the
// line, as above; go-micro's nats broker only hands it to its connection,
// which it cannot be made to flush from here: the last line published
// just before Exec returns may come after the answer, and not show.
package commandsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/microbot/microbot/framework"
	pb "github.com/microbot/microbot/proto/bot"
)

// DefaultNamespace is the bot's default command namespace: the service
// <DefaultNamespace>.<command> is the command <command>.
const DefaultNamespace = "go.micro.bot"

// ExecFunc runs a command. args are the words typed, the command word first
// (["deploy", "web", "v2"]). The string returned is the reply; an error is
// shown to the user as the command's error.
type ExecFunc func(ctx context.Context, args []string) (string, error)

// HandlerOption configures a Handler.
type HandlerOption func(*handler)

// WithPublisher gives the handler the client [Progress] publishes with
// (the service's: framework.Service.Client()). Run does it.
func WithPublisher(p Publisher) HandlerOption { return func(h *handler) { h.pub = p } }

// Handler returns a Command handler (proto/bot) answering Help with usage
// and description and Exec with exec.
func Handler(usage, description string, exec ExecFunc, opts ...HandlerOption) pb.CommandHandler {
	h := &handler{usage: usage, description: description, exec: exec}
	for _, o := range opts {
		o(h)
	}
	return h
}

type handler struct {
	usage, description string
	exec               ExecFunc
	pub                Publisher
}

func (h *handler) Help(ctx context.Context, req *pb.HelpRequest, rsp *pb.HelpResponse) error {
	rsp.Usage, rsp.Description = h.usage, h.description
	return nil
}

func (h *handler) Exec(ctx context.Context, req *pb.ExecRequest, rsp *pb.ExecResponse) error {
	if h.pub != nil {
		ctx = context.WithValue(ctx, publisherKey{}, h.pub)
	}
	out, err := h.exec(ctx, req.GetArgs())
	if err != nil {
		rsp.Error = err.Error()
		return nil
	}
	rsp.Result = []byte(out)
	return nil
}

// Run serves a command as the service name (go.micro.bot.<command>): it
// builds a framework service, reading the command line (the framework's
// flags: --registry, --registry_address, ...), serves Command.Help and
// Command.Exec, and runs until SIGINT, SIGTERM or the end of ctx. opts are
// applied before the command line, which overrides them. After --help it
// returns nil at once.
func Run(ctx context.Context, name, usage, description string, exec ExecFunc, opts ...framework.Option) error {
	if !strings.Contains(name, ".") {
		return fmt.Errorf("commandsvc: %q is not a service name (want %s.<command>)", name, DefaultNamespace)
	}
	svc, err := framework.NewService(append([]framework.Option{framework.WithName(name), framework.WithArgs(os.Args)}, opts...)...)
	if errors.Is(err, framework.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := pb.RegisterCommandHandler(svc.Server(), Handler(usage, description, exec, WithPublisher(svc.Client()))); err != nil {
		return err
	}
	return svc.Run(ctx)
}

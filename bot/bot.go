// Package bot is the bot's main loop: it reads the events of every input,
// matches each line to a command of the table, runs it, and sends the reply
// to the room and thread the line came from.
//
// # Dispatch
//
// Each input has one receiving loop. Events are handled concurrently, at
// most MaxConcurrent at a time per input (the loop stops reading while all
// slots are busy). An event that is not Addressed to the bot (room
// chatter) is ignored without a word; every addressed one gets exactly one
// reply unless a middleware decides otherwise.
//
// Handling an event goes through a chain of [Middleware] around the final
// [Handler], which runs the command under the command timeout and turns its
// error, a timeout or a panic into an error reply. Cross-cutting concerns
// (access policy, confirmation, audit log, metrics) are middlewares given
// with [WithMiddleware]; they see the [command.Request]: the event, its
// words, and the matched command (nil when the line matched none).
//
// # Progress
//
// A command run for a chat message may report its progress while it runs
// (command.ProgressFunc, in its context): the lines are shown in the
// message's room and thread before the reply, paced and folded — on Slack
// in one message edited in place (input.Editor), elsewhere as lines. See
// [DefaultProgressInterval].
//
// # Identity of the caller
//
// The context a command runs in carries the caller as RPC metadata
// (package framework/metadata), so every call a command makes tells the
// service who asked:
//
//	Micro-Input      the input's name ("slack", "xmpp", "shell", "exec")
//	Micro-User-Id    the sender's immutable id (Event.UserID)
//	Micro-User-Name  the sender's display name (Event.UserName)
//	Micro-Room       the room or channel (Event.Room)
//
// # Inputs that fail
//
// When Stream or Recv fails, the input is opened again after a capped
// exponential backoff with jitter (1 s doubling up to 60 s by default). An
// error that wraps [input.ErrPermanent] (bad credentials, a certificate
// refused) is retried at the cap only, so it never turns into a storm.
// The backoff starts over only once a connection has stayed up for
// [StableAfter] (or the cap, if that is shorter): a connection that drops
// soon after opening counts as one more failure even if it delivered
// events, so a socket that keeps dropping right after it opens is opened
// ever more slowly, never in a loop; and as each cycle then lasts at least
// that long, starting over never reconnects faster than once per
// StableAfter (or cap).
// Recv returning io.EOF ends the input for good: its in-flight commands
// finish and reply, then its loop ends; [Bot.Run] returns when every input
// has ended.
//
// # Instances side by side
//
// Several instances of a bot may serve the same chat accounts (high
// availability). An input that one instance at a time may serve, such as
// an XMPP account's presence in its rooms, is wrapped in an [Exclusive]:
// its Stream waits for a lock shared by the instances ([Locker]), and a
// lost lock ends the connection with [ErrLockLost], which is no failure:
// the loop waits for the lock again.
//
// # Stopping
//
// When the context of [Bot.Run] is cancelled the bot stops reading, waits
// for the running commands (up to the drain timeout), delivers their
// replies, and returns.
package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/backoff"
)

// Metadata keys carrying the caller's identity on every RPC a command makes.
const (
	MetaInput    = "Micro-Input"
	MetaUserID   = "Micro-User-Id"
	MetaUserName = "Micro-User-Name"
	MetaRoom     = "Micro-Room"
)

// Defaults of a Bot.
const (
	DefaultMaxConcurrent  = 16
	DefaultCommandTimeout = 10 * time.Second
	DefaultSendTimeout    = 10 * time.Second
	DefaultMaxTextSize    = 64 << 10
	DefaultBackoffMin     = time.Second
	DefaultBackoffMax     = time.Minute
	// StableAfter is how long a connection must stay up before the backoff
	// starts over (the backoff cap, if that is shorter).
	StableAfter = 30 * time.Second
)

// Handler handles one request and returns the reply, or nil for none.
type Handler func(ctx context.Context, req *command.Request) *input.Reply

// Middleware wraps a Handler to add behaviour before or after it, or to
// answer instead of it.
type Middleware func(Handler) Handler

// Chain returns h wrapped in mw; the first middleware is the outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Skipper is implemented by connections that must hear about an event the
// bot finished without a reply (the console keeps replies in the
// order of the lines, so it waits for each line's reply or Skip).
type Skipper interface {
	Skip(ev *input.Event)
}

// Reconnector is implemented by connections that reconnect by themselves
// (XMPP): their breaks and reconnections never reach the bot's loop, which
// sees only Stream and Recv. The bot gives such a connection a function to
// report them and passes each report on to the input hook (so metrics
// count them): report(false, err) when the link breaks or fails to open
// again, report(true, nil) when it is up again.
type Reconnector interface {
	ReportConnection(report func(up bool, err error))
}

// Bot reads events from inputs and answers them with the command table.
type Bot struct {
	table   *command.Table
	opts    options
	handler Handler
}

type options struct {
	inputs         []input.Input
	middleware     []Middleware
	maxConcurrent  int
	commandTimeout time.Duration
	sendTimeout    time.Duration
	drainTimeout   time.Duration
	maxTextSize    int
	backoffMin     time.Duration
	backoffMax     time.Duration
	logger         *slog.Logger
	inputHook      func(input string, up bool, err error)

	progressInterval time.Duration
}

// Option configures a Bot.
type Option func(*options)

// WithInputs sets the inputs the bot listens on (initialised already).
func WithInputs(in ...input.Input) Option {
	return func(o *options) { o.inputs = append(o.inputs, in...) }
}

// WithMiddleware adds middlewares around the command handler; the first
// given is the outermost.
func WithMiddleware(mw ...Middleware) Option {
	return func(o *options) { o.middleware = append(o.middleware, mw...) }
}

// WithMaxConcurrent bounds how many events of one input are handled at once.
func WithMaxConcurrent(n int) Option { return func(o *options) { o.maxConcurrent = n } }

// WithCommandTimeout bounds how long one command may run.
func WithCommandTimeout(d time.Duration) Option { return func(o *options) { o.commandTimeout = d } }

// WithSendTimeout bounds how long sending one reply may take.
func WithSendTimeout(d time.Duration) Option { return func(o *options) { o.sendTimeout = d } }

// WithDrainTimeout bounds how long the bot waits for running commands when
// it stops (default: command timeout + send timeout + 5 s).
func WithDrainTimeout(d time.Duration) Option { return func(o *options) { o.drainTimeout = d } }

// WithMaxTextSize sets the longest message, in bytes, the bot reads; longer
// ones get an error reply.
func WithMaxTextSize(n int) Option { return func(o *options) { o.maxTextSize = n } }

// WithBackoff sets the first and the longest wait before an input that
// failed is opened again. The waits start over from min once a connection
// has stayed up for StableAfter or max, whichever is shorter.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.backoffMin, o.backoffMax = min, max }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithProgressInterval sets the least time between two messages (or edits)
// showing one command's progress (default DefaultProgressInterval).
func WithProgressInterval(d time.Duration) Option {
	return func(o *options) { o.progressInterval = d }
}

// WithInputHook sets a function told about the connection of every input
// (for metrics): up with a nil error each time its stream opens, down with
// the error each time opening fails, the connection breaks, or the input
// ends (io.EOF). It is not called when the bot stops. It runs on the
// input's loop, so it must be quick.
func WithInputHook(f func(input string, up bool, err error)) Option {
	return func(o *options) { o.inputHook = f }
}

// New returns a bot answering with table.
func New(table *command.Table, opts ...Option) *Bot {
	o := options{
		maxConcurrent:  DefaultMaxConcurrent,
		commandTimeout: DefaultCommandTimeout,
		sendTimeout:    DefaultSendTimeout,
		maxTextSize:    DefaultMaxTextSize,
		backoffMin:     DefaultBackoffMin,
		backoffMax:     DefaultBackoffMax,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	o.maxConcurrent = max(o.maxConcurrent, 1)
	if o.commandTimeout <= 0 {
		o.commandTimeout = DefaultCommandTimeout
	}
	if o.sendTimeout <= 0 {
		o.sendTimeout = DefaultSendTimeout
	}
	if o.drainTimeout <= 0 {
		o.drainTimeout = o.commandTimeout + o.sendTimeout + 5*time.Second
	}
	if o.backoffMin <= 0 {
		o.backoffMin = DefaultBackoffMin
	}
	if o.progressInterval <= 0 {
		o.progressInterval = DefaultProgressInterval
	}
	o.backoffMax = max(o.backoffMax, o.backoffMin)
	b := &Bot{table: table, opts: o}
	b.handler = b.recoverer(Chain(b.execute, o.middleware...))
	return b
}

// Handle answers one event: it returns the reply, or nil when there is none
// (the event was not addressed to the bot, or a middleware kept quiet). It
// is what the receiving loops call for each event, and what a one-shot run
// calls directly.
func (b *Bot) Handle(ctx context.Context, ev *input.Event) *input.Reply {
	if !ev.Addressed {
		return nil
	}
	if len(ev.Text) > b.opts.maxTextSize {
		return command.Errorf("message too long (%d bytes; the limit is %d)", len(ev.Text), b.opts.maxTextSize)
	}
	req := b.table.Match(ev.Text)
	req.Event = ev
	return b.handler(WithCaller(ctx, ev), req)
}

// WithCaller returns ctx carrying ev's sender as RPC metadata (the Meta*
// keys), merged into any metadata ctx has.
func WithCaller(ctx context.Context, ev *input.Event) context.Context {
	return metadata.MergeContext(ctx, metadata.Metadata{
		MetaInput:    headerSafe(ev.Input),
		MetaUserID:   headerSafe(ev.UserID),
		MetaUserName: headerSafe(ev.UserName),
		MetaRoom:     headerSafe(ev.Room),
	})
}

// headerSafe drops control characters, which cannot travel in a header.
func headerSafe(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// recoverer turns a panic anywhere in the chain into an error reply.
func (b *Bot) recoverer(next Handler) Handler {
	return func(ctx context.Context, req *command.Request) (rep *input.Reply) {
		defer func() {
			if p := recover(); p != nil {
				rep = b.panicked(req, p)
			}
		}()
		return next(ctx, req)
	}
}

func (b *Bot) panicked(req *command.Request, p any) *input.Reply {
	name := ""
	if req.Command != nil {
		name = req.Command.Name
	}
	b.opts.logger.Error("panic handling a message", "command", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return command.Errorf("internal error (it was logged)")
}

// execute is the final handler: it runs the matched command under the
// command timeout.
func (b *Bot) execute(ctx context.Context, req *command.Request) *input.Reply {
	if req.Command == nil {
		return b.table.Execute(ctx, req)
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.commandTimeout)
	defer cancel()
	done := make(chan *input.Reply, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- b.panicked(req, p)
			}
		}()
		done <- b.table.Execute(ctx, req)
	}()
	var rep *input.Reply
	select {
	case rep = <-done:
	case <-ctx.Done():
		// The command ignores its context; answer anyway and let it finish
		// on its own.
	}
	if err := ctx.Err(); err != nil && (rep == nil || rep.Error) {
		if errors.Is(err, context.DeadlineExceeded) {
			return command.Errorf("%s timed out after %s", req.Command.Name, b.opts.commandTimeout)
		}
		return command.Errorf("%s cancelled: the bot is stopping", req.Command.Name)
	}
	return rep
}

// Run listens on every input until each has ended (io.EOF) or ctx is
// cancelled, then waits for the running commands and returns. With no
// input it waits for ctx.
func (b *Bot) Run(ctx context.Context) error {
	if len(b.opts.inputs) == 0 {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	for _, in := range b.opts.inputs {
		wg.Go(func() { b.serve(ctx, in) })
	}
	wg.Wait()
	return nil
}

// serve runs the receiving loop of one input, opening it again when it
// fails.
func (b *Bot) serve(ctx context.Context, in input.Input) {
	log := b.opts.logger.With("input", in.String())
	hook := b.opts.inputHook
	if hook == nil {
		hook = func(string, bool, error) {}
	}
	// Commands and replies outlive ctx by up to the drain timeout.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var inflight sync.WaitGroup
	defer func() {
		if !waitTimeout(&inflight, b.opts.drainTimeout) {
			log.Warn("stopping with commands still running", "drain_timeout", b.opts.drainTimeout)
		}
	}()
	sem := make(chan struct{}, b.opts.maxConcurrent)
	bo := backoff.Backoff{Min: b.opts.backoffMin, Max: b.opts.backoffMax}
	for ctx.Err() == nil {
		conn, err := in.Stream(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			hook(in.String(), false, err)
			if !b.retry(ctx, log, &bo, "opening the input failed", err) {
				return
			}
			continue
		}
		log.Info("input connected")
		hook(in.String(), true, nil)
		if r, ok := conn.(Reconnector); ok {
			r.ReportConnection(func(up bool, err error) { hook(in.String(), up, err) })
		}
		opened := time.Now()
		var connWG sync.WaitGroup
		err = b.receive(ctx, work, log, conn, sem, &inflight, &connWG)
		go func() { // close once its replies are out
			connWG.Wait()
			if cerr := conn.Close(); cerr != nil {
				log.Debug("closing the input", "err", cerr)
			}
		}()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, io.EOF):
			log.Info("input ended")
			hook(in.String(), false, err)
			return
		case errors.Is(err, ErrLockLost):
			// Another instance takes over: no failure of the input. Stream
			// waits for the lock again.
			hook(in.String(), false, nil)
			bo.Reset()
			continue
		}
		hook(in.String(), false, err)
		if time.Since(opened) >= min(StableAfter, b.opts.backoffMax) {
			bo.Reset() // it was a healthy connection: start over
		}
		if !b.retry(ctx, log, &bo, "the input failed", err) {
			return
		}
	}
}

// receive reads conn until it fails, dispatching each event.
func (b *Bot) receive(ctx, work context.Context, log *slog.Logger, conn input.Conn, sem chan struct{}, inflight, connWG *sync.WaitGroup) error {
	for {
		ev, err := conn.Recv(ctx)
		if err != nil {
			return err
		}
		if ev == nil {
			continue
		}
		if !ev.Addressed {
			if s, ok := conn.(Skipper); ok {
				s.Skip(ev)
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			if s, ok := conn.(Skipper); ok {
				s.Skip(ev)
			}
			return ctx.Err()
		}
		inflight.Add(1)
		connWG.Add(1)
		go func() {
			defer func() { <-sem; connWG.Done(); inflight.Done() }()
			p := b.newProgress(work, conn, ev, log)
			rep := b.Handle(command.NewProgressContext(work, p.report), ev)
			p.close() // what the command reported goes before its reply
			if rep == nil {
				if s, ok := conn.(Skipper); ok {
					s.Skip(ev)
				}
				return
			}
			sctx, cancel := context.WithTimeout(work, b.opts.sendTimeout)
			defer cancel()
			if err := conn.Send(sctx, ev, rep); err != nil {
				log.Warn("sending a reply failed", "room", ev.Room, "err", err)
			}
		}()
	}
}

// retry logs err and waits the next backoff, or the longest one after a
// permanent error; false if ctx ended first.
func (b *Bot) retry(ctx context.Context, log *slog.Logger, bo *backoff.Backoff, msg string, err error) bool {
	var d time.Duration
	if isPermanent(err) {
		d = backoff.Jitter(bo.Max)
		log.Error(msg+"; the error is permanent (check the configuration), retrying at the slowest pace", "err", err, "retry_in", d.Round(time.Millisecond))
	} else {
		d = bo.Next()
		log.Warn(msg+"; reconnecting", "err", err, "retry_in", d.Round(time.Millisecond))
	}
	return backoff.Sleep(ctx, d)
}

// isPermanent reports whether retrying cannot fix err.
func isPermanent(err error) bool { return errors.Is(err, input.ErrPermanent) }

// waitTimeout waits for wg up to d; false if d passed first.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/metadata"
	"github.com/microbot/microbot/input"
)

// MetaConfirmedBy is the RPC metadata key that tells the services a
// command calls who confirmed it (a qualified id, "slack:U0123ABCD"), when
// it ran after a confirmation. The caller's identity travels as usual
// (bot.MetaInput, bot.MetaUserID, ...): it is the requester's.
const MetaConfirmedBy = "Micro-Confirmed-By"

// Guard enforces a policy on the bot: a middleware that decides, asks for
// confirmations and writes the audit log; a visibility function for help;
// and the confirm command. It is safe for concurrent use, and its policy
// can be reloaded while the bot runs.
type Guard struct {
	policy   atomic.Pointer[Policy]
	table    atomic.Pointer[command.Table]
	ns       atomic.Pointer[string]
	reloadMu sync.Mutex

	confirmCmd *command.Command
	pend       confirmStore
	audit      *audit.Log
	log        *slog.Logger
	timeout    time.Duration // from --confirm_timeout; 0: the policy's
	now        func() time.Time
}

// Option configures a Guard.
type Option func(*Guard)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(g *Guard) { g.log = l } }

// WithAudit sets where audit records go (default: the logger, at INFO).
func WithAudit(a *audit.Log) Option { return func(g *Guard) { g.audit = a } }

// WithConfirmTimeout sets how long a confirmation code stays valid,
// overriding the policy's confirm.timeout.
func WithConfirmTimeout(d time.Duration) Option { return func(g *Guard) { g.timeout = d } }

// withClock sets the clock (tests).
func withClock(now func() time.Time) Option { return func(g *Guard) { g.now = now } }

// New returns a Guard enforcing p.
func New(p *Policy, opts ...Option) *Guard {
	g := &Guard{pend: newConfirmations(), now: time.Now}
	for _, o := range opts {
		o(g)
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.audit == nil {
		g.audit = audit.ToLogger(g.log)
	}
	ns := commandsvc.DefaultNamespace // until Install names one
	g.ns.Store(&ns)
	g.policy.Store(p)
	g.confirmCmd = &command.Command{
		Name:        "confirm",
		Usage:       "confirm [code]",
		Description: "Runs the command that asked for confirmation with this code",
		Run: func(context.Context, *command.Request) (*input.Reply, error) {
			return nil, errors.New("nothing to confirm: the access guard is not in the bot's middleware")
		},
	}
	return g
}

// Policy returns the policy in effect.
func (g *Guard) Policy() *Policy { return g.policy.Load() }

// SetPolicy puts p in effect (confirmations waiting are checked against it
// when confirmed).
func (g *Guard) SetPolicy(p *Policy) { g.policy.Store(p) }

// Command returns the confirm command. [Guard.Install] registers it.
func (g *Guard) Command() *command.Command { return g.confirmCmd }

// Install registers the confirm command in t, and tells the guard the
// table and the command namespace: a query of a command service
// (namespace.name) is then decided as running that command too, and a
// command is matched again when confirmed (it may have changed meanwhile).
func (g *Guard) Install(t *command.Table, namespace string) error {
	if err := t.Register(g.confirmCmd); err != nil {
		return fmt.Errorf("access: %w", err)
	}
	if ns := strings.TrimSuffix(namespace, "."); ns != "" {
		g.ns.Store(&ns)
	}
	g.table.Store(t)
	return nil
}

// Visibility returns the function that tells help which commands a caller
// may see: those the policy lets them run where they ask (for query and
// the like, on some service), and confirm.
func (g *Guard) Visibility() command.Visibility {
	return func(ctx context.Context, req *command.Request, cmd *command.Command) bool {
		if cmd == g.confirmCmd {
			return true
		}
		var ev *input.Event
		if req != nil {
			ev = req.Event
		}
		return g.policy.Load().Decide(CallerOf(ev), cmd, nil).Allow
	}
}

// Middleware returns the bot middleware that enforces the policy, handles
// confirm, and writes an audit record for every command.
func (g *Guard) Middleware() bot.Middleware {
	return func(next bot.Handler) bot.Handler {
		return func(ctx context.Context, req *command.Request) *input.Reply {
			switch req.Command {
			case nil:
				return next(ctx, req) // unknown: the table answers
			case g.confirmCmd:
				return g.confirm(ctx, req, next)
			}
			return g.check(ctx, req, next)
		}
	}
}

// decide is the policy's decision on req for caller, with a query of a
// command service decided as that command as well.
func (g *Guard) decide(p *Policy, caller Caller, req *command.Request) Decision {
	d := p.Decide(caller, req.Command, req)
	if !d.Allow || req.Command.Name != "query" || d.Target == "" {
		return d
	}
	ns := *g.ns.Load()
	name, ok := cutFold(d.Target, ns+".")
	if !ok {
		return d
	}
	var cmd *command.Command
	if t := g.table.Load(); t != nil && name != "" {
		cmd = t.Lookup(name)
	}
	if cmd == nil || cmd.Metadata[command.MetaService] != d.Target {
		// Fail closed: a service of the namespace that is no command now,
		// such as a case variant of a command's service (the watcher
		// ignores it: it clashes), which is not that command's service.
		return Decision{Target: d.Target, Rule: "command namespace " + ns,
			Reason: "query of a service in the command namespace that is no command"}
	}
	dc := p.Decide(caller, cmd, nil)
	if !dc.Allow {
		dc.Target = d.Target
		dc.Reason = "query of command " + cmd.Name + ": " + dc.Reason
		return dc
	}
	d.Confirm = max(d.Confirm, dc.Confirm)
	return d
}

// cutFold is strings.CutPrefix, comparing names as [command.Fold] does.
func cutFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || command.Fold(s[:len(prefix)]) != command.Fold(prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// check decides a command and runs it, asks for its confirmation, or
// refuses it.
func (g *Guard) check(ctx context.Context, req *command.Request, next bot.Handler) *input.Reply {
	start := g.now()
	p := g.policy.Load()
	caller := CallerOf(req.Event)
	d := g.decide(p, caller, req)
	rec := g.record(req.Event, req, d, start)
	if !d.Allow {
		rec.Decision = audit.Denied
		g.write(rec, start)
		if req.Command.Metadata[command.MetaService] != "" {
			// A command service the caller may not run is one they do not
			// see: the same reply as for a command that does not exist.
			return next(ctx, &command.Request{Event: req.Event, Text: req.Text, Words: req.Words})
		}
		return deniedReply(req.Command, d)
	}
	if d.Confirm != NoConfirm {
		timeout := g.confirmTimeout(p)
		pd := &pending{req: req, args: args(req), requester: caller, mode: d.Confirm, decision: d, created: start, expires: start.Add(timeout)}
		if req.Event != nil {
			pd.userName = req.Event.UserName
		}
		code, err := g.pend.add(ctx, pd)
		if err != nil {
			g.log.Error("storing a confirmation", "err", err)
			rec.Decision, rec.Reason = audit.Denied, "the confirmation could not be stored"
			g.write(rec, start)
			return command.Errorf("%s needs a confirmation, which could not be stored (it was logged): it did not run; try again", req.Command.Name)
		}
		rec.Decision, rec.Code = audit.ConfirmationRequired, code
		g.write(rec, start)
		return confirmReply(req.Command.Name, code, d.Confirm, timeout)
	}
	rep := next(ctx, req)
	rec.Decision = audit.Allowed
	outcome(&rec, rep)
	g.write(rec, start)
	return rep
}

// confirm runs "confirm CODE".
func (g *Guard) confirm(ctx context.Context, req *command.Request, next bot.Handler) *input.Reply {
	start := g.now()
	p := g.policy.Load()
	who := CallerOf(req.Event)
	rec := g.record(req.Event, req, Decision{}, start)
	rec.Decision = audit.Denied
	params := req.Params()
	if len(params) != 1 {
		rec.Reason = "no code given"
		g.write(rec, start)
		return command.Errorf("confirm what? give the code the command answered with (usage: confirm [code])")
	}
	pd, res, err := g.pend.take(ctx, params[0], who, start, func(pd *pending) (ConfirmMode, bool) {
		fresh := g.rematch(pd.req)
		if fresh.Command == nil {
			return pd.mode, false
		}
		return g.decide(p, pd.requester, fresh).Confirm, g.decide(p, who, fresh).Allow
	})
	if err != nil {
		g.log.Error("looking up a confirmation", "err", err)
		rec.Reason = "the confirmations could not be read"
		g.write(rec, start)
		return command.Errorf("the confirmation could not be checked (it was logged): nothing ran; try again")
	}
	if pd != nil {
		rec.Command, rec.Args, rec.Target, rec.Rule = pd.req.Command.Name, pd.args, pd.decision.Target, pd.decision.Rule
		rec.Code, rec.RequestedBy = pd.code, pd.requester.ID()
	}
	switch res {
	case confirmUnknown:
		rec.Reason = "no command waits for this code here"
		g.write(rec, start)
		return command.Errorf("no command is waiting for confirmation with code %s here", command.Quote(params[0]))
	case confirmExpired:
		rec.Decision, rec.Reason = audit.Expired, "confirmed after "+pd.expires.Sub(pd.created).String()
		g.write(rec, start)
		return command.Errorf("the confirmation of %s expired (codes last %s): run the command again", pd.req.Command.Name, short(pd.expires.Sub(pd.created)))
	case confirmNotYours:
		rec.Reason = "only the requester may confirm"
		g.write(rec, start)
		return command.Errorf("only the person who asked for %s can confirm it", pd.req.Command.Name)
	case confirmNotSelf:
		rec.Reason = "two-person rule: the requester may not confirm"
		g.write(rec, start)
		return command.Errorf("you asked for %s: someone else allowed to run it must confirm it (two-person rule)", pd.req.Command.Name)
	case confirmNotAllowed:
		rec.Reason = "the confirmer may not run it here"
		g.write(rec, start)
		return command.Errorf("you are not allowed to run %s here, so you cannot confirm it", pd.req.Command.Name)
	}
	// Taken. Decide again, with the policy and the command as they are now.
	fresh := g.rematch(pd.req)
	if !sameCommand(fresh.Command, pd.req.Command) {
		rec.Reason = "the command is gone"
		g.write(rec, start)
		return command.Errorf("%s is no longer available", pd.req.Command.Name)
	}
	if d := g.decide(p, pd.requester, fresh); !d.Allow {
		rec.Rule, rec.Reason = d.Rule, "the requester may no longer run it: "+d.Reason
		g.write(rec, start)
		return command.Errorf("%s may no longer be run by %s here: it did not run", pd.req.Command.Name, nameOf(pd))
	}
	ctx = bot.WithCaller(ctx, pd.req.Event)
	ctx = metadata.MergeContext(ctx, metadata.Metadata{MetaConfirmedBy: who.ID()})
	rep := next(ctx, fresh)
	rec.Decision, rec.ConfirmedBy, rec.Reason = audit.Confirmed, who.ID(), ""
	outcome(&rec, rep)
	g.write(rec, start)
	return rep
}

// sameCommand reports whether a command matched again is the one matched
// first: the same name, and for a command service the same service (another
// service may have taken the name over meanwhile).
func sameCommand(now, then *command.Command) bool {
	return now != nil && command.Fold(now.Name) == command.Fold(then.Name) &&
		now.Metadata[command.MetaService] == then.Metadata[command.MetaService]
}

// rematch matches the text of a request waiting for confirmation again,
// against the table as it is now.
func (g *Guard) rematch(req *command.Request) *command.Request {
	t := g.table.Load()
	if t == nil || req.Event == nil {
		return req
	}
	fresh := t.Match(req.Event.Text)
	fresh.Event = req.Event
	return fresh
}

func nameOf(pd *pending) string {
	if pd.userName != "" {
		return pd.userName
	}
	return pd.requester.UserID
}

func (g *Guard) confirmTimeout(p *Policy) time.Duration {
	if g.timeout > 0 {
		return g.timeout
	}
	return p.ConfirmTimeout()
}

// record starts the audit record of a request.
func (g *Guard) record(ev *input.Event, req *command.Request, d Decision, start time.Time) audit.Record {
	r := audit.Record{Time: start, Command: req.Command.Name, Args: args(req), Target: d.Target, Rule: d.Rule, Reason: d.Reason}
	if ev != nil {
		r.Input, r.UserID, r.UserName, r.Room, r.Direct = ev.Input, ev.UserID, ev.UserName, ev.Room, ev.Direct
	}
	return r
}

// args returns the text after the command's words.
func args(req *command.Request) string {
	if req.Matched >= len(req.Words) {
		return ""
	}
	return req.Rest(0)
}

func (g *Guard) write(r audit.Record, start time.Time) {
	r.LatencyMS = float64(g.now().Sub(start).Microseconds()) / 1000
	if err := g.audit.Write(r); err != nil {
		g.log.Error("writing the audit log", "err", err)
	}
}

// outcome notes how a command went.
func outcome(r *audit.Record, rep *input.Reply) {
	r.Outcome = audit.OK
	if rep != nil && rep.Error {
		r.Outcome = audit.Error
		r.Error = strings.TrimPrefix(rep.Text, "error: ")
	}
}

// deniedReply says plainly that the command may not run here, and that it
// is for admins when the default rule denied it (a rule of a policy file
// is not described: its names are the policy's business).
func deniedReply(cmd *command.Command, d Decision) *input.Reply {
	what := cmd.Name
	if d.Target != "" {
		what += " on " + d.Target
	}
	text := "you are not allowed to run " + what + " here"
	if d.Rule == defaultAdminsOnly {
		text += " (admins only)"
	}
	return &input.Reply{Text: text, Error: true}
}

// confirmReply asks for the confirmation.
func confirmReply(name, code string, mode ConfirmMode, timeout time.Duration) *input.Reply {
	if mode == ConfirmTwoPerson {
		return &input.Reply{Text: fmt.Sprintf("%s needs a second person: someone else allowed to run it must type \"confirm %s\" here within %s",
			name, code, short(timeout))}
	}
	return &input.Reply{Text: fmt.Sprintf("%s needs confirmation: type \"confirm %s\" here within %s", name, code, short(timeout))}
}

// short formats a duration without its zero tail: 2m, 1m30s, 500ms.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Reload reads the policy file again and puts it in effect, and opens the
// audit log file again (for log rotation). A policy file that does not
// load leaves the policy in effect unchanged; the error says why (file and
// line) and is logged. Without a policy file only the audit log is opened
// again.
func (g *Guard) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	var errs []error
	if err := g.audit.Reopen(); err != nil {
		g.log.Error("reopening the audit log", "err", err)
		errs = append(errs, err)
	}
	old := g.policy.Load()
	if old.source == "" {
		g.log.Info("no policy file to reload; the default policy stays in effect")
		return errors.Join(errs...)
	}
	p, err := Load(old.source, old.extra...)
	if err != nil {
		g.log.Error("the policy file does not load; keeping the policy in effect", "err", err)
		return errors.Join(append(errs, err)...)
	}
	g.policy.Store(p)
	g.log.Info("policy reloaded", "file", p.source, "rules", len(p.rules)-len(defaultRules()), "admins", len(p.admins))
	return errors.Join(errs...)
}

// Close closes the audit log.
func (g *Guard) Close() error { return g.audit.Close() }

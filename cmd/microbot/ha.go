package main

// High availability (--ha, docs/ha.md): several instances of the bot side
// by side, coordinating through Consul (framework/registry/consul's
// Coordinator). Slack is served by every instance, with Slack's deliveries
// claimed once among them; each XMPP account by one instance at a time
// (bot.Exclusive, under a lock); confirmations are kept in Consul's KV
// store; every instance receives every watched event and the instances
// claim each post (bot/notify's WithClaimer). main.go and notify.go call
// these functions; without --ha none of it runs.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/bot/access"
	"github.com/microbot/microbot/bot/notify"
	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/slack"
	"github.com/microbot/microbot/input/xmpp"
)

// Flag names of high availability.
const (
	flagHA    = "ha"     // MICRO_HA
	flagHATTL = "ha_ttl" // MICRO_HA_TTL
)

// haFlags are --ha and --ha_ttl, new each call.
func haFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: flagHA, EnvVars: []string{"MICRO_HA"},
			Usage: "run as one of several instances of this bot side by side (same flags, same --server_name, --registry=consul): " +
				"every instance serves Slack and each message is answered once, one at a time serves each XMPP account and another takes over when it stops, " +
				"confirmation codes work on any instance (see docs/ha.md)"},
		&cli.DurationFlag{Name: flagHATTL, EnvVars: []string{"MICRO_HA_TTL"}, Value: consul.DefaultPresenceTTL,
			Usage: "with --ha: how long an instance that no longer reaches Consul (or died) keeps the XMPP accounts it serves; another takes over about this plus 1s later"},
	}
}

// haKit is what --ha adds: the Consul registry the bot's service uses and
// the coordinator on it.
type haKit struct {
	reg   *consul.Registry
	coord *consul.Coordinator
	log   *slog.Logger
	ex    []*bot.Exclusive // the inputs one instance at a time serves
}

// newHA builds the coordination of --ha; nil without it. Its keys are
// under microbot/ha/<server_name>/: the instances of one bot share a
// --server_name, so two bots on one Consul keep apart.
func newHA(c *cli.Context, log *slog.Logger) (*haKit, error) {
	if !c.Bool(flagHA) {
		return nil, nil
	}
	if name := c.String(framework.FlagRegistry); name != "consul" {
		return nil, fmt.Errorf("--%s needs --%s=consul: the instances coordinate through Consul (--%s is %q)", flagHA, framework.FlagRegistry, framework.FlagRegistry, name)
	}
	ttl := c.Duration(flagHATTL)
	if ttl < time.Second {
		return nil, fmt.Errorf("--%s %s: want at least 1s", flagHATTL, ttl)
	}
	reg, err := consul.New(consul.WithAddrs(c.String(framework.FlagRegistryAddress)), consul.WithLogger(log))
	if err != nil {
		return nil, err
	}
	name := c.String(framework.FlagServerName)
	coord, err := consul.NewCoordinator(reg,
		consul.WithKeyPrefix("microbot/ha/"+name+"/"),
		consul.WithPresenceName(name+".ha"),
		consul.WithPresenceTTL(ttl),
		consul.WithCoordinatorLogger(log))
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagHA, err)
	}
	return &haKit{reg: reg, coord: coord, log: log}, nil
}

// serviceOptions make the bot's service use the registry the coordinator
// talks to.
func (h *haKit) serviceOptions() []framework.Option {
	if h == nil {
		return nil
	}
	return []framework.Option{framework.WithRegistry(h.reg)}
}

// guardOptions keep the confirmations in Consul.
func (h *haKit) guardOptions() []access.Option {
	if h == nil {
		return nil
	}
	return []access.Option{access.WithSharedStore(h.coord.Store("confirm"))}
}

// slackOptions claim Slack's deliveries among the instances.
func (h *haKit) slackOptions() []slack.Option {
	if h == nil {
		return nil
	}
	return []slack.Option{slack.WithClaimer(h.coord)}
}

// threadTTL is how long (three quarters of it to twice it) the instances
// remember the thread of a notification's thread key: a later
// notification with the key goes in the same thread.
const threadTTL = 24 * time.Hour

// notifyOptions make each instance receive every watched event and claim
// each post (one post per room in all), and share the threads of thread
// keys.
func (h *haKit) notifyOptions() ([]notify.Option, error) {
	if h == nil {
		return nil, nil
	}
	m, err := h.coord.Memo("threads", threadTTL)
	if err != nil {
		return nil, err
	}
	return []notify.Option{notify.WithClaimer(h.coord), notify.WithThreads(memoThreads{m})}, nil
}

// memoThreads keeps the threads of thread keys in a Consul memo.
type memoThreads struct{ m *consul.Memo }

// Get returns the thread of key in place.
func (t memoThreads) Get(ctx context.Context, place notify.Place, key string) (string, error) {
	v, err := t.m.Get(ctx, place.String()+"\n"+key)
	return string(v), err
}

// Put keeps the thread of key in place (the first one kept stays).
func (t memoThreads) Put(ctx context.Context, place notify.Place, key, thread string) error {
	_, err := t.m.Put(ctx, place.String()+"\n"+key, []byte(thread))
	return err
}

// wrap makes the inputs that one instance at a time may serve (an XMPP
// account) exclusive, under the lock of their account.
func (h *haKit) wrap(in input.Input, k *opsKit) input.Input {
	if h == nil {
		return in
	}
	x, ok := in.(*xmpp.Input)
	if !ok {
		return in
	}
	ex := bot.NewExclusive(x, locker{h.coord}, "xmpp/"+x.Account(),
		bot.WithActiveHook(k.metrics.ActiveHook()), bot.WithExclusiveLogger(h.log))
	h.ex = append(h.ex, ex)
	return ex
}

// close waits (a few seconds at most) for the exclusive inputs to close
// and release their locks, so another instance takes over at once, then
// ends this instance's presence in Consul.
func (h *haKit) close() {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ex := range h.ex {
		if err := ex.WaitClosed(ctx); err != nil {
			h.log.Warn("the input did not close in time; its lock goes when this instance's presence ends", "input", ex.String(), "err", err)
		}
	}
	if err := h.coord.Close(ctx); err != nil {
		h.log.Warn("ending this instance's presence in Consul", "err", err)
	}
}

// locker is bot.Locker on the coordinator's locks.
type locker struct{ c *consul.Coordinator }

// Lock takes the lock named key.
func (l locker) Lock(ctx context.Context, key string) (bot.Lease, error) {
	lk, err := l.c.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return lk, nil
}

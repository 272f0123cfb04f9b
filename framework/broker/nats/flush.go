package nats

import (
	"context"
	"errors"
	"fmt"

	natsgo "github.com/nats-io/nats.go"

	"github.com/microbot/microbot/framework/broker"
)

var _ broker.Flusher = (*Broker)(nil)

// Flush is a round trip to the server (a PING, answered by a PONG; nats.go's
// FlushWithContext): it returns once the server has processed every
// message the broker published before the call, so routed each to the
// connections of its subscribers (on this server; a route to another
// server of a cluster is not waited for), and once the broker has read
// every message the server sent it before the PONG, so handed each to its
// subscription (counted in its Stats). Publish alone only hands the message
// to the connection, which writes it in the background: see
// broker.Flusher.
//
// Without a deadline on ctx, the dial timeout bounds it. It fails with
// broker.ErrNotConnected before Connect or after Disconnect, and with
// broker.ErrUnavailable while the connection is down (reconnecting) or
// when the server did not answer before ctx ended (the error then wraps
// ctx's too); a message published before may have gone or not.
func (b *Broker) Flush(ctx context.Context) error {
	nc := b.live.Load()
	if nc == nil {
		return fmt.Errorf("nats broker: flush: %w", broker.ErrNotConnected)
	}
	if !nc.IsConnected() {
		return fmt.Errorf("nats broker: flush: %w: the connection to %s is down", broker.ErrUnavailable, b.addrList())
	}
	if _, ok := ctx.Deadline(); !ok { // nats.go wants one
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.dialTimeout)
		defer cancel()
	}
	switch err := nc.FlushWithContext(ctx); {
	case err == nil:
		return nil
	case errors.Is(err, natsgo.ErrConnectionClosed) && b.live.Load() != nc:
		return fmt.Errorf("nats broker: flush: %w", broker.ErrNotConnected)
	default:
		// A closed connection here is one that broke (nats.go ends the
		// pending flushes when it starts reconnecting).
		return fmt.Errorf("nats broker: flush: %w: the server %s did not answer: %w", broker.ErrUnavailable, b.addrList(), err)
	}
}

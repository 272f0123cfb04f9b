package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/codec"
	"github.com/microbot/microbot/framework/internal/node"
	"github.com/microbot/microbot/framework/metadata"
)

// Headers of a published message, as go-micro v1's client sets them.
const (
	HeaderContentType = "Content-Type"
	HeaderTopic       = "Micro-Topic"
	HeaderID          = "Micro-Id"
)

// ErrNoBroker is returned (wrapped) by Publish on a client built without a
// broker.
var ErrNoBroker = errors.New("the client has no broker")

// Publish encodes msg with the client's content type (or the one given
// with WithContentType: application/json or application/protobuf) and
// publishes it to topic on the client's broker, as go-micro's client does:
// the headers carry the Content-Type, the topic (Micro-Topic), a new
// message id (Micro-Id) and the metadata of ctx (package metadata). It
// returns once the broker has the message (see package broker), within the
// call's request timeout if ctx has no deadline. Errors wrap the broker's
// (broker.ErrInvalid, broker.ErrUnavailable, ...) or say why msg could not
// be encoded.
func (c *Client) Publish(ctx context.Context, topic string, msg any, opts ...CallOption) error {
	b := c.opts.Broker
	if b == nil {
		return fmt.Errorf("publish to %s: %w (framework.Service gives it one)", topic, ErrNoBroker)
	}
	co := c.opts.CallOptions
	for _, f := range opts {
		f(&co)
	}
	cd, err := codec.For(co.ContentType)
	if err != nil || cd.ContentType() != codec.JSON && cd.ContentType() != codec.Protobuf {
		return fmt.Errorf("publish to %s: %w content type %q: want %s or %s", topic, broker.ErrInvalid, co.ContentType, codec.JSON, codec.Protobuf)
	}
	body, err := cd.Marshal(msg)
	if err != nil {
		return fmt.Errorf("publish to %s: encoding the message as %s: %w", topic, cd.ContentType(), err)
	}
	md, _ := metadata.FromContext(ctx)
	header := make(map[string]string, len(md)+3)
	for k, v := range md {
		header[k] = v
	}
	header[HeaderContentType] = cd.ContentType()
	header[HeaderTopic] = topic
	header[HeaderID] = node.NewUUID()
	if _, ok := ctx.Deadline(); !ok && co.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, co.RequestTimeout)
		defer cancel()
	}
	return b.Publish(ctx, topic, &broker.Message{Header: header, Body: body})
}

// Flush returns once the client's broker confirms that what the client
// published before the call went through (broker.Flusher: with nats, a
// round trip to the server; with http and memory, Publish has delivered
// already), within the call's request timeout if ctx has no deadline. It
// returns an error wrapping errors.ErrUnsupported when the broker cannot
// confirm that (mqtt), ErrNoBroker without a broker, and the broker's
// error otherwise.
func (c *Client) Flush(ctx context.Context) error {
	b := c.opts.Broker
	if b == nil {
		return fmt.Errorf("flush: %w", ErrNoBroker)
	}
	f, ok := b.(broker.Flusher)
	if !ok {
		return fmt.Errorf("flush: the %s broker: %w", b, errors.ErrUnsupported)
	}
	if _, ok := ctx.Deadline(); !ok && c.opts.CallOptions.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallOptions.RequestTimeout)
		defer cancel()
	}
	return f.Flush(ctx)
}

package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/broker"
)

// lazyBroker connects the service's broker on first use: a service that
// neither publishes nor subscribes never connects, and one whose broker is
// down at start fails when it needs it, with the broker's error.
type lazyBroker struct {
	broker.Broker
	timeout time.Duration

	mu        sync.Mutex
	connected bool
}

// connect connects the broker once, within the timeout and ctx. A failed
// attempt is tried again on the next use.
func (l *lazyBroker) connect(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connected {
		return nil
	}
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	if err := l.Broker.Connect(ctx); err != nil {
		return err
	}
	l.connected = true
	return nil
}

// Connect connects the broker (within the timeout).
func (l *lazyBroker) Connect(ctx context.Context) error { return l.connect(ctx) }

// Publish connects the broker if need be, then publishes.
func (l *lazyBroker) Publish(ctx context.Context, topic string, m *broker.Message) error {
	if err := l.connect(ctx); err != nil {
		return err
	}
	return l.Broker.Publish(ctx, topic, m)
}

// Subscribe connects the broker if need be, then subscribes.
func (l *lazyBroker) Subscribe(ctx context.Context, topic string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscriber, error) {
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	return l.Broker.Subscribe(ctx, topic, h, opts...)
}

// Flush connects the broker if need be, then flushes it (broker.Flusher).
// A broker that cannot flush (mqtt) gives an error wrapping
// errors.ErrUnsupported: the service's broker is always a Flusher, which
// says so when the broker it wraps is not.
func (l *lazyBroker) Flush(ctx context.Context) error {
	f, ok := l.Broker.(broker.Flusher)
	if !ok {
		return fmt.Errorf("%s broker: flush: %w", l.Broker, errors.ErrUnsupported)
	}
	if err := l.connect(ctx); err != nil {
		return err
	}
	return f.Flush(ctx)
}

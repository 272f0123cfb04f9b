package http

import (
	"context"
	"fmt"

	"github.com/microbot/microbot/framework/broker"
)

var _ broker.Flusher = (*Broker)(nil)

// Flush has nothing to wait for: Publish returns once the inbox of each
// subscriber has answered the POST, which it does once the message is
// counted in its subscription (received, then queued or dropped), so a
// message whose Publish returned before the call is here already, and so
// is every message published to this broker's subscribers whose Publish
// returned. It fails with broker.ErrNotConnected before Connect and after
// Disconnect. See broker.Flusher.
func (b *Broker) Flush(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.connected || b.closed {
		return fmt.Errorf("http broker: flush: %w", broker.ErrNotConnected)
	}
	return nil
}

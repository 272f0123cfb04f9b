package memory

import (
	"context"
	"fmt"

	"github.com/microbot/microbot/framework/broker"
)

var _ broker.Flusher = (*Broker)(nil)

// Flush has nothing to wait for: Publish hands the message to the queue of
// each subscription on the bus (counted in its Stats) before it returns.
// It fails with broker.ErrNotConnected before Connect and after
// Disconnect. See broker.Flusher.
func (b *Broker) Flush(context.Context) error {
	if err := b.usable(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

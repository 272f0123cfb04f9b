package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker"
	brokermem "github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/client"
)

// noFlush is a broker that cannot confirm what went through (as mqtt).
type noFlush struct{ broker.Broker }

// TestFlush: Flush passes the broker's Flush on, and says when there is
// none to call.
func TestFlush(t *testing.T) {
	connected := brokermem.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := connected.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer connected.Disconnect(ctx)
	for _, tt := range []struct {
		name string
		b    broker.Broker
		want error // nil: no error
	}{
		{"connected memory broker", connected, nil},
		{"memory broker not connected", brokermem.New(), broker.ErrNotConnected},
		{"broker without Flush", noFlush{connected}, errors.ErrUnsupported},
		{"no broker", nil, client.ErrNoBroker},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []client.Option
			if tt.b != nil {
				opts = append(opts, client.WithBroker(tt.b))
			}
			c, err := client.New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Flush(ctx)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Flush = %v, want %v", err, tt.want)
			}
		})
	}
}

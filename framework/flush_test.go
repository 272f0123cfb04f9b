package framework_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/broker"
	brokermem "github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/registry/memory"
)

// noFlush is a broker that cannot flush (as mqtt).
type noFlush struct{ broker.Broker }

// TestServiceBrokerFlush: the service's broker and its client flush when
// the broker given can (connecting it first, as Publish does), and say
// errors.ErrUnsupported when it cannot.
func TestServiceBrokerFlush(t *testing.T) {
	for _, tt := range []struct {
		name string
		b    broker.Broker
		want error
	}{
		{"memory", brokermem.New(), nil},
		{"no Flush", noFlush{brokermem.New()}, errors.ErrUnsupported},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := framework.NewService(framework.WithName("flush"), framework.WithRegistry(memory.New()), framework.WithBroker(tt.b), framework.WithArgs([]string{"flush"}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			f, ok := svc.Broker().(broker.Flusher)
			if !ok {
				t.Fatal("the service's broker is no broker.Flusher")
			}
			for name, err := range map[string]error{"broker": f.Flush(ctx), "client": svc.Client().Flush(ctx)} {
				if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("the service's %s: Flush = %v, want %v", name, err, tt.want)
				}
			}
			svc.Broker().Disconnect(ctx)
		})
	}
}

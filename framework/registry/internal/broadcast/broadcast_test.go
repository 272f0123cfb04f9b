package broadcast

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/microbot/microbot/framework/registry"
)

func result(name string) []*registry.Result {
	return []*registry.Result{{Action: registry.Create, Service: &registry.Service{Name: name, Nodes: []*registry.Node{{ID: "n"}}}}}
}

func TestFilterAndOrder(t *testing.T) {
	var h Hub
	all := h.Subscribe(context.Background(), "", nil)
	one := h.Subscribe(context.Background(), "b", nil)
	defer all.Stop()
	defer one.Stop()
	h.Publish(result("a"))
	h.Publish(result("b"))
	for _, want := range []string{"a", "b"} {
		r, err := all.Next()
		if err != nil || r.Service.Name != want {
			t.Fatalf("all.Next = %v, %v; want %s", r, err, want)
		}
	}
	r, err := one.Next()
	if err != nil || r.Service.Name != "b" {
		t.Fatalf("one.Next = %v, %v; want b", r, err)
	}
}

func TestFallsBehind(t *testing.T) {
	h := Hub{Queue: 3}
	stopped := make(chan struct{})
	w := h.Subscribe(context.Background(), "", func() { close(stopped) })
	for range 4 {
		h.Publish(result("a"))
	}
	<-stopped // a broken watcher leaves the hub
	if h.Len() != 0 {
		t.Fatalf("hub still holds %d watchers", h.Len())
	}
	_, err := w.Next()
	if err == nil || errors.Is(err, registry.ErrWatcherStopped) || !strings.Contains(err.Error(), "fell behind") {
		t.Fatalf("Next = %v, want a fell-behind error", err)
	}
}

func TestStop(t *testing.T) {
	var h Hub
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	stopped := make(chan struct{})
	w := h.Subscribe(ctx, "", func() { calls.Add(1); close(stopped) })
	h.Publish(result("a"))
	cancel()
	<-stopped // the end of ctx stops the watcher
	w.Stop()
	if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("Next after stop = %v", err)
	}
	if n := calls.Load(); n != 1 || h.Len() != 0 {
		t.Fatalf("onStop ran %d times, hub holds %d watchers; want 1 and 0", n, h.Len())
	}
}

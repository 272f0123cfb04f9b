package watch_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/microbot/microbot/commandsvc/watch"
	"github.com/microbot/microbot/framework/registry"
)

func TestWatchHookSeesEveryChange(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{} // "action service" -> count
	hook := func(r *registry.Result) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.Action+" "+r.Service.Name]++
	}
	count := func(keys ...string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, k := range keys {
			n += seen[k]
		}
		return n
	}
	e := newEnv(t, nil, watch.WithWatchHook(hook))
	ctx := context.Background()
	// A command service and a service outside the namespace: the hook
	// hears of both. They are registered again, changed, until the watch
	// (which starts on its own goroutine) has seen them.
	svcs := []*registry.Service{
		{Name: "go.micro.bot.deploy", Nodes: []*registry.Node{{ID: "d1", Address: "127.0.0.1:1"}}},
		{Name: "go.micro.srv.other", Nodes: []*registry.Node{{ID: "o1", Address: "127.0.0.1:2"}}},
	}
	round := 0
	e.eventually("create or update events", func() bool {
		round++
		for _, s := range svcs {
			s.Metadata = map[string]string{"round": strconv.Itoa(round)}
			if err := e.reg.Register(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		return count("create go.micro.bot.deploy", "update go.micro.bot.deploy") >= 1 &&
			count("create go.micro.srv.other", "update go.micro.srv.other") >= 1
	})
	for _, s := range svcs {
		if err := e.reg.Deregister(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	e.eventually("delete events", func() bool {
		return count("delete go.micro.bot.deploy") == 1 && count("delete go.micro.srv.other") == 1
	})
}

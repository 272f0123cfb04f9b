package watch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/broker"
	brokerhttp "github.com/microbot/microbot/framework/broker/http"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
)

// TestProgressOverConsul: the http broker over a real Consul agent. Running
// commands whose progress is followed writes nothing to Consul (the
// catalog's index does not move: no raft write per command); and when the
// agent restarts, losing every registration (a dev agent keeps no state),
// the progress topic is registered again by the broker's renewal, with
// nothing done by the watcher: it is in Consul again and progress shows.
func TestProgressOverConsul(t *testing.T) {
	agent := consultest.Start(t)
	reg, err := consul.New(consul.WithAddrs(agent.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	const every = 300 * time.Millisecond
	botB, svcB := progressBrokers(t, "http", reg, brokerhttp.WithRegisterInterval(every))
	e, svc := progressEnv(t, reg, botB, svcB)
	// The command service registers again as a framework service does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := svc.srv
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				srv.Register(rctx)
				rcancel()
			}
		}
	}()

	api, err := agent.API()
	if err != nil {
		t.Fatal(err)
	}
	index := func() uint64 {
		t.Helper()
		_, meta, err := api.Catalog().Services(nil)
		if err != nil {
			t.Fatal(err)
		}
		return meta.LastIndex
	}
	ok := func(i int) bool {
		r := &recorder{}
		rep := e.run(fmt.Sprintf("job slow a%d b%d", i, i), r)
		lines, _ := r.close()
		return !rep.Error && rep.Text == "done" && slices.Equal(lines, []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)})
	}
	before := index()
	const n = 20
	for i := range n {
		if !ok(i) {
			t.Fatalf("command %d: no progress", i)
		}
	}
	if after := index(); after != before {
		t.Errorf("%d commands moved Consul's catalog index from %d to %d, want no write", n, before, after)
	}

	topic := broker.TopicServicePrefix + e.w.ProgressTopic()
	// A registration nobody renews shows the agent lost them all.
	marker := &registry.Service{Name: "marker", Nodes: []*registry.Node{{ID: "marker-1", Address: "127.0.0.1:1"}}}
	if err := reg.Register(context.Background(), marker); err != nil {
		t.Fatal(err)
	}
	if err := agent.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GetService(context.Background(), "marker"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("the restarted agent still has what was registered before: %v", err)
	}
	e.eventually("the progress topic registered again by the renewal", func() bool {
		s, err := reg.GetService(context.Background(), topic)
		return err == nil && len(s) == 1 && len(s[0].Nodes) == 1
	})
	i := n
	e.eventually("progress shown again after the restart", func() bool { i++; return ok(i) })
	if got := broker.TopicServicePrefix + e.w.ProgressTopic(); got != topic {
		t.Errorf("the progress topic changed from %s to %s", topic, got)
	}
}

package consul_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/gomicrotest"
)

// TestGoMicroServicesRead: services of real go-micro v1.8.0 programs,
// registered in Consul by go-micro itself, are listed, got and watched
// like microbot's own; an instance that is not passing is left out, and
// one with broken tags is shown with what could be read.
func TestGoMicroServicesRead(t *testing.T) {
	agent := consultest.Start(t)
	greeter := gomicrotest.Start(t, gomicrotest.Greeter, "go.micro.srv.greeter", agent.Addr())
	echo := gomicrotest.Start(t, gomicrotest.Command, "go.micro.bot.echo", agent.Addr())
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))

	svcs, err := r.GetService(ctxT(t), "go.micro.srv.greeter")
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || svcs[0].Version != "latest" || len(svcs[0].Nodes) != 1 {
		t.Fatalf("GetService = %s", describe(svcs))
	}
	n := svcs[0].Nodes[0]
	want := map[string]string{"broker": "http", "protocol": "mucp", "registry": "consul", "server": "mucp", "transport": "http"}
	if n.ID != greeter.NodeID() || n.Address != greeter.Address() || !reflect.DeepEqual(n.Metadata, want) {
		t.Errorf("node %+v; want id %s, address %s, metadata %v", n, greeter.NodeID(), greeter.Address(), want)
	}
	var eps []string
	for _, e := range svcs[0].Endpoints {
		eps = append(eps, e.Name)
	}
	if !slices.Equal(eps, []string{"Say.Count", "Say.Fail", "Say.Hello"}) || svcs[0].Endpoints[2].Request.Values[0].Name != "name" {
		t.Errorf("endpoints %s", describe(svcs))
	}

	list, err := r.ListServices(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(list); !slices.Equal(got, []string{"consul@", "go.micro.bot.echo@latest", "go.micro.srv.greeter@latest"}) {
		t.Errorf("ListServices = %v", got)
	}

	// Instances registered by hand: one whose check fails, one whose
	// endpoint tag is broken.
	c, err := api.NewClient(&api.Config{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	tags := func(extra ...string) []string {
		return append([]string{
			"t-789caa562a28ca2fc94fcecf51b252ca2d4d2e50aa05040000ffff46a906e2", // {"protocol":"mucp"}
			"v-789cca492c492d2e01040000ffff08cc028e",                           // latest
		}, extra...)
	}
	for _, reg := range []*api.AgentServiceRegistration{
		{ID: "greeter-failing", Name: "go.micro.srv.greeter", Address: "127.0.0.1", Port: 1, Tags: tags(),
			Check: &api.AgentServiceCheck{CheckID: "failing", TTL: "1m", Status: api.HealthCritical}},
		{ID: "greeter-broken", Name: "go.micro.srv.greeter", Address: "::1", Port: 2, Tags: tags("e-zz")},
	} {
		if err := c.Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
	}
	expectNodes(t, r, "go.micro.srv.greeter", greeter.NodeID(), "greeter-broken")
	svcs, _ = r.GetService(ctxT(t), "go.micro.srv.greeter")
	for _, n := range svcs[0].Nodes {
		if n.ID == "greeter-broken" && (n.Address != "[::1]:2" || n.Metadata["protocol"] != "mucp") {
			t.Errorf("broken instance read as %+v", n)
		}
	}

	// The command service goes when go-micro stops it (it deregisters).
	w, err := r.Watch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := echo.Stop(); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if res.Action == registry.Delete && res.Service.Name == "go.micro.bot.echo" {
			if len(res.Service.Nodes) != 1 || res.Service.Nodes[0].ID != echo.NodeID() {
				t.Fatalf("delete of %s", describe([]*registry.Service{res.Service}))
			}
			break
		}
	}
	expectNodes(t, r, "go.micro.bot.echo")
}

// TestGoMicroReadsOurs: go-micro v1.8.0's own registry reads what microbot
// writes into Consul: version, endpoints with their schemas, node address
// and metadata (protocol=mucp among them, so go-micro's client calls the
// node with its current protocol).
func TestGoMicroReadsOurs(t *testing.T) {
	agent := consultest.Start(t)
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))
	svc := greeter("go.micro.srv.ours", "1.2.3", "ours-1")
	svc.Nodes[0].Metadata = map[string]string{"protocol": "mucp", "transport": "http", "server": "mucp", "registry": "consul"}
	if err := r.Register(ctxT(t), svc); err != nil {
		t.Fatal(err)
	}
	client := gomicrotest.StartClient(t, agent.Addr())
	raw, err := client.GetService("go.micro.srv.ours")
	if err != nil {
		t.Fatal(err)
	}
	var got []*registry.Service
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	want := registry.CopyService(svc)
	want.Metadata = nil // go-micro keeps no service metadata in Consul
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("go-micro reads\n %s\nwant\n %s", raw, describe([]*registry.Service{want}))
	}
}

func names(list []*registry.Service) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.Name+"@"+s.Version)
	}
	return out
}

func describe(svcs []*registry.Service) string {
	b, err := json.Marshal(svcs)
	if err != nil {
		return fmt.Sprint(svcs)
	}
	return string(b)
}

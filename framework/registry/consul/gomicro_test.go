package consul_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/gomicrotest"
)

// gmVersion is a go-micro version whose programs (internal/gomicrotest)
// write and read Consul: v1.8.0 with go-micro's own Consul registry,
// v1.16.0 with go-plugins v1.5.1's.
type gmVersion struct {
	name                     string
	greeter, command, client string
	// ipv6 is the address this version's registry reads for a node at
	// [::1]:4000: go-micro v1.8.0 joins host and port without brackets.
	ipv6 string
	// defaultVersion matches the version a service gets without
	// micro.Version: "latest" in v1.8.0, the start time
	// ("2006.01.02.15.04") in v1.16.0.
	defaultVersion string
}

var gmVersions = []gmVersion{
	{"v1.8.0", gomicrotest.Greeter, gomicrotest.Command, gomicrotest.Client, "::1:4000", `latest`},
	{"v1.16.0", gomicrotest.GreeterV116, gomicrotest.CommandV116, gomicrotest.ClientV116, "[::1]:4000", `\d{4}(\.\d\d){4}`},
}

// TestGoMicroServicesRead: services of real go-micro programs (v1.8.0, and
// v1.16.0 on go-plugins' Consul registry), registered in Consul by go-micro
// itself, are listed, got and watched like microbot's own; an instance that
// is not passing is left out, and one with broken tags is shown with what
// could be read.
func TestGoMicroServicesRead(t *testing.T) {
	for _, v := range gmVersions {
		t.Run(v.name, func(t *testing.T) { testGoMicroServicesRead(t, v) })
	}
}

func testGoMicroServicesRead(t *testing.T, v gmVersion) {
	agent := consultest.Start(t)
	greeter := gomicrotest.Start(t, v.greeter, "go.micro.srv.greeter", agent.Addr())
	echo := gomicrotest.Start(t, v.command, "go.micro.bot.echo", agent.Addr())
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
	wantList := regexp.MustCompile(`^consul@ go\.micro\.bot\.echo@` + v.defaultVersion + ` go\.micro\.srv\.greeter@latest$`)
	if got := strings.Join(names(list), " "); !wantList.MatchString(got) {
		t.Errorf("ListServices = %v, want %v", got, wantList)
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

// TestGoMicroReadsOurs: go-micro's own registry (v1.8.0's, and go-plugins
// v1.5.1's on go-micro v1.16.0) reads what microbot writes into Consul:
// version, endpoints with their schemas, node address and metadata
// (protocol=mucp among them, so go-micro's client calls the node with its
// current protocol). An IPv6 node is read with brackets by go-plugins'
// registry, without by go-micro v1.8.0's (README: what does not work).
func TestGoMicroReadsOurs(t *testing.T) {
	for _, v := range gmVersions {
		t.Run(v.name, func(t *testing.T) { testGoMicroReadsOurs(t, v) })
	}
}

func testGoMicroReadsOurs(t *testing.T, v gmVersion) {
	agent := consultest.Start(t)
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))
	svc := greeter("go.micro.srv.ours", "1.2.3", "ours-1")
	svc.Nodes[0].Metadata = map[string]string{"protocol": "mucp", "transport": "http", "server": "mucp", "registry": "consul"}
	if err := r.Register(ctxT(t), svc); err != nil {
		t.Fatal(err)
	}
	six := greeter("go.micro.srv.six", "1.0.0", "six-1")
	six.Nodes[0].Address = "[::1]:4000"
	if err := r.Register(ctxT(t), six); err != nil {
		t.Fatal(err)
	}
	client := gomicrotest.StartClientOf(t, v.client, agent.Addr())
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

	raw, err = client.GetService("go.micro.srv.six")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &got); err != nil || len(got) != 1 || len(got[0].Nodes) != 1 || got[0].Nodes[0].Address != v.ipv6 {
		t.Errorf("go-micro %s reads the IPv6 node as %s, want address %s", v.name, raw, v.ipv6)
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

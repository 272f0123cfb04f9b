package framework_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/internal/testenv"
)

// runCLI parses args with the framework's flags plus extra, as a program
// with its own cli.App does, and hands the context to svc.InitCLI.
func runCLI(t *testing.T, svc *framework.Service, args ...string) error {
	t.Helper()
	app := &cli.App{
		Name:      "test",
		Writer:    io.Discard,
		ErrWriter: io.Discard,
		Flags:     append(framework.Flags(), &cli.StringFlag{Name: "own"}),
		Action:    svc.InitCLI,
	}
	return app.Run(append([]string{"test"}, args...))
}

func TestInitCLI(t *testing.T) {
	t.Setenv("MICRO_CLIENT_RETRIES", "4")
	svc := framework.NewService(
		framework.Name("code.name"),
		framework.Version("1.0"),
		framework.RegistryName("memory"),
		framework.RegisterTTL(time.Minute),
	)
	err := runCLI(t, svc,
		"--register_ttl=30", "--register_interval=1m30s", "--selector=roundrobin",
		"--client_request_timeout=2.5", "--server_version=2.0", "--server_address=127.0.0.1:0",
		"--server_metadata=a=1", "--server_metadata=b=x=y", "--server_max_body_size=512KiB", "--server_max_conns=64", "--own=x")
	if err != nil {
		t.Fatal(err)
	}
	o := svc.Options()
	checks := []struct {
		what      string
		got, want any
	}{
		{"name kept from code", o.Name, "code.name"},
		{"version from flag", o.Version, "2.0"},
		{"registry kept from code", o.RegistryName, "memory"},
		{"ttl in seconds", o.RegisterTTL, 30 * time.Second},
		{"interval as duration", o.RegisterInterval, 90 * time.Second},
		{"selector", o.Selector, "roundrobin"},
		{"retries from env", o.ClientRetries, 4},
		{"timeout in fractional seconds", o.ClientRequestTimeout, 2500 * time.Millisecond},
		{"metadata", o.Metadata["a"] + "," + o.Metadata["b"], "1,x=y"},
		{"max body size", o.MaxBodySize, int64(512 << 10)},
		{"max conns", o.MaxConns, 64},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if got := svc.Registry().String(); got != "memory" {
		t.Errorf("registry %s, want memory", got)
	}
	if got := svc.Client().Options().RequestTimeout; got != 2500*time.Millisecond {
		t.Errorf("client timeout %v", got)
	}
}

func TestInitCLIErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--registry=nope"}, `registry "nope": unknown (have [`},
		{[]string{"--selector=fastest"}, `selector "fastest": unknown (have [random roundrobin])`},
		{[]string{"--register_ttl=soon"}, `"soon" is neither seconds nor a duration like 30s`},
		{[]string{"--server_max_body_size=lots"}, `"lots" is not a positive size`},
		{[]string{"--server_max_conns=0"}, `--server_max_conns 0: want a positive number of connections`},
		{[]string{"--server_metadata=novalue"}, `--server_metadata "novalue": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			svc := framework.NewService(framework.Name("x"), framework.RegistryName("memory"))
			err := runCLI(t, svc, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// flaky wraps a registry and fails the first n Register calls.
type flaky struct {
	registry.Registry
	fails atomic.Int32
}

func (f *flaky) Register(ctx context.Context, s *registry.Service, opts ...registry.RegisterOption) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("registry down")
	}
	return f.Registry.Register(ctx, s, opts...)
}

func TestRegistrationLifecycle(t *testing.T) {
	mem := memory.New()
	reg := &flaky{Registry: mem}
	reg.fails.Store(2) // the first registration and the first retry fail
	ctx, cancel := context.WithCancel(context.Background())
	svc := framework.NewService(
		framework.Name("go.micro.srv.life"),
		framework.Registry(reg),
		framework.RegisterTTL(2*time.Second),
		framework.RegisterInterval(100*time.Millisecond),
		framework.Context(ctx),
	)
	ran := make(chan error, 1)
	go func() { ran <- svc.Run() }()

	registered := func() bool {
		s, err := mem.GetService(context.Background(), "go.micro.srv.life")
		return err == nil && len(s) == 1 && len(s[0].Nodes) == 1
	}
	testenv.Eventually(t, 20*time.Second, "the node registered despite the failed first attempts", registered)
	// It stays registered well past its TTL, thanks to re-registration.
	for range 3 {
		time.Sleep(time.Second)
		if !registered() {
			t.Fatal("the node expired although the service re-registers it")
		}
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if registered() {
		t.Error("the node is still registered after Run returned")
	}
}

type Echo struct{}

type Msg struct {
	Text string `json:"text"`
}

func (Echo) Say(ctx context.Context, req *Msg, rsp *Msg) error {
	rsp.Text = req.Text
	return nil
}

func TestStartCallStop(t *testing.T) {
	mem := memory.New()
	newSvc := func() *framework.Service {
		s := framework.NewService(framework.Name("go.micro.srv.echo"), framework.Registry(mem))
		if err := s.Server().Handle(Echo{}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newSvc(), newSvc()
	for _, s := range []*framework.Service{a, b} {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	caller := framework.NewService(framework.Registry(mem))
	for range 10 {
		var rsp Msg
		if err := caller.Client().Call(context.Background(), "go.micro.srv.echo", "Echo.Say", &Msg{"hi"}, &rsp); err != nil || rsp.Text != "hi" {
			t.Fatalf("Call = %q, %v", rsp.Text, err)
		}
	}
	svcs, _ := mem.GetService(context.Background(), "go.micro.srv.echo")
	if len(svcs) != 1 || len(svcs[0].Nodes) != 2 {
		t.Fatalf("registered %+v, want two nodes", svcs)
	}
	for _, s := range []*framework.Service{a, b} {
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mem.GetService(context.Background(), "go.micro.srv.echo"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("after Stop: %v, want not found", err)
	}
	if err := framework.NewService(framework.RegistryName("memory")).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no name") {
		t.Errorf("Start without a name = %v", err)
	}
}

func TestFlagsHaveEnvVars(t *testing.T) {
	for _, f := range framework.Flags() {
		name := f.Names()[0]
		ev, ok := f.(interface{ GetEnvVars() []string })
		if !ok || len(ev.GetEnvVars()) != 1 || ev.GetEnvVars()[0] != "MICRO_"+strings.ToUpper(name) {
			t.Errorf("flag --%s lacks its MICRO_ environment variable", name)
		}
	}
}

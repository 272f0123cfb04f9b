package framework_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/framework"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/internal/testenv"
)

// flagOptions parses args with the framework's flags plus one of its own,
// as a program with its own cli.App does, and returns FlagOptions.
func flagOptions(t *testing.T, args ...string) ([]framework.Option, error) {
	t.Helper()
	var opts []framework.Option
	app := &cli.App{
		Name:      "test",
		Writer:    io.Discard,
		ErrWriter: io.Discard,
		Flags:     append(framework.Flags(), &cli.StringFlag{Name: "own"}),
		Action: func(c *cli.Context) error {
			var err error
			opts, err = framework.FlagOptions(c)
			return err
		},
	}
	err := app.Run(append([]string{"test"}, args...))
	return opts, err
}

func TestFlagOptions(t *testing.T) {
	t.Setenv("MICRO_CLIENT_RETRIES", "4")
	flagOpts, err := flagOptions(t,
		"--register_ttl=30", "--register_interval=1m30s", "--selector=roundrobin",
		"--client_request_timeout=2.5", "--server_version=2.0", "--server_address=127.0.0.1:0",
		"--server_metadata=a=1", "--server_metadata=b=x=y", "--server_max_body_size=512KiB", "--server_max_conns=64", "--own=x")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := framework.NewService(append([]framework.Option{
		framework.WithName("code.name"),
		framework.WithVersion("1.0"),
		framework.WithRegistryName("memory"),
		framework.WithRegisterTTL(time.Minute),
		framework.WithMetadata(map[string]string{"a": "0", "c": "3"}),
	}, flagOpts...)...)
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
		{"metadata from flags over code's", o.Metadata["a"] + "," + o.Metadata["b"] + "," + o.Metadata["c"], "1,x=y,3"},
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

// TestWithArgs: the command line given with WithArgs overrides the options
// set in code, wherever it stands.
func TestWithArgs(t *testing.T) {
	dir := t.TempDir()
	svc, err := framework.NewService(
		framework.WithArgs([]string{"svc", "--registry=local", "--registry_address=" + dir, "--server_name=from.flag"}),
		framework.WithName("from.code"),
		framework.WithRegistryName("memory"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Name() != "from.flag" || svc.Registry().String() != "local" {
		t.Errorf("service %s on %s, want from.flag on local", svc.Name(), svc.Registry())
	}
	if _, err := framework.NewService(framework.WithArgs([]string{"svc", "--help"})); !errors.Is(err, framework.ErrHelp) {
		t.Errorf("--help: err = %v, want ErrHelp", err)
	}
}

// A local registry directory others may write to is refused unless
// --registry_shared_dir (or its environment variable) says it is shared on
// purpose.
func TestRegistrySharedDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	args := []string{"svc", "--registry=local", "--registry_address=" + dir}
	if _, err := framework.NewService(framework.WithName("x"), framework.WithArgs(args)); err == nil ||
		!strings.Contains(err.Error(), "writable by others") || !strings.Contains(err.Error(), "--registry_shared_dir") {
		t.Errorf("an open directory: %v", err)
	}
	if _, err := framework.NewService(framework.WithName("x"), framework.WithArgs(append(args, "--registry_shared_dir"))); err != nil {
		t.Errorf("with --registry_shared_dir: %v", err)
	}
	t.Setenv("MICRO_REGISTRY_SHARED_DIR", "true")
	if _, err := framework.NewService(framework.WithName("x"), framework.WithArgs(args)); err != nil {
		t.Errorf("with MICRO_REGISTRY_SHARED_DIR: %v", err)
	}
}

func TestNewServiceErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--registry=nope"}, `registry "nope": unknown (have [consul local memory])`},
		{[]string{"--registry=local", "--registry_address=a,b"}, "local registry: one directory expected"},
		{[]string{"--selector=fastest"}, `selector "fastest": unknown (have [random roundrobin])`},
		{[]string{"--register_ttl=soon"}, `"soon" is neither seconds nor a duration like 30s`},
		{[]string{"--server_max_body_size=lots"}, `"lots" is not a positive size`},
		{[]string{"--server_max_conns=0"}, `--server_max_conns 0: want a positive number of connections`},
		{[]string{"--server_metadata=novalue"}, `--server_metadata "novalue": want key=value`},
		{[]string{"--client_retries=-1"}, "negative retries"},
		{[]string{"--server_advertise=nowhere"}, `advertised address "nowhere": want host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			args := append([]string{"svc"}, tt.args...)
			svc, err := framework.NewService(framework.WithName("x"), framework.WithRegistryName("memory"), framework.WithArgs(args))
			if err == nil || !strings.Contains(err.Error(), tt.want) || svc != nil {
				t.Errorf("NewService = %v, %v; want an error containing %q", svc, err, tt.want)
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
	svc, err := framework.NewService(
		framework.WithName("go.micro.srv.life"),
		framework.WithRegistry(reg),
		framework.WithRegisterTTL(2*time.Second),
		framework.WithRegisterInterval(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()

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
	newSvc := func(opts ...framework.Option) *framework.Service {
		s, err := framework.NewService(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	newEcho := func() *framework.Service {
		s := newSvc(framework.WithName("go.micro.srv.echo"), framework.WithRegistry(mem))
		if err := s.Server().Handle(Echo{}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newEcho(), newEcho()
	for _, s := range []*framework.Service{a, b} {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	caller := newSvc(framework.WithRegistry(mem))
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
	if err := newSvc(framework.WithRegistryName("memory")).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no name") {
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

// watchCounter is a registry that counts the watches open on it.
type watchCounter struct {
	registry.Registry
	opened, open atomic.Int32
}

func (r *watchCounter) Watch(ctx context.Context, opts ...registry.WatchOption) (registry.Watcher, error) {
	w, err := r.Registry.Watch(ctx, opts...)
	if err != nil {
		return nil, err
	}
	r.opened.Add(1)
	r.open.Add(1)
	return &countedWatcher{Watcher: w, r: r}, nil
}

type countedWatcher struct {
	registry.Watcher
	r    *watchCounter
	once sync.Once
}

func (w *countedWatcher) Stop() {
	w.Watcher.Stop()
	w.once.Do(func() { w.r.open.Add(-1) })
}

// Stop ends the registry watch of the selector the service built (it was
// left running), whether the service was started or only called out; only
// the first Stop does anything, and the service cannot start again.
func TestStopEndsTheSelectorWatch(t *testing.T) {
	for _, start := range []bool{true, false} {
		t.Run(map[bool]string{true: "started", false: "client only"}[start], func(t *testing.T) {
			reg := &watchCounter{Registry: memory.New()}
			echo, err := framework.NewService(framework.WithName("go.micro.srv.echo"), framework.WithRegistry(reg))
			if err != nil {
				t.Fatal(err)
			}
			if err := echo.Server().Handle(Echo{}); err != nil {
				t.Fatal(err)
			}
			if err := echo.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { echo.Stop(context.Background()) }) //nolint:errcheck
			svc, err := framework.NewService(framework.WithName("go.micro.srv.caller"), framework.WithRegistry(reg))
			if err != nil {
				t.Fatal(err)
			}
			if start {
				if err := svc.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			var rsp Msg
			if err := svc.Client().Call(context.Background(), "go.micro.srv.echo", "Echo.Say", &Msg{"hi"}, &rsp); err != nil {
				t.Fatal(err)
			}
			// The first Select starts the watch (in the background).
			testenv.Eventually(t, 30*time.Second, "the selector's watch starts", func() bool { return reg.opened.Load() == 1 })
			if err := svc.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := reg.open.Load(); n != 0 {
				t.Fatalf("after Stop %d watch(es) still open", n)
			}
			if err := svc.Stop(context.Background()); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if err := svc.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot start again") {
				t.Errorf("Start after Stop: %v", err)
			}
			if err := svc.Client().Call(context.Background(), "go.micro.srv.echo", "Echo.Say", &Msg{"hi"}, &rsp); err == nil || !strings.Contains(err.Error(), "selector closed") {
				t.Errorf("Call after Stop: %v", err)
			}
			if n := reg.opened.Load(); n != 1 {
				t.Errorf("%d watches opened, want 1", n)
			}
		})
	}
}

// Stop closes the registry the service built (--registry local): its
// background removal of expired files runs no more, so the directory can
// go. A registry the caller gave stays the caller's: Stop leaves it open.
func TestStopClosesTheRegistryItBuilt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		given bool // the caller gives the registry
	}{
		{"built by the service", false},
		{"given by the caller", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "reg")
			opts := []framework.Option{framework.WithName("go.micro.srv.stopper"), framework.WithBrokerName("memory")}
			if tc.given {
				r, err := local.New(local.WithDir(dir))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() }) //nolint:errcheck
				opts = append(opts, framework.WithRegistry(r))
			} else {
				opts = append(opts, framework.WithRegistryName("local", dir))
			}
			svc, err := framework.NewService(opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := svc.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			reg := svc.Registry()

			// Another process's node expires in the directory, and the
			// service's registry comes across it.
			other, err := local.New(local.WithDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { other.Close() }) //nolint:errcheck
			node := &registry.Service{Name: "go.micro.srv.other", Nodes: []*registry.Node{{ID: "n1", Address: "127.0.0.1:1"}}}
			if err := other.Register(ctx, node, registry.WithTTL(time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 20*time.Second, "the node expired", func() bool {
				_, err := reg.GetService(ctx, node.Name)
				return errors.Is(err, registry.ErrNotFound)
			})
			// Close waits for a removal under way: after it, the file is
			// gone if the read started one.
			if err := reg.(io.Closer).Close(); err != nil {
				t.Fatal(err)
			}
			_, err = os.Lstat(filepath.Join(dir, "go.micro.srv.other@n1.json"))
			switch removed := errors.Is(err, fs.ErrNotExist); {
			case err != nil && !removed:
				t.Fatal(err)
			case removed && !tc.given:
				t.Error("the registry the service built still removed expired files after Stop: Stop did not close it")
			case !removed && tc.given:
				t.Error("the caller's registry no longer removes expired files after the service's Stop: Stop closed it")
			}
		})
	}
}

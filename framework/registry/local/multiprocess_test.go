package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/internal/testenv"
)

// The multi-process tests run this test binary again as child processes
// (TestHelperProcess with helperEnv set), all on one directory.
const (
	helperEnv = "MICROBOT_LOCAL_HELPER" // the child's mode
	dirEnv    = "MICROBOT_LOCAL_DIR"
	argEnv    = "MICROBOT_LOCAL_ARG" // a number whose meaning depends on the mode
	linePfx   = "MP "                // starts the lines a child means for its parent
)

// TestHelperProcess is a child process of the multi-process tests, not a
// test of its own: without helperEnv it does nothing.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	arg, _ := strconv.Atoi(os.Getenv(argEnv))
	r, err := New(WithDir(os.Getenv(dirEnv)))
	if err == nil {
		switch mode {
		case "churn":
			err = childChurn(r, arg)
		case "watch":
			err = childWatch(r)
		case "hold":
			err = childHold(r, arg)
		default:
			err = fmt.Errorf("unknown mode %q", mode)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

const (
	churnService = "mp.churn"
	churnNodes   = 20
	holdService  = "mp.held"
)

// churnNode is node i of child c: everything in it is checked at the end.
func churnNode(c, i int) *registry.Node {
	return &registry.Node{
		ID:       fmt.Sprintf("%s-c%d-n%d", churnService, c, i),
		Address:  fmt.Sprintf("127.0.0.1:%d", 30000+c*100+i),
		Metadata: map[string]string{"child": strconv.Itoa(c), "node": strconv.Itoa(i)},
	}
}

func churnSvc(nodes ...*registry.Node) *registry.Service {
	return &registry.Service{
		Name: churnService, Version: "1",
		Endpoints: []*registry.Endpoint{{Name: "Churn.Do", Request: &registry.Value{Name: "Req", Type: "Req", Values: []*registry.Value{{Name: "n", Type: "int"}}}}},
		Nodes:     nodes,
	}
}

// childChurn registers churnNodes nodes one by one, refreshes them, and
// deregisters the odd ones, while the other children do the same.
func childChurn(r *Registry, c int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for round := range 2 { // the second round refreshes
		for i := range churnNodes {
			if err := r.Register(ctx, churnSvc(churnNode(c, i)), registry.WithTTL(10*time.Minute)); err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
			svcs, err := r.GetService(ctx, churnService)
			if err != nil {
				return err
			}
			if err := checkChurn(svcs); err != nil {
				return err
			}
		}
	}
	for i := 1; i < churnNodes; i += 2 {
		if err := r.Deregister(ctx, churnSvc(churnNode(c, i))); err != nil {
			return err
		}
	}
	return nil
}

// checkChurn fails if a node read back differs from what was registered.
func checkChurn(svcs []*registry.Service) error {
	for _, s := range svcs {
		for _, n := range s.Nodes {
			var c, i int
			if _, err := fmt.Sscanf(strings.TrimPrefix(n.ID, churnService), "-c%d-n%d", &c, &i); err != nil {
				return fmt.Errorf("unexpected node %q", n.ID)
			}
			if want := churnSvc(churnNode(c, i)); !registry.Equal(&registry.Service{Name: s.Name, Version: s.Version, Endpoints: s.Endpoints, Nodes: []*registry.Node{n}}, want) {
				return fmt.Errorf("node %q read back corrupted: %+v", n.ID, n)
			}
		}
	}
	return nil
}

// childWatch prints the events of churnService until its stdin closes.
func childWatch(r *Registry) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := r.Watch(ctx, registry.WithService(churnService))
	if err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Println(linePfx + "ready")
	for {
		res, err := w.Next()
		if errors.Is(err, registry.ErrWatcherStopped) {
			return nil
		}
		if err != nil {
			return err
		}
		b, _ := json.Marshal(res)
		fmt.Println(linePfx + string(b))
	}
}

// childHold registers node holdService-<n> with a TTL of 3s and refreshes it
// until killed.
func childHold(r *Registry, n int) error {
	const ttl = 3 * time.Second
	s := &registry.Service{Name: holdService, Version: "1", Nodes: []*registry.Node{{ID: fmt.Sprintf("%s-%d", holdService, n), Address: fmt.Sprintf("127.0.0.1:%d", 31000+n)}}}
	// Refresh every sixth of the TTL: a refresh may be late by most of it
	// on a busy machine before the node expires by mistake.
	for first := true; ; first = false {
		ctx, cancel := context.WithTimeout(context.Background(), ttl)
		err := r.Register(ctx, s, registry.WithTTL(ttl))
		cancel()
		if err != nil {
			return err
		}
		if first {
			fmt.Println(linePfx + "registered")
		}
		time.Sleep(ttl / 6)
	}
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its lines starting with linePfx, without it
	done  chan error  // its exit
}

func startChild(t *testing.T, dir, mode string, arg int) *child {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, dirEnv+"="+dir, argEnv+"="+strconv.Itoa(arg))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.StartCommand(cmd); err != nil {
		cancel()
		t.Fatalf("starting a child: %v", err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 10000), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), linePfx); ok {
				c.lines <- line
			}
		}
		close(c.lines)
		err := cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		c.done <- err
		cancel()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ctx.Done()
	})
	return c
}

// line waits for the child's next line.
func (c *child) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("child exited early: %v", <-c.done)
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no line from the child within 20s")
	}
	return ""
}

// model replays watch events into the node IDs of one version, counting
// how often each node appeared.
type model struct {
	ids      []string
	appeared map[string]int
}

func (m *model) apply(res *registry.Result) {
	if m.appeared == nil {
		m.appeared = map[string]int{}
	}
	old := m.ids
	m.ids = nil
	if res.Action != registry.Delete {
		for _, n := range res.Service.Nodes {
			m.ids = append(m.ids, n.ID)
			if !slices.Contains(old, n.ID) {
				m.appeared[n.ID]++
			}
		}
		slices.Sort(m.ids)
	}
}

// flapped returns the nodes that appeared more than once: each was
// registered, refreshed unchanged, and maybe deregistered, so a node that
// went and came back was lost or misread for a while.
func (m *model) flapped() map[string]int {
	f := map[string]int{}
	for id, n := range m.appeared {
		if n > 1 {
			f[id] = n
		}
	}
	return f
}

// watchDir returns a Registry on dir and its watch of service, stopped when
// the test ends.
func watchDir(t *testing.T, dir, service string) (*Registry, registry.Watcher) {
	t.Helper()
	r, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Watch(t.Context(), registry.WithService(service))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return r, w
}

// Several processes register, refresh and deregister nodes of one service
// at once, while another process and this one watch: nothing is lost or
// corrupted, and both watchers' events add up to the final state.
func TestMultiProcessChurn(t *testing.T) {
	const children = 4
	dir := t.TempDir()
	ctx := t.Context()
	r, w := watchDir(t, dir, churnService)
	var mine model
	var mu sync.Mutex
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				return
			}
			mu.Lock()
			mine.apply(res)
			mu.Unlock()
		}
	}()

	watcher := startChild(t, dir, "watch", 0)
	if l := watcher.line(t); l != "ready" {
		t.Fatalf("watch child said %q", l)
	}
	var churners []*child
	for c := range children {
		churners = append(churners, startChild(t, dir, "churn", c))
	}
	for c, ch := range churners {
		select {
		case err := <-ch.done:
			if err != nil {
				t.Fatalf("churn child %d: %v", c, err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("churn child %d still running after 2 minutes", c)
		}
	}

	var want []string
	wantNodes := map[string]*registry.Node{}
	for c := range children {
		for i := 0; i < churnNodes; i += 2 {
			n := churnNode(c, i)
			want = append(want, n.ID)
			wantNodes[n.ID] = n
		}
	}
	slices.Sort(want)
	got, err := r.GetService(ctx, churnService)
	if err != nil {
		t.Fatal(err)
	}
	wantSvc := churnSvc()
	for _, n := range want {
		wantSvc.Nodes = append(wantSvc.Nodes, wantNodes[n])
	}
	if len(got) != 1 || !registry.Equal(got[0], wantSvc) {
		t.Fatalf("after the churn GetService = %s\nwant %s", describe(got), describe([]*registry.Service{wantSvc}))
	}

	testenv.Eventually(t, 20*time.Second, "this process's watch events add up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(mine.ids, want)
	})
	var theirs model
	for !slices.Equal(theirs.ids, want) {
		var res registry.Result
		if err := json.Unmarshal([]byte(watcher.line(t)), &res); err != nil {
			t.Fatal(err)
		}
		theirs.apply(&res)
	}
	watcher.stdin.Close()
	if err := <-watcher.done; err != nil {
		t.Fatalf("watch child: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for who, m := range map[string]*model{"this process": &mine, "the watch child": &theirs} {
		if f := m.flapped(); len(f) > 0 {
			t.Errorf("%s saw nodes go and come back (times appeared): %v", who, f)
		}
	}
}

// A process killed with SIGKILL cannot deregister: its node vanishes when
// its TTL passes, with a watch event, while the node of a process still
// running stays; its file is removed.
func TestMultiProcessKilled(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	r, w := watchDir(t, dir, holdService)
	events := make(chan *registry.Result, 100)
	go func() {
		for {
			res, err := w.Next()
			if err != nil {
				close(events)
				return
			}
			events <- res
		}
	}()
	expect := func(action string, ids ...string) {
		t.Helper()
		select {
		case res, ok := <-events:
			if !ok {
				t.Fatal("watch ended")
			}
			var got []string
			for _, n := range res.Service.Nodes {
				got = append(got, n.ID)
			}
			if res.Action != action || !slices.Equal(got, ids) {
				t.Fatalf("event %s %v, want %s %v", res.Action, got, action, ids)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no event within 20s, want %s %v", action, ids)
		}
	}

	idA, idB := holdService+"-1", holdService+"-2"
	a := startChild(t, dir, "hold", 1)
	if l := a.line(t); l != "registered" {
		t.Fatalf("child a said %q", l)
	}
	expect(registry.Create, idA)
	b := startChild(t, dir, "hold", 2)
	if l := b.line(t); l != "registered" {
		t.Fatalf("child b said %q", l)
	}
	expect(registry.Update, idA, idB)

	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	expect(registry.Update, idB) // a expired, b refreshes on

	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
	expect(registry.Delete, idB)
	if _, err := r.GetService(ctx, holdService); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService after both died = %v, want ErrNotFound", err)
	}
	testenv.Eventually(t, 20*time.Second, "the files of the dead removed", func() bool {
		_, _ = r.GetService(ctx, holdService)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), servicePrefix(holdService)) {
				return false
			}
		}
		return true
	})
}

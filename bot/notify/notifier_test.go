package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/registry"
	regmemory "github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
	pb "github.com/microbot/microbot/proto/bot"
)

// wait bounds every wait of these tests (a loaded machine is slow).
const wait = 20 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// fakePoster records posts; with a gate, each post waits for a token.
type fakePoster struct {
	mu    sync.Mutex
	posts []input.Post
	at    []time.Time
	gate  chan struct{}
	fail  error
}

func (f *fakePoster) Post(ctx context.Context, p *input.Post) (input.Posted, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return input.Posted{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return input.Posted{}, f.fail
	}
	f.posts = append(f.posts, *p)
	f.at = append(f.at, time.Now())
	id := fmt.Sprintf("%d.000", len(f.posts))
	return input.Posted{ID: id, Thread: cmpOrStr(p.Thread, id)}, nil
}

func cmpOrStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (f *fakePoster) all() []input.Post {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]input.Post(nil), f.posts...)
}

// waitPosts waits for at least n posts and returns them all.
func (f *fakePoster) waitPosts(t *testing.T, n int) []input.Post {
	t.Helper()
	testenv.Eventually(t, wait, fmt.Sprintf("%d posts", n), func() bool { return len(f.all()) >= n })
	return f.all()
}

// counts is a Hook that counts outcomes.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) hook(topic, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[outcome]++
	c.n[topic+" "+outcome]++
}

func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// world is a notifier on a memory broker and a memory registry's KV, with
// a console and a Slack poster.
type world struct {
	t       *testing.T
	ctx     context.Context
	bus     *memory.Bus
	pub     broker.Broker
	kv      registry.KV
	store   *Store
	n       *Notifier
	console *fakePoster
	slack   *fakePoster
	counts  *counts
}

func newWorld(t *testing.T, opts ...Option) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	t.Cleanup(cancel)
	kv, _ := registry.KVOf(regmemory.New())
	w := &world{t: t, ctx: ctx, bus: memory.NewBus(), kv: kv, console: &fakePoster{}, slack: &fakePoster{}, counts: &counts{}}
	w.store = NewStore(kv, quiet)
	w.pub = w.broker()
	w.n = w.notifier(opts...)
	return w
}

// broker returns a connected broker on the world's bus.
func (w *world) broker() broker.Broker {
	b := memory.New(memory.WithBus(w.bus), memory.WithLogger(quiet))
	if err := b.Connect(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = b.Disconnect(context.Background()) })
	return b
}

// notifier starts a notifier of the world's store on a broker of its own.
func (w *world) notifier(opts ...Option) *Notifier {
	w.t.Helper()
	n, err := New(w.broker(), w.store, map[string]input.Poster{"shell": w.console, "slack": w.slack},
		append([]Option{WithLogger(quiet), WithInterval(0), WithHook(w.counts.hook)}, opts...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			w.t.Errorf("Run: %v", err)
		}
	})
	return n
}

var console = Place{Input: "shell", Room: "console"}

// watch stores a watch and puts it in effect, as the watch command does.
func (w *world) watch(n *Notifier, topic string, p Place) {
	w.t.Helper()
	if _, err := w.store.Add(w.ctx, Watch{Topic: topic, Place: p, By: "shell:test", Since: time.Now()}); err != nil {
		w.t.Fatal(err)
	}
	if err := n.Refresh(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	w.waitSubscribed(n, topic)
}

func (w *world) waitSubscribed(n *Notifier, topic string) {
	w.t.Helper()
	testenv.Eventually(w.t, wait, "a subscription to "+topic, func() bool {
		for _, ts := range n.Topics() {
			if ts.Topic == topic && ts.Subscribed {
				return true
			}
		}
		return false
	})
}

func (w *world) publish(topic string, header map[string]string, body []byte) {
	w.t.Helper()
	if err := w.pub.Publish(w.ctx, topic, &broker.Message{Header: header, Body: body}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) publishNote(topic string, n *pb.Notification) {
	w.t.Helper()
	b, err := proto.Marshal(n)
	if err != nil {
		w.t.Fatal(err)
	}
	w.publish(topic, map[string]string{"Content-Type": "application/protobuf", pb.HeaderMessageType: pb.NotificationType}, b)
}

// TestWatchPublishPost: a watched topic's notifications reach the room
// that watches it, rendered, in the thread of their thread key; JSON ones
// too; two rooms watching one topic share one subscription.
func TestWatchPublishPost(t *testing.T) {
	w := newWorld(t)
	w.watch(w.n, "deploys", console)
	w.watch(w.n, "deploys", Place{Input: "slack", Room: "C1"})
	if got := len(w.n.Topics()); got != 1 {
		t.Fatalf("%d subscriptions for one topic watched by two rooms", got)
	}

	w.publishNote("deploys", &pb.Notification{Title: "deploy of web v2 started", Severity: pb.Notification_INFO,
		ThreadKey: "deploy-web-v2", Source: "ci", Fields: []*pb.Notification_Field{{Name: "service", Value: "web"}}})
	first := w.slack.waitPosts(t, 1)[0]
	if first.Room != "C1" || first.Title != "deploy of web v2 started" || first.Severity != input.SeverityInfo ||
		first.Source != "ci" || len(first.Fields) != 1 || first.Thread != "" {
		t.Fatalf("first post %+v", first)
	}
	w.publish("deploys", map[string]string{"Content-Type": "application/json"},
		[]byte(`{"title": "deploy of web v2 finished", "severity": "ok", "thread_key": "deploy-web-v2"}`))
	second := w.slack.waitPosts(t, 2)[1]
	if second.Thread != "1.000" || second.Severity != input.SeverityOK {
		t.Errorf("second post %+v: want it in the first's thread 1.000, OK", second)
	}
	if posts := w.console.waitPosts(t, 2); posts[0].Room != "console" || posts[1].Title != "deploy of web v2 finished" {
		t.Errorf("console posts %+v", posts)
	}
	if w.counts.get("received") != 2 || w.counts.get("posted") != 4 {
		t.Errorf("counts %v: want 2 received, 4 posted", w.counts.n)
	}
}

// TestUnwatchStops: once the last room unwatched a topic, the notifier has
// no subscription to it and its events go nowhere.
func TestUnwatchStops(t *testing.T) {
	w := newWorld(t)
	w.watch(w.n, "a", console)
	w.watch(w.n, "b", console)
	if removed, err := w.store.Remove(w.ctx, "a", console); err != nil || !removed {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	if err := w.n.Refresh(w.ctx); err != nil {
		t.Fatal(err)
	}
	for _, ts := range w.n.Topics() {
		if ts.Topic == "a" {
			t.Fatalf("still subscribed to a: %+v", ts)
		}
	}
	w.publish("a", nil, []byte(`{"title": "on a"}`))
	w.publish("b", nil, []byte(`{"title": "on b"}`))
	posts := w.console.waitPosts(t, 1)
	if len(posts) != 1 || posts[0].Title != "on b" {
		t.Errorf("posts %+v: want only the one on b", posts)
	}
}

// TestWatchesFromTheStore: a watch written by another bot (in the store)
// is followed without a Refresh, and so is its removal.
func TestWatchesFromTheStore(t *testing.T) {
	w := newWorld(t)
	if _, err := w.store.Add(w.ctx, Watch{Topic: "x", Place: console}); err != nil {
		t.Fatal(err)
	}
	w.waitSubscribed(w.n, "x")
	if _, err := w.store.Remove(w.ctx, "x", console); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, wait, "the subscription to end", func() bool { return len(w.n.Topics()) == 0 })
}

// TestStormFolded: while a room is busy, a few events wait their turn and
// the rest are folded into a summary; every event is counted.
func TestStormFolded(t *testing.T) {
	w := newWorld(t, WithRoomQueue(3))
	w.console.gate = make(chan struct{})
	w.watch(w.n, "storm", console)
	publish := func(i int) {
		w.publish("storm", map[string]string{"Content-Type": "application/json"}, fmt.Appendf(nil, `{"n": %d}`, i))
	}
	// The first event is being posted (the post waits at the gate) ...
	publish(0)
	testenv.Eventually(t, wait, "the first event taken for posting", func() bool { q, _ := w.n.Backlog(); return w.counts.get("received") == 1 && q == 0 })
	// ... while 100 more come: 3 wait their turn, 97 are folded.
	for i := 1; i <= 100; i++ {
		publish(i)
	}
	testenv.Eventually(t, wait, "101 events received", func() bool { return w.counts.get("received") == 101 })
	testenv.Eventually(t, wait, "97 events folded", func() bool { return w.counts.get("folded") == 97 })
	close(w.console.gate)
	posts := w.console.waitPosts(t, 5)
	var got []string
	for _, p := range posts {
		got = append(got, strings.ReplaceAll(p.Text, "\n", ""))
	}
	// Three posts, then the summary (every roomQueue posts while folding
	// goes on, or when the queue is empty), then the last queued.
	want := []string{`{  "n": 0}`, `{  "n": 1}`, `{  "n": 2}`, "+97 more on storm", `{  "n": 3}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("posts %q, want %q", got, want)
	}
	testenv.Eventually(t, wait, "4 events posted", func() bool { return w.counts.get("posted") == 4 })
	if q, f := w.n.Backlog(); q != 0 || f != 0 {
		t.Errorf("backlog %d queued, %d folded after the storm", q, f)
	}
}

// TestPacing: posts to one room are at least the interval apart (posts to
// another room are not held up by it).
func TestPacing(t *testing.T) {
	const interval = 100 * time.Millisecond
	w := newWorld(t, WithInterval(interval), WithRoomQueue(10))
	w.watch(w.n, "t", console)
	for i := range 4 {
		w.publish("t", nil, fmt.Appendf(nil, "%d", i))
	}
	w.console.waitPosts(t, 4)
	w.console.mu.Lock()
	at := append([]time.Time(nil), w.console.at...)
	w.console.mu.Unlock()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < interval {
			t.Errorf("posts %d and %d %v apart, less than the interval %v", i-1, i, gap, interval)
		}
	}
}

// TestPostFailureDropped: a post that fails is counted dropped and the
// room goes on.
func TestPostFailureDropped(t *testing.T) {
	w := newWorld(t)
	w.console.fail = errors.New("no")
	w.watch(w.n, "t", console)
	w.watch(w.n, "t", Place{Input: "xmpp", Room: "r@c"}) // no such poster here
	w.publish("t", nil, []byte("x"))
	testenv.Eventually(t, wait, "2 drops", func() bool { return w.counts.get("dropped") == 2 })
}

// TestQueueGroup: two bots in one queue group, watching the same topics
// (one store): each event is posted once.
func TestQueueGroup(t *testing.T) {
	w := newWorld(t, WithQueueGroup("microbot"))
	other := w.notifier(WithQueueGroup("microbot"))
	w.watch(w.n, "t", console)
	w.waitSubscribed(other, "t")
	for i := range 10 {
		w.publish("t", nil, fmt.Appendf(nil, "%d", i))
	}
	w.console.waitPosts(t, 10)
	testenv.Eventually(t, wait, "10 events received, once each", func() bool { return w.counts.get("received") == 10 })
	if got := len(w.console.all()); got != 10 {
		t.Errorf("%d posts of 10 events", got)
	}
}

// TestRoutesFile: routes send a topic to rooms without a watch; a reload
// with a broken file keeps them, a good one replaces them.
func TestRoutesFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "routes.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("routes:\n  - topic: alerts\n    rooms: [slack:C9, shell:console]\n")
	w := newWorld(t, WithRoutesFile(file))
	w.waitSubscribed(w.n, "alerts")
	w.publish("alerts", nil, []byte("disk full"))
	if p := w.slack.waitPosts(t, 1)[0]; p.Room != "C9" || p.Text != "disk full" || p.Source != "alerts" {
		t.Errorf("post %+v", p)
	}
	w.console.waitPosts(t, 1)

	write("routes:\n  - topic: alerts\n    rooms: [irc:#ops]\n")
	if err := w.n.Reload(); err == nil || !strings.Contains(err.Error(), "routes.yaml:2: route 1: room irc:#ops") {
		t.Errorf("Reload of a broken file: %v", err)
	}
	if w.n.Routes().Len() != 2 {
		t.Errorf("the routes in effect changed after a broken reload: %d", w.n.Routes().Len())
	}
	write("routes:\n  - topic: deploys\n    rooms: slack:C9\n")
	if err := w.n.Reload(); err != nil {
		t.Fatal(err)
	}
	w.waitSubscribed(w.n, "deploys")
	testenv.Eventually(t, wait, "alerts unsubscribed", func() bool { return len(w.n.Topics()) == 1 })

	// A file everyone may write decides nothing: the reload is refused
	// and the routes in effect stay.
	if err := os.Chmod(file, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := w.n.Reload(); err == nil || !strings.Contains(err.Error(), "routes.yaml is writable by others") {
		t.Errorf("Reload of a file writable by everyone: %v", err)
	}
	if w.n.Routes().Len() != 1 {
		t.Errorf("the routes in effect changed after a refused reload: %d", w.n.Routes().Len())
	}
}

func TestParseRoutes(t *testing.T) {
	inputs := []string{"shell", "slack", "xmpp"}
	r, err := ParseRoutes("r.yaml", []byte(`
routes:
  - topic: alerts.prod
    rooms: [slack:C1, hipchat:Ops@Conference.example.org, slack:C1]
  - topic: alerts.prod
    rooms: shell:console
`), inputs)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(r.Topics(), r.Places("alerts.prod"))
	if want := "[alerts.prod] [slack:C1 xmpp:ops@conference.example.org shell:console]"; got != want {
		t.Errorf("routes %s, want %s", got, want)
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"empty", "", "r.yaml: the routes file is empty"},
		{"no routes", "routes: []\n", "r.yaml: no routes"},
		{"unknown field", "routes:\n  - topic: a\n    room: slack:C1\n", `r.yaml:3: unknown field "room" in a route`},
		{"top-level typo", "route:\n  - topic: a\n", `r.yaml:1: field route not found`},
		{"bad topic", "routes:\n  - topic: a b\n    rooms: slack:C1\n", `r.yaml:2: route 1: invalid topic "a b"`},
		{"wildcard", "routes:\n  - topic: alerts.*\n    rooms: slack:C1\n", `wildcard`},
		{"no rooms", "routes:\n  - topic: a\n", "r.yaml:2: route 1: topic a: no rooms"},
		{"room without input", "routes:\n  - topic: a\n    rooms: C1\n", `r.yaml:2: route 1: room "C1": want input:room`},
		{"input not running", "routes:\n  - topic: a\n    rooms: irc:#ops\n", `the bot posts on shell, slack, xmpp, not on "irc"`},
		{"not YAML", "routes: [\n", "r.yaml:1: did not find expected node content"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRoutes("r.yaml", []byte(tt.yaml), inputs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	kv, _ := registry.KVOf(regmemory.New())
	s := NewStore(kv, quiet)
	p := Place{Input: "xmpp", Room: "ops@conference.example.org/nick"} // a '/' in the room
	if added, err := s.Add(ctx, Watch{Topic: "a", Place: p}); err != nil || !added {
		t.Fatalf("Add = %v, %v", added, err)
	}
	if added, err := s.Add(ctx, Watch{Topic: "a", Place: p}); err != nil || added {
		t.Errorf("Add again = %v, %v; want not added", added, err)
	}
	if _, err := s.Add(ctx, Watch{Topic: "a b", Place: p}); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("Add of a bad topic: %v", err)
	}
	for i := 1; i < MaxWatchesPerRoom; i++ {
		if _, err := s.Add(ctx, Watch{Topic: fmt.Sprintf("t%d", i), Place: p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Add(ctx, Watch{Topic: "one.too.many", Place: p}); !errors.Is(err, ErrTooMany) {
		t.Errorf("Add past the limit: %v, want ErrTooMany", err)
	}
	if _, err := s.Add(ctx, Watch{Topic: "a", Place: console}); err != nil {
		t.Errorf("another room's watch: %v", err)
	}
	// Garbage in the store is skipped.
	if err := kv.Put(ctx, KeyPrefix+"junk", []byte("{")); err != nil {
		t.Fatal(err)
	}
	all, _, err := s.List(ctx, 0)
	if err != nil || len(all) != MaxWatchesPerRoom+1 {
		t.Fatalf("List = %d watches, %v", len(all), err)
	}
	if removed, err := s.Remove(ctx, "a", p); err != nil || !removed {
		t.Errorf("Remove = %v, %v", removed, err)
	}
	if removed, err := s.Remove(ctx, "a", p); err != nil || removed {
		t.Errorf("Remove again = %v, %v", removed, err)
	}
	if ws, _ := s.Of(ctx, console); len(ws) != 1 || ws[0].Topic != "a" {
		t.Errorf("the console's watches: %+v", ws)
	}
}

package bot_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/internal/testenv"
)

// room is a chat room in memory, as an XMPP room is: every message said
// reaches every connection in it, and the replies are kept.
type room struct {
	mu      sync.Mutex
	conns   map[*roomConn]string // -> the instance it belongs to
	replies []string             // "instance: text"
	most    int                  // the most connections at once
	changed chan struct{}
}

func newRoom() *room { return &room{conns: map[*roomConn]string{}, changed: make(chan struct{})} }

func (r *room) wake() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// say sends text to every connection in the room.
func (r *room) say(text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.events <- &input.Event{Input: "room", UserID: "u1", Room: "r1", Addressed: true, Text: text}
	}
}

// members returns the instances connected now.
func (r *room) members() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, who := range r.conns {
		out = append(out, who)
	}
	slices.Sort(out)
	return out
}

func (r *room) answers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.replies)
}

// waitFor waits until cond holds, re-checking at each change of the room.
func (r *room) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting until %s (members %v, answers %v)", what, r.members(), r.answers())
		}
	}
}

// roomInput is one instance's input on the room.
type roomInput struct {
	r    *room
	name string
}

func (in *roomInput) String() string { return "room" }

func (in *roomInput) Stream(ctx context.Context) (input.Conn, error) {
	c := &roomConn{r: in.r, who: in.name, events: make(chan *input.Event, 64), done: make(chan struct{})}
	in.r.mu.Lock()
	in.r.conns[c] = in.name
	in.r.most = max(in.r.most, len(in.r.conns))
	in.r.wake()
	in.r.mu.Unlock()
	return c, nil
}

type roomConn struct {
	r      *room
	who    string
	events chan *input.Event
	once   sync.Once
	done   chan struct{}
}

func (c *roomConn) Recv(ctx context.Context) (*input.Event, error) {
	select {
	case ev := <-c.events:
		return ev, nil
	case <-c.done:
		return nil, input.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *roomConn) Send(ctx context.Context, to *input.Event, rep *input.Reply) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if _, in := c.r.conns[c]; !in {
		return input.ErrClosed
	}
	c.r.replies = append(c.r.replies, c.who+": "+rep.Text)
	c.r.wake()
	return nil
}

func (c *roomConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.r.mu.Lock()
		delete(c.r.conns, c)
		c.r.wake()
		c.r.mu.Unlock()
	})
	return nil
}

// locker is bot.Locker on a Consul coordinator (cmd/microbot has its own).
type locker struct{ c *consul.Coordinator }

func (l locker) Lock(ctx context.Context, key string) (bot.Lease, error) {
	lk, err := l.c.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return lk, nil
}

// instance is one bot of the pair.
type instance struct {
	name   string
	ex     *bot.Exclusive
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	hooks  []string
}

func startInstance(t *testing.T, name string, r *room, addr string) *instance {
	t.Helper()
	reg, err := consul.New(consul.WithAddrs(addr), consul.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	co, err := consul.NewCoordinator(reg, consul.WithKeyPrefix("test/"+t.Name()+"/"), consul.WithPresenceTTL(2*time.Second),
		consul.WithCoordinatorLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	inst := &instance{name: name, done: make(chan struct{})}
	inst.ex = bot.NewExclusive(&roomInput{r: r, name: name}, locker{co}, "room/r1",
		bot.WithStepDownGrace(200*time.Millisecond),
		bot.WithExclusiveLogger(slog.New(slog.DiscardHandler)),
		bot.WithActiveHook(func(in string, active bool) {
			inst.mu.Lock()
			defer inst.mu.Unlock()
			inst.hooks = append(inst.hooks, fmt.Sprintf("%s %v", in, active))
		}))
	tb := command.NewTable()
	if err := tb.Register(&command.Command{Name: "ping", Usage: "ping", Run: func(ctx context.Context, req *command.Request) (*input.Reply, error) {
		return command.Text("pong " + req.Rest(0)), nil
	}}); err != nil {
		t.Fatal(err)
	}
	b := bot.New(tb, bot.WithInputs(inst.ex), bot.WithLogger(slog.New(slog.DiscardHandler)), bot.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	inst.cancel = cancel
	go func() {
		defer close(inst.done)
		b.Run(ctx)
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		co.Close(cctx)
	}()
	t.Cleanup(inst.stop)
	return inst
}

func (i *instance) stop() {
	i.cancel()
	<-i.done
}

func (i *instance) hookCalls() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.hooks)
}

// TestExclusiveOneAtATime runs two bots on one room: one serves it, the
// other stands by; each message is answered once, by the active one; when
// it loses Consul it stops and the other takes over; when it stops, it
// hands over at once.
func TestExclusiveOneAtATime(t *testing.T) {
	agent := consultest.Start(t)
	r := newRoom()
	aConsul := testenv.StartProxy(t, agent.Addr())
	a := startInstance(t, "a", r, aConsul.Addr())
	r.waitFor(t, "a serves the room", func() bool { return slices.Equal(r.members(), []string{"a"}) })
	b := startInstance(t, "b", r, agent.Addr())
	testenv.Eventually(t, 30*time.Second, "b stands by", func() bool { return !b.ex.Active() })

	ask := func(n int, who string) {
		t.Helper()
		before := len(r.answers())
		r.say(fmt.Sprintf("ping %d", n))
		want := fmt.Sprintf("%s: pong %d", who, n)
		r.waitFor(t, "the answer "+want, func() bool { return slices.Contains(r.answers(), want) })
		if got := r.answers()[before:]; len(got) != 1 {
			t.Fatalf("ping %d: answers %v, want one", n, got)
		}
	}
	ask(1, "a")
	if !a.ex.Active() || !a.ex.Connected() || b.ex.Active() || b.ex.Connected() {
		t.Fatalf("a active %v connected %v, b active %v connected %v", a.ex.Active(), a.ex.Connected(), b.ex.Active(), b.ex.Connected())
	}

	// a is cut off from Consul: it gives the room up, b takes over.
	aConsul.Cut()
	r.waitFor(t, "b serves the room alone", func() bool { return slices.Equal(r.members(), []string{"b"}) })
	if err := aConsul.Restore(); err != nil {
		t.Fatal(err)
	}
	ask(2, "b")
	if a.ex.Active() || !b.ex.Active() {
		t.Fatalf("after the takeover: a active %v, b active %v", a.ex.Active(), b.ex.Active())
	}

	// b stops: it releases the lock and a takes over without waiting.
	b.stop()
	r.waitFor(t, "a serves the room again", func() bool { return slices.Equal(r.members(), []string{"a"}) })
	ask(3, "a")
	if got, want := a.hookCalls(), []string{"room true", "room false", "room true"}; !slices.Equal(got, want) {
		t.Errorf("a's active hook: %v, want %v", got, want)
	}
	if got, want := b.hookCalls(), []string{"room true", "room false"}; !slices.Equal(got, want) {
		t.Errorf("b's active hook: %v, want %v", got, want)
	}
	r.mu.Lock()
	most := r.most
	r.mu.Unlock()
	if most != 1 {
		t.Errorf("%d connections were in the room at once", most)
	}
	for _, ans := range r.answers() {
		if !strings.Contains(ans, "pong") {
			t.Errorf("answer %q", ans)
		}
	}
}

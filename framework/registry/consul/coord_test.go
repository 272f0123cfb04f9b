package consul_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/testenv"
)

// newCoordinator is a Coordinator on its own Registry at addrs (as another
// process would have), closed when the test ends.
func newCoordinator(t testing.TB, addrs []string, opts ...consul.CoordinatorOption) *consul.Coordinator {
	t.Helper()
	r := newRegistry(t, consul.WithAddrs(addrs...), consul.WithTimeout(2*time.Second), consul.WithLogger(slog.New(slog.DiscardHandler)))
	opts = append([]consul.CoordinatorOption{consul.WithKeyPrefix("test/" + t.Name() + "/"), consul.WithCoordinatorLogger(testLogger(t))}, opts...)
	c, err := consul.NewCoordinator(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// testLogger logs through t (debug and up), so a failure shows what the
// coordinators did.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// lockAsync locks key in the background; the result arrives on the channel.
func lockAsync(ctx context.Context, c *consul.Coordinator, key string) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		l, err := c.Lock(ctx, key)
		ch <- lockResult{l, err, time.Now()}
	}()
	return ch
}

type lockResult struct {
	l   *consul.Lock
	err error
	at  time.Time
}

func TestLockIsExclusive(t *testing.T) {
	agent := consultest.Start(t)
	a := newCoordinator(t, []string{agent.Addr()})
	b := newCoordinator(t, []string{agent.Addr()})
	ctx := ctxT(t)

	la, err := a.Lock(ctx, "xmpp/bot@example.org")
	if err != nil {
		t.Fatal(err)
	}
	got := lockAsync(ctx, b, "xmpp/bot@example.org")
	// b must wait while a holds it: give it time to (wrongly) succeed, then
	// check. (This waits for no condition: it checks that none happens.)
	select {
	case r := <-got:
		t.Fatalf("b locked a lock a holds: %v", r.err)
	case <-time.After(2 * time.Second):
	}
	// Another key is free.
	lo, err := b.Lock(ctx, "xmpp/other@example.org")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Unlock(ctx)

	// Unlock releases at once: no lock-delay on a release.
	released := time.Now()
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
	default:
		t.Error("Lost is not closed after Unlock")
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("b took the lock %v after a released it", r.at.Sub(released))
	select {
	case <-r.l.Lost():
		t.Fatal("b's lock is lost at once")
	default:
	}
	if err := r.l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLockTakeoverWhenConsulIsLost cuts the holder off from Consul: it
// must give the lock up by itself before the other takes it, and the
// other must take it within the presence TTL and the lock-delay (plus
// the machine's slowness).
func TestLockTakeoverWhenConsulIsLost(t *testing.T) {
	agent := consultest.Start(t)
	proxy := testenv.StartProxy(t, agent.Addr())
	const ttl = 2 * time.Second
	a := newCoordinator(t, []string{proxy.Addr()}, consul.WithPresenceTTL(ttl))
	b := newCoordinator(t, []string{agent.Addr()}, consul.WithPresenceTTL(ttl))
	ctx := ctxT(t)

	la, err := a.Lock(ctx, "xmpp/bot")
	if err != nil {
		t.Fatal(err)
	}
	got := lockAsync(ctx, b, "xmpp/bot")
	proxy.Cut()
	cut := time.Now()
	var lost time.Time
	select {
	case <-la.Lost():
		lost = time.Now()
	case <-time.After(wait):
		t.Fatal("the holder cut off from Consul did not give the lock up")
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !r.at.After(lost) {
		t.Fatalf("b took the lock (%v after the cut) before a gave it up (%v after): two holders", r.at.Sub(cut), lost.Sub(cut))
	}
	t.Logf("cut at 0: a gave up at %v, b took over at %v (TTL %v, lock-delay %v)", lost.Sub(cut), r.at.Sub(cut), ttl, consul.DefaultLockDelay)

	// Back in touch, a waits for its turn.
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	again := lockAsync(ctx, a, "xmpp/bot")
	if err := r.l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if ra := <-again; ra.err != nil {
		t.Fatal(ra.err)
	} else {
		ra.l.Unlock(ctx)
	}
}

// TestLockLost: a holder notices at once when Consul no longer has its
// key held by its session (an operator deleted it), or its agent forgot
// its presence (a dev agent keeps nothing across a restart); it can lock
// again afterwards (with a new presence).
func TestLockLost(t *testing.T) {
	tests := []struct {
		name    string
		disrupt func(t *testing.T, agent *consultest.Agent, c *consul.Coordinator)
	}{
		{"key deleted", func(t *testing.T, agent *consultest.Agent, c *consul.Coordinator) {
			cl, err := agent.API()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.KV().Delete(c.Prefix()+"lock/k", nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"agent restarted", func(t *testing.T, agent *consultest.Agent, _ *consul.Coordinator) {
			if err := agent.Restart(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := consultest.Start(t)
			a := newCoordinator(t, []string{agent.Addr()})
			ctx := ctxT(t)
			l, err := a.Lock(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			tt.disrupt(t, agent, a)
			select {
			case <-l.Lost():
			case <-time.After(wait):
				t.Fatal("the lock is not lost")
			}
			l2, err := a.Lock(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			if err := l2.Unlock(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLockBadKey(t *testing.T) {
	agent := consultest.Start(t)
	a := newCoordinator(t, []string{agent.Addr()})
	for _, k := range []string{"", "/abs"} {
		if _, err := a.Lock(ctxT(t), k); err == nil {
			t.Errorf("Lock(%q) = nil error", k)
		}
	}
}

func TestLockClosed(t *testing.T) {
	agent := consultest.Start(t)
	a := newCoordinator(t, []string{agent.Addr()})
	if err := a.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lock(ctxT(t), "k"); !errors.Is(err, consul.ErrCoordinatorClosed) {
		t.Fatalf("Lock after Close = %v, want ErrCoordinatorClosed", err)
	}
}

// TestPresenceIsGoneAfterClose: Close ends the session and the instance.
func TestPresenceIsGoneAfterClose(t *testing.T) {
	agent := consultest.Start(t)
	a := newCoordinator(t, []string{agent.Addr()}, consul.WithPresenceName("go.micro.srv.bot.ha"))
	ctx := ctxT(t)
	l, err := a.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := agent.API()
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := cl.Health().Service("go.micro.srv.bot.ha", "", true, nil)
	if err != nil || len(entries) != 1 || entries[0].Service.ID != a.ID() {
		t.Fatalf("presence instances %v (%v), want %s passing", entries, err, a.ID())
	}
	l.Unlock(ctx)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sessions, _, err := cl.Session().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 0 {
		t.Errorf("sessions left after Close: %v", sessions)
	}
	entries, _, err = cl.Health().Service("go.micro.srv.bot.ha", "", false, nil)
	if err != nil || len(entries) != 0 {
		t.Errorf("presence instances left after Close: %v (%v)", entries, err)
	}
}

func TestClaim(t *testing.T) {
	agent := consultest.Start(t)
	a := newCoordinator(t, []string{agent.Addr()})
	b := newCoordinator(t, []string{agent.Addr()})
	ctx := ctxT(t)
	steps := []struct {
		c    *consul.Coordinator
		keys []string
		want bool
	}{
		{a, []string{"envelope:1", "event:Ev1", "message:C1:1.1"}, true},
		{a, []string{"envelope:1", "event:Ev1", "message:C1:1.1"}, false}, // the same delivery
		{b, []string{"envelope:2", "event:Ev1", "message:C1:1.1"}, false}, // Slack's retry, on the other instance
		{b, []string{"envelope:3", "event:Ev2", "message:C1:1.1"}, false}, // the same message as another event
		{b, []string{"envelope:4", "event:Ev3", "message:C1:1.2"}, true},  // a new message
		{a, []string{"envelope:2"}, true},                                 // the failed claim left nothing
		{a, nil, true},
	}
	for i, s := range steps {
		got, err := s.c.Claim(ctx, s.keys)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != s.want {
			t.Errorf("step %d: Claim(%v) = %v, want %v", i, s.keys, got, s.want)
		}
	}
	if _, err := a.Claim(ctx, make([]string, 40)); err == nil {
		t.Error("a claim of 40 keys was taken")
	}
}

// TestClaimRace: many claims of one key at once, from two coordinators:
// exactly one wins.
func TestClaimRace(t *testing.T) {
	agent := consultest.Start(t)
	cs := []*consul.Coordinator{newCoordinator(t, []string{agent.Addr()}), newCoordinator(t, []string{agent.Addr()})}
	ctx := ctxT(t)
	for round := range 20 {
		var wins, fails sync.WaitGroup
		var mu sync.Mutex
		won := 0
		var errs []error
		for i := range 8 {
			wins.Go(func() {
				ok, err := cs[i%2].Claim(ctx, []string{fmt.Sprintf("event:%d", round), fmt.Sprintf("envelope:%d-%d", round, i)})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					won++
				}
			})
		}
		wins.Wait()
		fails.Wait()
		if len(errs) > 0 || won != 1 {
			t.Fatalf("round %d: %d claims won (errors %v), want exactly 1", round, won, errs)
		}
	}
}

// TestClaimsExpire: claims go away by themselves, within twice the claims
// sessions' TTL (10 s here, Consul's minimum).
func TestClaimsExpire(t *testing.T) {
	agent := consultest.Start(t)
	const ttl = 10 * time.Second
	a := newCoordinator(t, []string{agent.Addr()}, consul.WithClaimTTL(ttl))
	ctx := ctxT(t)
	start := time.Now()
	if ok, err := a.Claim(ctx, []string{"event:old"}); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	cl, err := agent.API()
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		keys, _, err := cl.KV().Keys(a.Prefix()+"seen/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d claim entries, want 1", n)
	}
	eventuallyWithin(t, 2*ttl+wait, "the claim expired", func() error {
		if n := count(); n != 0 {
			return fmt.Errorf("%d entries", n)
		}
		return nil
	})
	gone := time.Since(start)
	if gone < ttl*3/4 {
		t.Errorf("the claim lived %v, under three quarters of the TTL %v", gone, ttl)
	}
	t.Logf("a claim made with a fresh session lived %v (TTL %v)", gone, ttl)
	if ok, err := a.Claim(ctx, []string{"event:old"}); err != nil || !ok {
		t.Fatalf("Claim after expiry = %v, %v; want a new claim", ok, err)
	}
}

func TestStore(t *testing.T) {
	agent := consultest.Start(t)
	a := newCoordinator(t, []string{agent.Addr()})
	b := newCoordinator(t, []string{agent.Addr()})
	ctx := ctxT(t)
	sa, sb := a.Store("confirm"), b.Store("confirm")
	if ok, err := sa.Create(ctx, "abc123", []byte(`{"x":1}`)); err != nil || !ok {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if ok, err := sb.Create(ctx, "abc123", []byte(`{"x":2}`)); err != nil || ok {
		t.Fatalf("second Create of the key = %v, %v; want false", ok, err)
	}
	v, ver, err := sb.Get(ctx, "abc123")
	if err != nil || string(v) != `{"x":1}` || ver == 0 {
		t.Fatalf("Get = %q, %d, %v", v, ver, err)
	}
	if v, ver, err := sb.Get(ctx, "nope"); err != nil || v != nil || ver != 0 {
		t.Fatalf("Get of a missing key = %q, %d, %v", v, ver, err)
	}
	if ok, err := sb.Create(ctx, "def456", nil); err != nil || !ok {
		t.Fatal(ok, err)
	}
	var keys []string
	if err := sa.Range(ctx, func(k string, _ []byte, _ uint64) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"abc123", "def456"}) {
		t.Fatalf("Range saw %v", keys)
	}
	if ok, err := sa.Delete(ctx, "abc123", ver+1000); err != nil || ok {
		t.Fatalf("Delete with a wrong version = %v, %v", ok, err)
	}
	if ok, err := sa.Delete(ctx, "abc123", ver); err != nil || !ok {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if ok, err := sb.Delete(ctx, "abc123", ver); err != nil || ok {
		t.Fatalf("second Delete = %v, %v; want false", ok, err)
	}
	for _, k := range []string{"", "a/b"} {
		if _, err := sa.Create(ctx, k, nil); err == nil {
			t.Errorf("Create(%q) = nil error", k)
		}
	}
}

// TestCoordinatorACL: with the bot's documented policy (docs/consul.md), the
// coordinator locks, claims and stores; without the session rule, the
// error names what is missing.
func TestCoordinatorACL(t *testing.T) {
	agent := consultest.Start(t, consultest.WithACL())
	ctx := ctxT(t)
	token, err := agent.CreateToken(ctx, "microbot", docPolicy(t, "microbot"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(api.HTTPTokenEnvName, token)
	c := newCoordinator(t, []string{agent.Addr()}, consul.WithKeyPrefix("microbot/ha/go.micro.srv.bot/"), consul.WithPresenceName("go.micro.srv.bot.ha"))
	l, err := c.Lock(ctx, "xmpp/bot@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Claim(ctx, []string{"event:1"}); err != nil || !ok {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if ok, err := c.Store("confirm").Create(ctx, "code", []byte("x")); err != nil || !ok {
		t.Fatalf("Create = %v, %v", ok, err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	narrow, err := agent.CreateToken(ctx, "kv-only", `key_prefix "microbot/" { policy = "write" }`)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(api.HTTPTokenEnvName, narrow)
	n := newCoordinator(t, []string{agent.Addr()}, consul.WithKeyPrefix("microbot/ha/x/"))
	_, err = n.Claim(ctx, []string{"event:1"})
	if !errors.Is(err, consul.ErrPermissionDenied) {
		t.Fatalf("Claim without session:write = %v, want ErrPermissionDenied", err)
	}
	t.Logf("without session:write: %v", err)
}

func TestMemo(t *testing.T) {
	agent := consultest.Start(t)
	a := newCoordinator(t, []string{agent.Addr()})
	b := newCoordinator(t, []string{agent.Addr()})
	ctx := ctxT(t)
	ma, err := a.Memo("threads", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := b.Memo("threads", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := mb.Get(ctx, "slack:C1/deploy-42"); err != nil || v != nil {
		t.Fatalf("Get of a key never put = %q, %v", v, err)
	}
	if ok, err := ma.Put(ctx, "slack:C1/deploy-42", []byte("1700000000.000100")); err != nil || !ok {
		t.Fatalf("Put = %v, %v", ok, err)
	}
	if ok, err := mb.Put(ctx, "slack:C1/deploy-42", []byte("1700000000.000200")); err != nil || ok {
		t.Fatalf("second Put = %v, %v; want false, the first value kept", ok, err)
	}
	if v, err := mb.Get(ctx, "slack:C1/deploy-42"); err != nil || string(v) != "1700000000.000100" {
		t.Fatalf("Get on the other = %q, %v", v, err)
	}
	for _, ttl := range []time.Duration{time.Second, 25 * time.Hour} {
		if _, err := a.Memo("x", ttl); err == nil {
			t.Errorf("Memo with TTL %v = nil error", ttl)
		}
	}
}

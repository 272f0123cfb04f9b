package framework_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/microbot/microbot/examples/events"
	"github.com/microbot/microbot/framework/broker/mqtt/mosquittotest"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
	"github.com/microbot/microbot/framework/registry/local"
	"github.com/microbot/microbot/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// proc is an example program running for a test, its stdout read line by
// line.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	logs testenv.Buffer // stderr
	done chan struct{}

	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced on each line
}

func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), done: make(chan struct{}), more: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = &p.logs
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := testenv.StartCommand(p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, p.logs.String())
		}
	})
	return p
}

// kill signals the process and waits for it to exit (SIGKILL after 15 s).
func (p *proc) kill(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// events returns the events the process printed (a subscriber).
func (p *proc) events() []events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []events.Event
	for _, l := range p.lines {
		var e events.Event
		if json.Unmarshal([]byte(l), &e) == nil && e.Seq > 0 {
			out = append(out, e)
		}
	}
	return out
}

// publish has a publisher publish one event with text and returns its
// sequence number and the publisher's error, if any.
func (p *proc) publish(text string) (int, string) {
	p.t.Helper()
	p.mu.Lock()
	n, more := len(p.lines), p.more
	p.mu.Unlock()
	if _, err := fmt.Fprintln(p.in, text); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	for {
		select {
		case <-more:
		case <-p.done:
			p.t.Fatalf("%s exited:\n%s", p.name, p.logs.String())
		case <-time.After(wait):
			p.t.Fatalf("%s did not answer within %v", p.name, wait)
		}
		p.mu.Lock()
		if len(p.lines) > n {
			line := p.lines[n]
			p.mu.Unlock()
			var r struct {
				Seq   int    `json:"seq"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				p.t.Fatalf("%s printed %q", p.name, line)
			}
			return r.Seq, r.Error
		}
		more = p.more
		p.mu.Unlock()
	}
}

// seqs returns the sequence numbers of events from first on, counted.
func seqs(evs []events.Event, first int) map[int]int {
	m := map[int]int{}
	for _, e := range evs {
		if e.Seq >= first {
			m[e.Seq]++
		}
	}
	return m
}

// TestEventsBetweenProcesses runs the example publisher and subscribers as
// separate processes on each broker with a server (and on http, through
// the local registry): two subscribers in a queue group and one outside
// it. Each event reaches exactly one member of the group and the outsider;
// after a member is killed, the other takes every event; after the broker
// server restarts, events flow again by themselves; a member started again
// takes its share again.
func TestEventsBetweenProcesses(t *testing.T) {
	pubBin := testenv.Build(t, "github.com/microbot/microbot/examples/events/publisher")
	subBin := testenv.Build(t, "github.com/microbot/microbot/examples/events/subscriber")
	for _, name := range []string{"nats", "mqtt", "http"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"MICRO_REGISTRY=local", "MICRO_REGISTRY_ADDRESS=" + dir, "MICRO_BROKER=" + name,
				"MICRO_REGISTER_TTL=5s", "MICRO_REGISTER_INTERVAL=1s", "MICRO_BROKER_ADDRESS="}
			var restart func()
			switch name {
			case "nats":
				srv := natstest.Start(t)
				env[len(env)-1] += srv.Addr
				restart = srv.Restart
			case "mqtt":
				srv := mosquittotest.Start(t)
				env[len(env)-1] += srv.Addr
				restart = srv.Restart
			default:
				env = env[:len(env)-1]
			}
			reg, err := local.New(local.WithDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			subscriber := func(who, queue string) *proc {
				e := append(env, "EVENTS_QUEUE="+queue)
				p := startProc(t, who, subBin, e, "--server_metadata=who="+who)
				testenv.Eventually(t, wait, who+" registered", func() bool {
					select {
					case <-p.done:
						t.Fatalf("%s exited:\n%s", who, p.logs.String())
					default:
					}
					svcs, err := reg.GetService(t.Context(), "go.micro.srv.subscriber")
					if err != nil {
						return false
					}
					for _, s := range svcs {
						for _, n := range s.Nodes {
							if n.Metadata["who"] == who {
								return true
							}
						}
					}
					return false
				})
				return p
			}
			a, b, c := subscriber("a", "workers"), subscriber("b", "workers"), subscriber("c", "")
			pub := startProc(t, "publisher", pubBin, env)

			// publishUntil publishes until cond holds on what the subscribers
			// got (publishes refused while the broker is away are fine), and
			// returns the next sequence number.
			publishUntil := func(what string, cond func() bool) int {
				deadline := time.Now().Add(wait)
				for {
					seq, _ := pub.publish("probe")
					if cond() {
						return seq + 1
					}
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting until %s", what)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			// batch publishes n events, each of which must go through, and
			// checks where they went: each to exactly one of group, and to
			// the outsider.
			batch := func(phase string, n int, group []*proc) {
				t.Helper()
				first := 0
				for i := range n {
					seq, perr := pub.publish(phase + " " + strconv.Itoa(i))
					if perr != "" {
						t.Fatalf("%s: publish %d: %s", phase, seq, perr)
					}
					if i == 0 {
						first = seq
					}
				}
				last := first + n - 1
				testenv.Eventually(t, wait, phase+": every event arrived", func() bool {
					total := 0
					for _, g := range group {
						total += len(seqs(g.events(), first))
					}
					return len(seqs(c.events(), first)) >= n && total >= n
				})
				outsider := seqs(c.events(), first)
				members := map[int]int{}
				for i, g := range group {
					got := seqs(g.events(), first)
					if len(group) > 1 && len(got) == 0 {
						t.Errorf("%s: group member %d got none of %d events", phase, i, n)
					}
					for s, k := range got {
						members[s] += k
					}
				}
				for s := first; s <= last; s++ {
					if outsider[s] != 1 || members[s] != 1 {
						t.Errorf("%s: event %d reached the outsider %d times and the group %d times, want 1 and 1", phase, s, outsider[s], members[s])
					}
				}
			}

			publishUntil("a, b and c are reached", func() bool {
				return len(c.events()) > 0 && len(a.events())+len(b.events()) > 0
			})
			batch("all up", 40, []*proc{a, b})

			b.kill(syscall.SIGKILL)
			aBefore, cBefore := len(a.events()), len(c.events())
			publishUntil("a takes the group's events alone", func() bool {
				return len(a.events()) > aBefore && len(c.events()) > cBefore
			})
			batch("b killed", 20, []*proc{a})

			if restart != nil {
				restart()
				aBefore, cBefore = len(a.events()), len(c.events())
				publishUntil("events flow again after the restart", func() bool {
					return len(a.events()) > aBefore && len(c.events()) > cBefore
				})
				batch("server restarted", 20, []*proc{a})
			}

			b2 := subscriber("b2", "workers")
			publishUntil("b2 takes its share", func() bool { return len(b2.events()) > 0 })
			batch("b2 joined", 40, []*proc{a, b2})
			if strings.Contains(a.logs.String(), "panic") {
				t.Errorf("a subscriber panicked:\n%s", a.logs.String())
			}
		})
	}
}

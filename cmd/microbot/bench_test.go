package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/internal/testenv"
)

// The benchmarks here start the real binary, built without -race, and
// report its resident memory (VmRSS from /proc) as the metric MB-rss:
//
//	go test -run XXX -bench RSS ./cmd/microbot/
//
// BenchmarkRSSIdle is microbot on an empty registry; BenchmarkRSS1000Commands
// is microbot watching 1,000 command services (all served by one testsvc
// process), once it has discovered every one of them; it also reports how
// long that discovery took (s-discovery). BenchmarkRSS1000CommandsArriving
// is the same with the services registering after microbot has started
// (s-discovery then counts from the start of their process).
//
// Both also report the Go heap as the runtime's GC trace (GODEBUG=gctrace=1,
// which changes nothing else) gave it at the last collection before the
// RSS was read: MB-heap-live, what was still reachable, and MB-heap-goal,
// the size at which the next collection starts (whole MB, as the trace
// prints them; not reported if no collection has run, i.e. the heap never
// reached the runtime's minimum goal of 4 MB).

var benchBins struct {
	once              sync.Once
	microbot, testsvc string
	err               error
}

func buildBench(b *testing.B) {
	b.Helper()
	benchBins.once.Do(func() {
		dir, err := os.MkdirTemp("", "microbot-bench-")
		if err != nil {
			benchBins.err = err
			return
		}
		benchBins.microbot = filepath.Join(dir, "microbot")
		benchBins.testsvc = filepath.Join(dir, "testsvc")
		for out, pkg := range map[string]string{benchBins.microbot: ".", benchBins.testsvc: "../../commandsvc/internal/testsvc"} {
			if o, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
				benchBins.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
				return
			}
		}
	})
	if benchBins.err != nil {
		b.Fatal(benchBins.err)
	}
}

// rss returns the resident memory of pid in MB.
func rss(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// benchBot is microbot on a pipe.
type benchBot struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner

	mu       sync.Mutex
	lastGC   string // the last GC trace line
	gcs      int
	stderrOK chan struct{} // closed when stderr is read to the end
}

// gcLine matches the sizes of a GC trace line: heap at start, at end, live
// (marked), and the goal, in MB.
var gcLine = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// readStderr copies microbot's standard error to ours, keeping the GC
// trace lines out of it.
func (bb *benchBot) readStderr(r io.Reader) {
	defer close(bb.stderrOK)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "gc ") && gcLine.MatchString(l) {
			bb.mu.Lock()
			bb.lastGC, bb.gcs = l, bb.gcs+1
			bb.mu.Unlock()
			continue
		}
		fmt.Fprintln(os.Stderr, sc.Text())
	}
}

// report reports the resident memory and the heap at the last collection.
func (bb *benchBot) report(b *testing.B) {
	b.Helper()
	b.ReportMetric(rss(b, bb.cmd.Process.Pid), "MB-rss")
	bb.mu.Lock()
	l := bb.lastGC
	bb.mu.Unlock()
	m := gcLine.FindStringSubmatch(l)
	if m == nil {
		return // no collection yet: the heap never reached the runtime's 4 MB minimum goal
	}
	live, _ := strconv.ParseFloat(m[3], 64)
	goal, _ := strconv.ParseFloat(m[4], 64)
	b.ReportMetric(live, "MB-heap-live")
	b.ReportMetric(goal, "MB-heap-goal")
}

func startBenchBot(b *testing.B, reg string, args ...string) *benchBot {
	b.Helper()
	cmd := exec.Command(benchBins.microbot, append([]string{"--registry_address", reg, "--log_level", "error", "--discovery_wait", "1ms"}, args...)...)
	godebug := "gctrace=1"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := testenv.StartCommand(cmd); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	bb := &benchBot{cmd: cmd, in: in, out: sc, stderrOK: make(chan struct{})}
	go bb.readStderr(stderr)
	b.Cleanup(func() { in.Close(); cmd.Process.Kill(); <-bb.stderrOK; cmd.Wait() })
	return bb
}

// ask sends line and returns the reply's lines, read up to a marker.
func (bb *benchBot) ask(b *testing.B, line string) []string {
	b.Helper()
	fmt.Fprintf(bb.in, "%s\n@@end\n", line)
	var got []string
	for bb.out.Scan() {
		if strings.Contains(bb.out.Text(), `"@@end"`) {
			return got
		}
		got = append(got, bb.out.Text())
	}
	b.Fatalf("microbot ended: %v", bb.out.Err())
	return nil
}

func BenchmarkRSSIdle(b *testing.B) {
	buildBench(b)
	for range b.N {
		bb := startBenchBot(b, b.TempDir())
		if got := bb.ask(b, "ping"); len(got) != 1 || got[0] != "pong" {
			b.Fatalf("ping: %q", got)
		}
		time.Sleep(2 * time.Second) // let it settle
		bb.report(b)
	}
}

func BenchmarkRSS1000Commands(b *testing.B) { benchCommands(b, servicesFirst) }

// BenchmarkRSS1000CommandsArriving is microbot started on an empty
// registry, into which the 1,000 command services then register while it
// watches (their events, rather than its first listing, make them known).
func BenchmarkRSS1000CommandsArriving(b *testing.B) { benchCommands(b, arriving) }

// BenchmarkRSS1000CommandsRefreshing is microbot with 1,000 command
// services that each register again every 15 s, as the framework's
// services do by default (--register_interval), measured 32 s after
// discovery (so after a resync of the namespace, every 30 s by default).
// It also reports the CPU microbot used meanwhile, in % of one core.
func BenchmarkRSS1000CommandsRefreshing(b *testing.B) { benchCommands(b, refreshing) }

// How the command services of benchCommands come.
const (
	servicesFirst = iota // registered before microbot starts
	arriving             // registered after it started
	refreshing           // before, and registering again every 15 s
)

// benchCommands runs microbot with 1,000 command services.
func benchCommands(b *testing.B, load int) {
	buildBench(b)
	for range b.N {
		reg := b.TempDir()
		var bb *benchBot
		if load == arriving {
			bb = startBenchBot(b, reg)
			if got := bb.ask(b, "ping"); len(got) != 1 || got[0] != "pong" {
				b.Fatalf("ping: %q", got)
			}
		}
		svc := exec.Command(benchBins.testsvc)
		svc.Env = append(os.Environ(), "TESTSVC_COUNT=1000", "MICRO_REGISTRY_ADDRESS="+reg)
		if load == refreshing {
			svc.Env = append(svc.Env, "TESTSVC_REFRESH=15s")
		}
		svcOut, err := svc.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := testenv.StartCommand(svc); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { svc.Process.Kill(); svc.Wait() })
		if sc := bufio.NewScanner(svcOut); !sc.Scan() || sc.Text() != "ready" {
			b.Fatalf("testsvc did not get ready: %q %v", sc.Text(), sc.Err())
		}
		if load != arriving {
			start = time.Now()
			bb = startBenchBot(b, reg)
		}
		for {
			n := 0
			for _, l := range bb.ask(b, "help") {
				if strings.HasPrefix(l, "cmd") && strings.Contains(l, "benchmark command") {
					n++
				}
			}
			if n == 1000 {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("only %d of 1000 commands discovered", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		discovery := time.Since(start)
		if got := bb.ask(b, "cmd777 ok hi"); len(got) != 1 || got[0] != "cmd777 says: hi" {
			b.Fatalf("cmd777: %q", got)
		}
		if load == refreshing {
			const window = 32 * time.Second
			cpu0 := cpuTime(b, bb.cmd.Process.Pid)
			time.Sleep(window)
			b.ReportMetric(100*(cpuTime(b, bb.cmd.Process.Pid)-cpu0).Seconds()/window.Seconds(), "%-cpu")
		} else {
			time.Sleep(2 * time.Second)
		}
		bb.report(b)
		b.ReportMetric(discovery.Seconds(), "s-discovery")
	}
}

// cpuTime returns the CPU time (user and system) pid has used.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

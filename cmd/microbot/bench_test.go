package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The benchmarks here start the real binary, built without -race, and
// report its resident memory (VmRSS from /proc) as the metric MB-rss:
//
//	go test -run XXX -bench RSS ./cmd/microbot/
//
// BenchmarkRSSIdle is microbot on an empty registry; BenchmarkRSS1000Commands
// is microbot watching 1,000 command services (all served by one testsvc
// process), once it has discovered every one of them; it also reports how
// long that discovery took (s-discovery).

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
}

func startBenchBot(b *testing.B, reg string) *benchBot {
	b.Helper()
	cmd := exec.Command(benchBins.microbot, "--registry_address", reg, "--log_level", "error", "--discovery_wait", "1ms")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &benchBot{cmd: cmd, in: in, out: sc}
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
		b.ReportMetric(rss(b, bb.cmd.Process.Pid), "MB-rss")
	}
}

func BenchmarkRSS1000Commands(b *testing.B) {
	buildBench(b)
	for range b.N {
		reg := b.TempDir()
		svc := exec.Command(benchBins.testsvc)
		svc.Env = append(os.Environ(), "TESTSVC_COUNT=1000", "MICRO_REGISTRY_ADDRESS="+reg)
		svcOut, err := svc.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { svc.Process.Kill(); svc.Wait() })
		if sc := bufio.NewScanner(svcOut); !sc.Scan() || sc.Text() != "ready" {
			b.Fatalf("testsvc did not get ready: %q %v", sc.Text(), sc.Err())
		}
		start := time.Now()
		bb := startBenchBot(b, reg)
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
		time.Sleep(2 * time.Second)
		b.ReportMetric(rss(b, bb.cmd.Process.Pid), "MB-rss")
		b.ReportMetric(discovery.Seconds(), "s-discovery")
	}
}

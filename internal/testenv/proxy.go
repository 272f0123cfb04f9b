package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on loopback in front of a server, which a test can
// cut (as a network partition would: every connection through it is
// dropped and new ones are refused) and restore. It stops when the test
// ends.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	pipes int // client connections being piped
	cut   bool
	delay time.Duration // each chunk waits this long before it is passed on
}

// StartProxy starts a proxy to target (host:port) on a free loopback port.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: proxy: %v", err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	tb.Cleanup(func() { p.Cut() })
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.addr }

// Open returns how many client connections the proxy pipes now: one a
// connection the client has open through it.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pipes
}

// SetDelay makes every chunk of bytes read from either side wait d before
// it is passed on (0: none), on the connections open now and the next: a
// slow network. Each direction of a connection stays in order: a chunk is
// read, held d, written, and then the next is read.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func (p *Proxy) delayed() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay
}

// Cut drops every connection through the proxy and refuses new ones until
// Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Restore accepts connections again on the same address after Cut.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	if !p.cut {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ { // the port may linger a moment
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
	p.serve(ln)
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

// track adds (or removes) a connection; false if the proxy is cut.
func (p *Proxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) pipe(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = in.Close()
		return
	}
	if !p.track(in, true) || !p.track(out, true) {
		_ = in.Close()
		_ = out.Close()
		return
	}
	p.mu.Lock()
	p.pipes++
	p.mu.Unlock()
	defer func() {
		p.track(in, false)
		p.track(out, false)
		p.mu.Lock()
		p.pipes--
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, delayReader{src, p}) // ends when either side closes, or at Cut
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	<-done
}

// delayReader reads from r, holding each chunk read for the proxy's delay.
type delayReader struct {
	r io.Reader
	p *Proxy
}

func (d delayReader) Read(b []byte) (int, error) {
	n, err := d.r.Read(b)
	if n > 0 {
		if w := d.p.delayed(); w > 0 {
			time.Sleep(w)
		}
	}
	return n, err
}

//go:build !linux

package shell

import (
	"os"
	"sync"

	"golang.org/x/term"
)

// stateTTY switches a terminal between raw mode (editing) and its own mode
// (a command runs) with golang.org/x/term. Keys typed while a command runs
// are echoed by the terminal.
type stateTTY struct {
	fd int

	mu       sync.Mutex
	orig     *term.State
	raw      bool
	restored bool
}

// openTTY returns the modes of the terminal f, or an error if it is none.
func openTTY(f *os.File) (tty, error) {
	fd := int(f.Fd())
	orig, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	return &stateTTY{fd: fd, orig: orig}, nil
}

func (t *stateTTY) Edit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.restored || t.raw {
		return nil
	}
	if _, err := term.MakeRaw(t.fd); err != nil {
		return err
	}
	t.raw = true
	return nil
}

func (t *stateTTY) Busy() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.restored || !t.raw {
		return nil
	}
	t.raw = false
	return term.Restore(t.fd, t.orig)
}

func (t *stateTTY) Restore() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.restored {
		return nil
	}
	t.restored = true
	return term.Restore(t.fd, t.orig)
}

func (t *stateTTY) Size() (width, height int, err error) { return term.GetSize(t.fd) }

// NotifyResize does nothing here: the size is read again at each prompt.
func (t *stateTTY) NotifyResize(ch chan<- os.Signal) (stop func()) { return func() {} }

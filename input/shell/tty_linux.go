package shell

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// fdTTY switches a terminal between the console's modes with termios. It
// keeps output processing on, so a line written to the terminal by anyone
// else (a crash report, say) still starts at the left margin.
type fdTTY struct {
	fd int

	mu         sync.Mutex
	orig       *unix.Termios
	edit, busy unix.Termios
	restored   bool
}

// openTTY returns the modes of the terminal f, or an error if it is none.
func openTTY(f *os.File) (tty, error) {
	fd := int(f.Fd())
	orig, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := &fdTTY{fd: fd, orig: orig}
	// Editing: every key as typed, not echoed (the editor draws the
	// line), no signals (Ctrl-C is a key of the editor).
	t.edit = *orig
	t.edit.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.edit.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.edit.Cflag &^= unix.CSIZE | unix.PARENB
	t.edit.Cflag |= unix.CS8
	t.edit.Cc[unix.VMIN] = 1
	t.edit.Cc[unix.VTIME] = 0
	// Busy (a command runs): keys typed ahead wait unread and unechoed for
	// the next prompt; Ctrl-C interrupts as in any program, the other
	// signal keys do nothing (a stopped or dumped bot would leave the
	// terminal in this mode).
	t.busy = t.edit
	t.busy.Lflag |= unix.ISIG
	t.busy.Cc[unix.VQUIT] = 0 // _POSIX_VDISABLE
	t.busy.Cc[unix.VSUSP] = 0
	return t, nil
}

func (t *fdTTY) set(mode *unix.Termios) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.restored {
		return nil
	}
	if mode == t.orig {
		t.restored = true
	}
	return unix.IoctlSetTermios(t.fd, unix.TCSETS, mode)
}

func (t *fdTTY) Edit() error    { return t.set(&t.edit) }
func (t *fdTTY) Busy() error    { return t.set(&t.busy) }
func (t *fdTTY) Restore() error { return t.set(t.orig) }

func (t *fdTTY) Size() (width, height int, err error) { return term.GetSize(t.fd) }

// NotifyResize relays the terminal's size changes (SIGWINCH) to ch until
// stop is called.
func (t *fdTTY) NotifyResize(ch chan<- os.Signal) (stop func()) {
	signal.Notify(ch, syscall.SIGWINCH)
	return func() { signal.Stop(ch) }
}

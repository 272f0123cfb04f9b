package shell

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// MaxHistory is how many lines the console's history holds. Its file holds
// at most twice as many before it is cut back to the last MaxHistory.
const MaxHistory = 1000

// maxHistoryLine is the longest line written to the history file; a longer
// one (a pasted definition, say) is kept for the session only.
const maxHistoryLine = 4096

// DefaultHistoryFile returns where the console keeps its history unless
// told otherwise: microbot/history in the user's state directory
// ($XDG_STATE_HOME, by default ~/.local/state), or "" when there is no
// home directory.
func DefaultHistoryFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(dir) { // the XDG spec says to ignore a relative path
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "microbot", "history")
}

// history is the console's line history (a golang.org/x/term History): the
// lines of this session and of earlier ones kept in a file, at most max.
// Lines that carry a secret are kept for the session but never written to
// the file. The file is created with mode 0600 (an existing one is made
// so), its directory 0700. The terminal calls its methods from the reading
// goroutine only.
type history struct {
	path   string // "" keeps the lines in memory only
	max    int
	secret func(string) bool
	lines  []string // oldest first
	inFile int      // lines in the file
	// failed is the first error writing the file; nothing more is written.
	failed error
}

// openHistory loads the history kept in path ("" for none). secret tells
// the lines never to write (nil: none). On an error the history works in
// memory only, and the error says why.
func openHistory(path string, max int, secret func(string) bool) (*history, error) {
	if secret == nil {
		secret = func(string) bool { return false }
	}
	h := &history{path: path, max: max, secret: secret}
	if path == "" {
		return h, nil
	}
	if err := h.load(); err != nil {
		h.path = ""
		return h, fmt.Errorf("history %s: %w", path, err)
	}
	return h, nil
}

// load reads the file, if there is one, makes sure only its owner can read
// it, and cuts it back if it is too long or holds a line with a secret
// (written by hand, or by an older version).
func (h *history) load() error {
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return err
	}
	f, err := os.Open(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(h.path, 0o600); err != nil {
			return err
		}
	}
	// Only the end of a file grown past any bound is read.
	limit := int64(2 * h.max * (maxHistoryLine + 1))
	if st.Size() > limit {
		if _, err := f.Seek(st.Size()-limit, io.SeekStart); err != nil {
			return err
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return err
	}
	dirty := st.Size() > limit
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" || h.secret(line) || len(line) > maxHistoryLine {
			dirty = true
			continue
		}
		h.inFile++
		h.remember(line)
	}
	if dirty || h.inFile > h.max {
		return h.rewrite()
	}
	return nil
}

// remember adds line to the lines in memory, dropping the oldest past max.
func (h *history) remember(line string) {
	if len(h.lines) == h.max {
		copy(h.lines, h.lines[1:])
		h.lines = h.lines[:h.max-1]
	}
	h.lines = append(h.lines, line)
}

// Add adds a line typed, without the spaces at its end: blank lines and
// repeats of the line before are skipped; lines with a secret, and very
// long ones, are not written to the file.
func (h *history) Add(line string) {
	line = strings.TrimRightFunc(line, unicode.IsSpace)
	if line == "" || (len(h.lines) > 0 && h.lines[len(h.lines)-1] == line) {
		return
	}
	h.remember(line)
	if h.path == "" || h.failed != nil || h.secret(line) || len(line) > maxHistoryLine {
		return
	}
	if err := h.append(line); err != nil {
		h.failed = err
		return
	}
	h.inFile++
	if h.inFile > 2*h.max {
		if err := h.rewrite(); err != nil {
			h.failed = err
		}
	}
}

// Err returns the error that stopped the history from being written, if
// any.
func (h *history) Err() error {
	if h.failed == nil {
		return nil
	}
	return fmt.Errorf("history %s: %w", h.path, h.failed)
}

// append writes one line at the end of the file (other consoles may be
// appending too: each line is one write).
func (h *history) append(line string) error {
	f, err := os.OpenFile(h.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rewrite replaces the file, atomically, with its last max lines that may
// be written.
func (h *history) rewrite() error {
	var keep []string
	for _, l := range h.lines {
		if !h.secret(l) && len(l) <= maxHistoryLine {
			keep = append(keep, l)
		}
	}
	var b bytes.Buffer
	for _, l := range keep {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	tmp, err := os.CreateTemp(filepath.Dir(h.path), ".history-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), h.path); err != nil {
		return err
	}
	h.inFile = len(keep)
	return nil
}

// Len returns how many lines the history holds.
func (h *history) Len() int { return len(h.lines) }

// At returns a line: 0 is the most recent.
func (h *history) At(i int) string {
	if i < 0 || i >= len(h.lines) {
		panic(fmt.Sprintf("shell: history index %d out of range [0,%d)", i, len(h.lines)))
	}
	return h.lines[len(h.lines)-1-i]
}

package main

import (
	"io"
	"sync/atomic"

	"github.com/microbot/microbot/bot/ops"
)

// logOutput is where the log (and the audit log, with --audit_log=-) is
// written: standard error until the console is an input, then the
// console's LogWriter, which prints above the prompt while the console
// edits a line on the terminal standard error also is, so a log line never
// lands inside the prompt. The logger is built before the console (which
// completes from the command table, which needs the logger): hence the
// switch. It says whether standard error is a terminal, so the log format
// (auto: text on a terminal) still follows standard error.
type logOutput struct {
	stderr io.Writer
	w      atomic.Pointer[io.Writer]
}

func newLogOutput(stderr io.Writer) *logOutput { return &logOutput{stderr: stderr} }

// use sends what is written to w from now on.
func (o *logOutput) use(w io.Writer) { o.w.Store(&w) }

func (o *logOutput) Write(p []byte) (int, error) {
	if w := o.w.Load(); w != nil {
		return (*w).Write(p)
	}
	return o.stderr.Write(p)
}

// IsTerminal reports whether standard error is a terminal.
func (o *logOutput) IsTerminal() bool { return ops.IsTerminal(o.stderr) }

package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/microbot/microbot/input"
)

// Progress of a running command. The bot gives every command it runs for a
// chat message a command.ProgressFunc (in its context); the lines the
// command reports with it are shown in the room and thread of the message,
// before the reply:
//
//   - on an input that edits messages (input.Editor: Slack), in one
//     message, posted at the first line and edited as lines come, showing
//     the last ProgressLines lines;
//   - elsewhere, as lines (Reply.Progress), several lines that come
//     together in one message.
//
// Either way at most one message or edit goes out per progress interval
// (WithProgressInterval, default one second) — the first at once — and
// what comes faster is folded: an edit shows the latest lines; lines
// waiting to be sent are kept up to ProgressLines, the older ones counted
// in an "(N lines skipped)" line. Lines are cut at MaxProgressLine bytes and
// shown printable (input.PrintableLine). When the command returns, what is
// still unsent goes out, then the reply; nothing reported after that is
// shown. If a progress message cannot be sent, the command's progress is
// no longer shown (logged); the command and its reply go on.
//
// These are the bounds of the progress shown.
const (
	// DefaultProgressInterval is the least time between two progress
	// messages or edits of one command.
	DefaultProgressInterval = time.Second
	// ProgressLines is how many lines an edited progress message shows, and
	// how many lines wait to be sent elsewhere.
	ProgressLines = 10
	// MaxProgressLine is the longest line shown, in bytes.
	MaxProgressLine = 300
)

// progress shows the progress lines of one command: see above.
type progress struct {
	conn     input.Conn
	ed       input.Editor // nil: lines
	ev       *input.Event
	work     context.Context // sends outlive the command's context
	interval time.Duration
	timeout  time.Duration // of one send
	log      *slog.Logger

	mu      sync.Mutex
	lines   []string // editor: the last ProgressLines lines; else: lines not yet sent
	folded  int      // editor: lines before lines; else: lines dropped unsent
	dirty   bool     // something to send
	closed  bool
	started bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}

	id string // editor: the progress message, once posted (loop only)
}

func (b *Bot) newProgress(work context.Context, conn input.Conn, ev *input.Event, log *slog.Logger) *progress {
	p := &progress{conn: conn, ev: ev, work: work, interval: b.opts.progressInterval, timeout: b.opts.sendTimeout,
		log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	p.ed, _ = conn.(input.Editor)
	return p
}

// report is the command's ProgressFunc.
func (p *progress) report(line string) {
	line = progressLine(line)
	if line == "" {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.lines = append(p.lines, line)
	if len(p.lines) > ProgressLines {
		p.lines = p.lines[1:]
		p.folded++
	}
	p.dirty = true
	if !p.started {
		p.started = true
		go p.loop()
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// progressLine is line as shown: one printable line, cut at
// MaxProgressLine bytes.
func progressLine(line string) string {
	line = input.PrintableLine(strings.TrimSpace(line))
	if len(line) <= MaxProgressLine {
		return line
	}
	cut := MaxProgressLine - len("…")
	for cut > 0 && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + "…"
}

// close sends what is still unsent and stops: nothing reported later is
// shown. It returns once the last send is done (each send is bounded by
// the send timeout).
func (p *progress) close() {
	p.mu.Lock()
	p.closed = true
	started := p.started
	p.mu.Unlock()
	if started {
		close(p.stop)
		<-p.done
	}
}

// loop sends the progress, paced, until close.
func (p *progress) loop() {
	defer close(p.done)
	var last time.Time
	for {
		select {
		case <-p.wake:
		case <-p.stop:
			p.flush()
			return
		}
		if wait := p.interval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.stop:
				t.Stop()
				p.flush()
				return
			}
		}
		if !p.flush() {
			p.giveUp()
			return
		}
		last = time.Now()
	}
}

// giveUp stops showing progress after a failed send.
func (p *progress) giveUp() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
}

// flush sends what is new, if anything; false if that failed.
func (p *progress) flush() bool {
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return true
	}
	var text string
	if p.ed != nil {
		text = joinProgress(p.lines, p.folded, "earlier")
	} else {
		text = joinProgress(p.lines, p.folded, "skipped")
		p.lines, p.folded = nil, 0
	}
	p.dirty = false
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(p.work, p.timeout)
	defer cancel()
	reply := &input.Reply{Text: text, Progress: true}
	var err error
	switch {
	case p.ed == nil:
		err = p.conn.Send(ctx, p.ev, reply)
	case p.id == "":
		p.id, err = p.ed.SendEditable(ctx, p.ev, reply)
	default:
		err = p.ed.Edit(ctx, p.ev, p.id, reply)
	}
	if err != nil {
		p.log.Warn("showing a command's progress failed; its progress is no longer shown", "room", p.ev.Room, "err", err)
		return false
	}
	return true
}

// joinProgress writes lines, after a line counting the folded ones.
func joinProgress(lines []string, folded int, how string) string {
	text := strings.Join(lines, "\n")
	if folded == 0 {
		return text
	}
	noun := "lines"
	if folded == 1 {
		noun = "line"
	}
	return fmt.Sprintf("(%d %s %s)\n%s", folded, noun, how, text)
}

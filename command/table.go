package command

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/microbot/microbot/input"
)

// Table is the ordered command table. It is safe for concurrent use:
// matching reads an immutable snapshot and never waits for a change.
type Table struct {
	visible Visibility

	mu       sync.Mutex // serialises changes
	builtins []*Command
	reserved map[string]bool
	dynamic  map[string]*Command // by folded name

	snap  atomic.Pointer[snapshot]
	dirty atomic.Bool // snap is stale; the next reader rebuilds it
}

// entry is one pattern of a command in the index.
type entry struct {
	words []string
	cmd   *Command
	order int
}

// snapshot is the table as matching sees it; never changed once published.
type snapshot struct {
	index    map[string][]entry // by first word
	commands []*Command         // in effect, sorted for help
	byName   map[string]*Command
}

// Option configures a Table.
type Option func(*Table)

// WithVisibility sets the function that decides which commands help lists
// and suggests to a caller. Without one, every command is visible.
func WithVisibility(v Visibility) Option { return func(t *Table) { t.visible = v } }

// NewTable returns an empty table.
func NewTable(opts ...Option) *Table {
	t := &Table{reserved: map[string]bool{}, dynamic: map[string]*Command{}}
	for _, o := range opts {
		o(t)
	}
	t.rebuild()
	return t
}

// Register adds built-in commands, in order (the order breaks ties, see the
// package comment). It fails, adding none, if a command has no name or no
// Run, or if a pattern is already taken.
func (t *Table) Register(cmds ...*Command) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	taken := map[string]string{}
	for _, c := range t.builtins {
		for _, p := range c.patterns() {
			taken[strings.Join(p, " ")] = c.Name
		}
	}
	for _, c := range cmds {
		if c == nil || len(c.patterns()) == 0 || c.Run == nil {
			return fmt.Errorf("command: register %v: a command needs a name and a Run", c)
		}
		for _, p := range c.patterns() {
			key := strings.Join(p, " ")
			if other, dup := taken[key]; dup {
				return fmt.Errorf("command: register %q: pattern %q already taken by %q", c.Name, key, other)
			}
			taken[key] = c.Name
		}
	}
	t.builtins = append(t.builtins, cmds...)
	t.dirty.Store(true)
	return nil
}

// Reserve keeps words from being taken by [Table.Put] (e.g. "confirm", for
// a built-in added later).
func (t *Table) Reserve(words ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range words {
		t.reserved[fold(w)] = true
	}
}

// Put adds a command at run time, or replaces the one of the same name
// added earlier with Put. Its name must be one word. It hides the
// Replaceable built-ins whose pattern starts with that word; it fails with
// an error wrapping [ErrReserved] if a built-in that is not Replaceable, or
// a reserved word, has it.
func (t *Table) Put(cmd *Command) error {
	if cmd == nil || cmd.Run == nil {
		return errors.New("command: put: a command needs a Run")
	}
	if f := strings.Fields(cmd.Name); len(f) != 1 || f[0] != cmd.Name || input.PrintableLine(cmd.Name) != cmd.Name {
		return fmt.Errorf("command: put %q: the name must be one word of printable characters", cmd.Name)
	}
	key := fold(cmd.Name)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reserved[key] {
		return fmt.Errorf("command: put %q: %w", cmd.Name, ErrReserved)
	}
	for _, b := range t.builtins {
		if b.Replaceable {
			continue
		}
		for _, p := range b.patterns() {
			if p[0] == key {
				return fmt.Errorf("command: put %q: %w (%q)", cmd.Name, ErrReserved, b.Name)
			}
		}
	}
	t.dynamic[key] = cmd
	t.dirty.Store(true)
	return nil
}

// Remove removes the command added with Put under name, bringing back the
// built-ins it hid. It reports whether there was one.
func (t *Table) Remove(name string) bool {
	key := fold(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.dynamic[key]; !ok {
		return false
	}
	delete(t.dynamic, key)
	t.dirty.Store(true)
	return true
}

// load returns the current snapshot, rebuilding it first if the table
// changed since it was made (so a burst of changes costs one rebuild).
func (t *Table) load() *snapshot {
	if t.dirty.Load() {
		t.mu.Lock()
		if t.dirty.Load() {
			t.rebuild()
			t.dirty.Store(false)
		}
		t.mu.Unlock()
	}
	return t.snap.Load()
}

// rebuild publishes a new snapshot; t.mu must be held.
func (t *Table) rebuild() {
	s := &snapshot{index: map[string][]entry{}, byName: map[string]*Command{}}
	order := 0
	add := func(c *Command) {
		for _, p := range c.patterns() {
			s.index[p[0]] = append(s.index[p[0]], entry{words: p, cmd: c, order: order})
		}
		s.commands = append(s.commands, c)
		s.byName[fold(c.Name)] = c
		order++
	}
	for _, b := range t.builtins {
		hidden := false
		if b.Replaceable {
			for _, p := range b.patterns() {
				if _, ok := t.dynamic[p[0]]; ok {
					hidden = true
					break
				}
			}
		}
		if !hidden {
			add(b)
		}
	}
	names := make([]string, 0, len(t.dynamic))
	for k := range t.dynamic {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		add(t.dynamic[k])
	}
	for _, es := range s.index {
		slices.SortStableFunc(es, func(a, b entry) int {
			if c := cmp.Compare(len(b.words), len(a.words)); c != 0 {
				return c
			}
			return cmp.Compare(a.order, b.order)
		})
	}
	keys := make(map[*Command]string, len(s.commands))
	for _, c := range s.commands {
		keys[c] = fold(c.HelpLine())
	}
	slices.SortStableFunc(s.commands, func(a, b *Command) int {
		return cmp.Compare(keys[a], keys[b])
	})
	t.snap.Store(s)
}

// Lookup returns the command in effect under name (a built-in's full name
// or a command added with Put), or nil.
func (t *Table) Lookup(name string) *Command {
	return t.load().byName[fold(strings.Join(strings.Fields(name), " "))]
}

// Commands returns every command in effect, each once, sorted by help line.
func (t *Table) Commands() []*Command {
	return slices.Clone(t.load().commands)
}

// Visible returns the commands in effect that the caller of req may see,
// sorted by help line.
func (t *Table) Visible(ctx context.Context, req *Request) []*Command {
	all := t.load().commands
	if t.visible == nil {
		return slices.Clone(all)
	}
	out := make([]*Command, 0, len(all))
	for _, c := range all {
		if t.visible(ctx, req, c) {
			out = append(out, c)
		}
	}
	return out
}

// Match parses text and finds the command it asks for. The Request's
// Command is nil if none matches; Event is left for the caller to set.
func (t *Table) Match(text string) *Request {
	req := &Request{Text: Normalize(text)}
	req.Words = Split(req.Text)
	if len(req.Words) == 0 {
		return req
	}
	s := t.load()
	es := s.index[fold(req.Words[0].Text)]
	for _, e := range es {
		if len(e.words) > len(req.Words) || !wordsMatch(req.Words, e.words) {
			continue
		}
		req.Command, req.Matched = e.cmd, len(e.words)
		return req
	}
	for _, e := range es {
		if !slices.Contains(req.Similar, e.cmd) {
			req.Similar = append(req.Similar, e.cmd)
		}
	}
	return req
}

func wordsMatch(words []Word, pattern []string) bool {
	for i, p := range pattern[1:] {
		if fold(words[i+1].Text) != p {
			return false
		}
	}
	return true
}

// Execute runs the request's command and returns its reply: an error it
// returns becomes an error reply ("error: ..."), and a request that matched
// nothing gets a short reply pointing to help. The reply's text is made
// [input.Printable], whoever wrote it (a command service's answer, an
// error quoting one): no control character reaches the reader as it is.
// Execute does not recover panics or set a deadline: the bot does.
func (t *Table) Execute(ctx context.Context, req *Request) *input.Reply {
	if req.Command == nil {
		return t.unknown(ctx, req)
	}
	rep, err := req.Command.Run(ctx, req)
	if err != nil {
		return Errorf("%s", input.Printable(err.Error()))
	}
	if rep == nil {
		return Text("ok")
	}
	if p := input.Printable(rep.Text); p != rep.Text {
		cp := *rep // a command may hand out the same reply twice
		cp.Text = p
		return &cp
	}
	return rep
}

// unknown is the reply to a line that matched no command.
func (t *Table) unknown(ctx context.Context, req *Request) *input.Reply {
	if len(req.Words) == 0 {
		return &input.Reply{Text: `type "help" for the list of commands`}
	}
	var similar []string
	for _, c := range req.Similar {
		if t.visible == nil || t.visible(ctx, req, c) {
			similar = append(similar, c.Usage)
		}
	}
	if len(similar) == 0 {
		return &input.Reply{
			Text:  fmt.Sprintf("unknown command %s — type \"help\" for the list", Quote(req.Words[0].Text)),
			Error: true,
		}
	}
	return &input.Reply{
		Text: fmt.Sprintf("unknown command %s — did you mean %s? type \"help\" for the list",
			Quote(req.Text), strings.Join(quoteAll(similar), " or ")),
		Error: true,
	}
}

// Quote returns s quoted for a reply, shortened to 40 characters, with
// control characters and invalid UTF-8 escaped.
func Quote(s string) string {
	const max = 40
	i := 0
	for n := 0; i < len(s); n++ {
		if n == max {
			return fmt.Sprintf("%q…", s[:i])
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return fmt.Sprintf("%q", s)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

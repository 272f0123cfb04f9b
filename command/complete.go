package command

import (
	"context"
	"slices"
	"strings"

	"github.com/microbot/microbot/input"
)

// CompleteFunc proposes values for a parameter of a command while it is
// typed (the console's Tab key). req is the line before the parameter,
// matched to the command: req.Params() are the parameters typed before it,
// req.Event is the caller. partial is what is typed of the parameter so far,
// as typed ("" at the start of a new word). Each value returned replaces
// partial. The function stops when ctx ends (a person is waiting for it)
// and returns nothing rather than an error.
type CompleteFunc func(ctx context.Context, req *Request, partial string) []string

// Complete proposes completions of ev.Text, a line typed up to the cursor,
// for the caller of ev: the next word of the commands the caller may see,
// and values of the parameter being typed, from the Complete function of
// the command the line matches. Each candidate replaces ev.Text[from:] (the
// word being typed, or nothing at the start of a new word); they are sorted
// and unique. ev is not changed.
func (t *Table) Complete(ctx context.Context, ev *input.Event) (from int, candidates []string) {
	head := ev.Text
	if len(quoteReplacer.Replace(head)) != len(head) {
		// Typographic quotes: Split's offsets would not be head's.
		return len(head), nil
	}
	words := Split(head)
	from, partial := len(head), ""
	if n := len(words); n > 0 && words[n-1].End == len(head) {
		from, partial = words[n-1].Start, head[words[n-1].Start:]
		words = words[:n-1]
	}
	caller := &Request{Event: ev, Text: Normalize(head[:from]), Words: words}
	visible := t.Visible(ctx, caller)
	out := nextWords(visible, words, partial)
	if len(words) > 0 {
		req := t.Match(head[:from])
		req.Event = ev
		if c := req.Command; c != nil && c.Complete != nil && slices.Contains(visible, c) {
			out = append(out, c.Complete(ctx, req, partial)...)
		}
	}
	// A candidate goes into the reader's line as it is: none with a
	// control character (a service name from the registry, say).
	out = slices.DeleteFunc(out, func(c string) bool { return input.PrintableLine(c) != c })
	slices.Sort(out)
	return from, slices.Compact(out)
}

// nextWords returns the words that may follow words in the patterns of
// cmds, those starting with partial (compared case-insensitively).
func nextWords(cmds []*Command, words []Word, partial string) []string {
	k, prefix := len(words), fold(partial)
	var out []string
	for _, c := range cmds {
	patterns:
		for _, p := range c.patterns() {
			if len(p) <= k || !strings.HasPrefix(p[k], prefix) {
				continue
			}
			for i, w := range words {
				if fold(w.Text) != p[i] {
					continue patterns
				}
			}
			out = append(out, p[k])
		}
	}
	return out
}

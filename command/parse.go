package command

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Word is one word of a line: its text with quotes removed, and where it
// lies in the (normalised) line, so the raw text around it can be recovered.
type Word struct {
	// Text is the word without its quotes.
	Text string
	// Start and End are byte offsets of the word, quotes included, in the
	// normalised line: line[Start:End] is the word as typed.
	Start, End int
	// Quoted is true when the word was written in quotes.
	Quoted bool
}

// quoteReplacer turns typographic quotes into ASCII ones.
var quoteReplacer = strings.NewReplacer(
	"\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u201f", `"`,
	"\u2018", "'", "\u2019", "'", "\u201a", "'", "\u201b", "'",
)

// Normalize returns text with typographic quotes turned into ASCII ones and
// leading and trailing white space removed. It is the text [Split] and
// [Request.Rest] work on.
func Normalize(text string) string {
	return strings.TrimFunc(quoteReplacer.Replace(text), unicode.IsSpace)
}

// Split splits a normalised line into words (see the package comment for
// the rules). It never fails: any byte string gives some list of words.
func Split(line string) []Word {
	var words []Word
	i := 0
	for i < len(line) {
		r, size := utf8.DecodeRuneInString(line[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		w := Word{Start: i}
		var b strings.Builder
		// A quote at the start of a word opens a quoted part if it is closed
		// later on; anything else is literal up to the next white space.
		if (r == '"' || r == '\'') && strings.IndexByte(line[i+1:], byte(r)) >= 0 {
			end := i + 1 + strings.IndexByte(line[i+1:], byte(r))
			b.WriteString(line[i+1 : end])
			w.Quoted = true
			i = end + 1
		}
		for i < len(line) {
			r, size := utf8.DecodeRuneInString(line[i:])
			if unicode.IsSpace(r) {
				break
			}
			b.WriteString(line[i : i+size])
			i += size
		}
		w.End = i
		w.Text = b.String()
		words = append(words, w)
	}
	return words
}

// fold returns the key words are compared by: Unicode simple case folding
// via lower case.
func fold(s string) string {
	return strings.ToLower(s)
}

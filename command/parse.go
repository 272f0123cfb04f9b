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

// Fold returns the key by which names are compared: command names and
// words, the command part of a command service's name, the service names
// of an access policy. Two strings have the same key exactly when
// [strings.EqualFold] says they are equal (Unicode simple case folding):
// "DEPLOY", "Deploy" and "deploy" are one name, and so are "ſ" and "s",
// "ς" and "σ", "K" (Kelvin) and "k". The key is in lower case.
//
// It is the one normalisation of names: everything that compares a name
// with another, or keys a map by one, goes through it.
func Fold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return foldSlow(s)
		}
	}
	return s
}

// foldSlow maps every rune to one representative of its simple folding
// orbit: the lower case of the orbit's smallest rune if that is in the
// orbit too (it is for every letter with a case pair), else the smallest.
func foldSlow(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		if lc := unicode.ToLower(low); lc != low {
			for f := unicode.SimpleFold(low); f != low; f = unicode.SimpleFold(f) {
				if f == lc {
					low = lc
					break
				}
			}
		}
		b.WriteRune(low)
	}
	return b.String()
}

// fold is Fold, for the package's own use.
func fold(s string) string { return Fold(s) }

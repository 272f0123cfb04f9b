package slack

import (
	"strings"
	"unicode/utf8"
)

// unescaper undoes the three escapes Slack puts in message text.
var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// escaper applies them to text the bot sends (Slack requires it).
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// stripMention removes the mention of the bot user botID where it opens
// text (after blanks), with a colon or comma right after it:
// "<@UBOT>: list services" -> "list services". ok is false when text does
// not start with the mention.
func stripMention(text, botID string) (rest string, ok bool) {
	if botID == "" {
		return text, false
	}
	s := strings.TrimLeft(text, " \t\n")
	if !strings.HasPrefix(s, "<@"+botID) {
		return text, false
	}
	s = s[len("<@"+botID):]
	switch {
	case strings.HasPrefix(s, ">"):
		s = s[1:]
	case strings.HasPrefix(s, "|"):
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return text, false
		}
		s = s[end+1:]
	default: // <@UBOTX>: another user whose id starts like ours
		return text, false
	}
	s = strings.TrimLeft(s, " \t\n")
	if strings.HasPrefix(s, ":") || strings.HasPrefix(s, ",") {
		s = strings.TrimLeft(s[1:], " \t\n")
	}
	return s, true
}

// decodeText turns Slack's message markup back into what the person typed:
// &amp; &lt; &gt; are undone; <http://x|x> links become what was typed (the
// label if it is the URL, with or without its scheme; otherwise the URL);
// <mailto:a@b|a@b> becomes a@b; <@U123> becomes @name (name from
// userName, or the id when it returns ""); <#C123|general> becomes
// #general; <!here> becomes @here. Anything else in angle brackets (which
// Slack never sends unescaped) is left as it is.
func decodeText(text string, userName func(id string) string) string {
	var b strings.Builder
	b.Grow(len(text))
	for {
		open := strings.IndexByte(text, '<')
		if open < 0 {
			b.WriteString(unescaper.Replace(text))
			return b.String()
		}
		end := strings.IndexByte(text[open:], '>')
		if end < 0 {
			b.WriteString(unescaper.Replace(text))
			return b.String()
		}
		b.WriteString(unescaper.Replace(text[:open]))
		b.WriteString(decodeToken(text[open+1:open+end], userName))
		text = text[open+end+1:]
	}
}

// decodeToken decodes the inside of one <…> token.
func decodeToken(tok string, userName func(string) string) string {
	target, label, _ := strings.Cut(tok, "|")
	label = unescaper.Replace(label)
	switch {
	case strings.HasPrefix(target, "@"): // <@U123> or <@U123|name>
		if label != "" {
			return "@" + strings.TrimPrefix(label, "@")
		}
		id := target[1:]
		if userName != nil {
			if n := userName(id); n != "" {
				return "@" + n
			}
		}
		return "@" + id
	case strings.HasPrefix(target, "#"): // <#C123|general>
		if label != "" {
			return "#" + strings.TrimPrefix(label, "#")
		}
		return target
	case strings.HasPrefix(target, "!"): // <!here>, <!subteam^S1|@team>, <!date^…|fallback>
		if label != "" {
			if strings.HasPrefix(target, "!subteam^") && !strings.HasPrefix(label, "@") {
				return "@" + label
			}
			return label
		}
		name, _, _ := strings.Cut(target[1:], "^")
		return "@" + name
	}
	url := unescaper.Replace(target)
	if !looksLikeURL(url) {
		return "<" + unescaper.Replace(tok) + ">"
	}
	if mail, ok := strings.CutPrefix(url, "mailto:"); ok {
		if label == "" || label == mail || label == url {
			return mail
		}
		return mail
	}
	if label == "" || label == url {
		return url
	}
	if _, rest, ok := strings.Cut(url, "://"); ok && (label == rest || label == strings.TrimSuffix(rest, "/")) {
		return label
	}
	return url
}

// looksLikeURL reports whether s starts with a URL scheme ("http:",
// "mailto:", "tel:" …).
func looksLikeURL(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon < 1 {
		return false
	}
	for i, r := range s[:colon] {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// fence opens and closes a code block in Slack's mrkdwn.
const fence = "```"

// codeSafe keeps a run of three backticks inside a code reply from closing
// the block early: a zero-width space goes between the second and third.
var codeSafe = strings.NewReplacer(fence, "``\u200b`")

// splitLines cuts text into chunks of at most max bytes at line boundaries
// (the newline between two chunks is dropped: joining the chunks with "\n"
// gives text back). A line longer than max is cut at the last space of its
// second half, or at max on a rune boundary, and continues in the next
// chunk.
func splitLines(text string, max int) []string {
	var chunks []string
	for len(text) > max {
		cut := strings.LastIndexByte(text[:max+1], '\n')
		if cut > 0 {
			chunks = append(chunks, text[:cut])
			text = text[cut+1:]
			continue
		}
		cut = strings.LastIndexByte(text[:max], ' ')
		if cut < max/2 {
			cut = max
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
		}
		chunks = append(chunks, text[:cut])
		text = text[cut:]
	}
	return append(chunks, text)
}

// splitReply turns the text of a reply into the messages to send, each
// escaped for Slack and holding at most about max bytes of the text. A Code
// reply is wrapped in a code block per message. In plain text, a code block
// cut by a split is closed at the end of its part and opened again at the
// start of the next, so every part renders as the whole would. The text is
// cut at line boundaries: joining the unwrapped parts with "\n" gives it back
// (a single line longer than max is broken into several).
func splitReply(text string, code bool, max int) []string {
	if code {
		text = strings.TrimRight(text, "\n")
		chunks := splitLines(codeSafe.Replace(text), max)
		for i, c := range chunks {
			chunks[i] = fence + "\n" + escaper.Replace(c) + "\n" + fence
		}
		return chunks
	}
	var (
		parts    []string
		cur      []string // lines of the part being filled
		size     int      // bytes of cur joined with newlines
		inFence  bool     // inside a code block after the lines so far
		reopened bool     // cur holds only the fence that reopens a block
	)
	end := func() string {
		s := strings.Join(cur, "\n")
		if inFence {
			s += "\n" + fence
		}
		return escaper.Replace(s)
	}
	for _, line := range strings.Split(text, "\n") {
		for _, piece := range splitLines(line, max) {
			if len(cur) > 0 && !reopened && size+1+len(piece) > max {
				parts = append(parts, end())
				cur, size = nil, 0
				if inFence {
					cur, size, reopened = []string{fence}, len(fence), true
				}
			}
			if len(cur) > 0 {
				size++
			}
			cur = append(cur, piece)
			size += len(piece)
			reopened = false
			if strings.Count(piece, fence)%2 == 1 {
				inFence = !inFence
			}
		}
	}
	return append(parts, end()) // an unclosed block is closed here
}

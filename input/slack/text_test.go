package slack

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStripMention(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"<@UBOT> list services", "list services", true},
		{"<@UBOT>: list services", "list services", true},
		{"<@UBOT>, list services", "list services", true},
		{"<@UBOT> : list", "list", true},
		{"  <@UBOT>list", "list", true},
		{"<@UBOT|microbot> help", "help", true},
		{"<@UBOT>", "", true},
		{"<@UBOTX> help", "<@UBOTX> help", false},
		{"hey <@UBOT> help", "hey <@UBOT> help", false},
		{"help", "help", false},
	}
	for _, tt := range tests {
		got, ok := stripMention(tt.in, "UBOT")
		if got != tt.want || ok != tt.ok {
			t.Errorf("stripMention(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecodeText(t *testing.T) {
	names := map[string]string{"U1": "ada", "UBOT": "microbot"}
	lookup := func(id string) string { return names[id] }
	tests := []struct{ name, in, want string }{
		{"plain", "list services", "list services"},
		{"escapes", "a &amp;&amp; b &lt;c&gt; &amp;lt;", "a && b <c> &lt;"},
		{"json with link", `query svc M {"url": "<http://x>"}`, `query svc M {"url": "http://x"}`},
		{"link label is url", `{"url": "<http://x.io/a|http://x.io/a>"}`, `{"url": "http://x.io/a"}`},
		{"link label without scheme", "open <https://example.com|example.com>", "open example.com"},
		{"link label without scheme, trailing slash", "<http://example.com/|example.com>", "example.com"},
		{"link with other label", "see <https://example.com/docs|the docs>", "see https://example.com/docs"},
		{"link with escaped query", "<http://x/?a=1&amp;b=2>", "http://x/?a=1&b=2"},
		{"mailto", "mail <mailto:a@b.io|a@b.io>", "mail a@b.io"},
		{"mailto bare", "<mailto:a@b.io>", "a@b.io"},
		{"user known", "ask <@U1>", "ask @ada"},
		{"user unknown", "ask <@U9>", "ask @U9"},
		{"user with label", "ask <@U9|bob>", "ask @bob"},
		{"bot mid-text", "hey <@UBOT> hi", "hey @microbot hi"},
		{"channel", "in <#C123|general>", "in #general"},
		{"channel bare", "in <#C123>", "in #C123"},
		{"here", "<!here> deploy", "@here deploy"},
		{"subteam", "<!subteam^S1|@ops> look", "@ops look"},
		{"date", "<!date^1392734382^{date}|Feb 18>", "Feb 18"},
		{"unclosed bracket", "a < b", "a < b"},
		{"not a token", "<b>", "<b>"},
		{"typographic quotes untouched", "echo “hi”", "echo “hi”"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeText(tt.in, lookup); got != tt.want {
				t.Errorf("decodeText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// unwrap undoes what splitReply did to one part: the escapes and, for code,
// the fence lines.
func unwrap(part string, code bool) string {
	s := unescaper.Replace(part)
	if code {
		s = strings.TrimPrefix(s, fence+"\n")
		s = strings.TrimSuffix(s, "\n"+fence)
	}
	return s
}

func TestSplitReplyWhole(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 30000; i++ {
		b.WriteString(strings.Repeat("x<&>é", i%40))
		b.WriteString("\n")
	}
	long := strings.TrimSuffix(b.String(), "\n")
	tests := []struct {
		name string
		text string
		code bool
	}{
		{"short plain", "hello <world> & more", false},
		{"short code", "{\n  \"a\": 1\n}", true},
		{"long plain", long, false},
		{"long code", long, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := splitReply(tt.text, tt.code, 3500)
			var got []string
			for _, p := range parts {
				if n := utf8.RuneCountInString(p); n > 3500*5 {
					t.Errorf("part of %d characters", n)
				}
				if l := len(unescaper.Replace(p)); l > 3500+2*len(fence)+2 {
					t.Errorf("part of %d bytes of text, limit 3500", l)
				}
				if strings.Count(p, fence)%2 != 0 {
					t.Errorf("unbalanced fences in part %q…", p[:20])
				}
				if strings.ContainsAny(strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(p, "&amp;", ""), "&lt;", ""), "&gt;", ""), "<>&") {
					t.Errorf("unescaped <, > or & in a part")
				}
				got = append(got, unwrap(p, tt.code))
			}
			if strings.Join(got, "\n") != tt.text {
				t.Errorf("parts joined differ from the text (%d parts)", len(parts))
			}
		})
	}
}

func TestSplitReplyKeepsFencesBalanced(t *testing.T) {
	var b strings.Builder
	b.WriteString("Nodes:\n```\n")
	for i := range 400 {
		b.WriteString(strings.Repeat("n", 20) + string(rune('a'+i%26)) + "\n")
	}
	b.WriteString("```\nDone.")
	text := b.String()
	parts := splitReply(text, false, 1000)
	if len(parts) < 3 {
		t.Fatalf("%d parts, want several", len(parts))
	}
	for i, p := range parts {
		if strings.Count(p, fence)%2 != 0 {
			t.Errorf("part %d has unbalanced fences", i)
		}
		if i > 0 && i < len(parts)-1 && !strings.HasPrefix(p, fence+"\n") {
			t.Errorf("part %d does not reopen the code block: %q", i, p[:10])
		}
	}
	if !strings.HasSuffix(parts[len(parts)-1], "```\nDone.") {
		t.Errorf("last part ends %q", parts[len(parts)-1])
	}
}

func TestSplitReplyCodeCannotBeClosedEarly(t *testing.T) {
	parts := splitReply("a ``` b", true, 3500)
	if len(parts) != 1 || strings.Count(parts[0], fence) != 2 {
		t.Fatalf("parts = %q: the reply's own ``` closes the block", parts)
	}
}

func TestSplitLinesLongLine(t *testing.T) {
	line := strings.Repeat("é", 3000) // 6000 bytes, no spaces
	chunks := splitLines(line, 1000)
	for _, c := range chunks {
		if len(c) > 1000 || !utf8.ValidString(c) {
			t.Fatalf("chunk of %d bytes, valid UTF-8 %v", len(c), utf8.ValidString(c))
		}
	}
	if strings.Join(chunks, "") != line {
		t.Fatal("chunks do not add up to the line")
	}
}

func TestCheckTokenNeverQuotesTheToken(t *testing.T) {
	tests := []struct{ token, want string }{
		{"", "no app-level token"},
		{"xoxb-1234-5678-abcdef", "holds a bot token"},
		{"xoxp-1234-5678-abcdef", "holds a user token"},
		{"hunter2-secret-value", "not a Slack app-level token"},
		{"xapp-1", "malformed"},
		{"xapp-1-A1-2-ab cd", "malformed"},
		{"xapp-1-A1-2-ab\ncd", "malformed"},
	}
	for _, tt := range tests {
		err := checkToken(tt.token, "xapp-", "app-level token", "--slack_app_token", "an xapp-… token")
		if err == nil {
			t.Errorf("checkToken(%q) accepted it", tt.token)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("checkToken(%q) = %q, want it to say %q", tt.token, err, tt.want)
		}
		if tt.token != "" && strings.Contains(err.Error(), tt.token[5:]) {
			t.Errorf("error %q quotes the token", err)
		}
	}
	if err := checkToken("xapp-1-A1-2-abcdef", "xapp-", "app-level token", "x", "y"); err != nil {
		t.Errorf("a good token was refused: %v", err)
	}
}

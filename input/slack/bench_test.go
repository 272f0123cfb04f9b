package slack

import (
	"strings"
	"testing"
)

func BenchmarkDecodeText(b *testing.B) {
	text := `<@UBOT> query go.micro.srv.greeter Say.Hello {"name": "<mailto:a@b.io|a@b.io>", "url": "<http://example.com|example.com>", "q": "a &amp;&amp; b &lt;c&gt;"} <@U1> <#C1|general>`
	names := func(string) string { return "ada" }
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		s, _ := stripMention(text, "UBOT")
		_ = decodeText(s, names)
	}
}

func BenchmarkSplitReply100KB(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 100*1024; i++ {
		sb.WriteString(strings.Repeat("node-<id> & 10.0.0.1:8080 ", i%5+1))
		sb.WriteString("\n")
	}
	text := sb.String()
	for _, code := range []bool{false, true} {
		name := "plain"
		if code {
			name = "code"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				_ = splitReply(text, code, PartSize)
			}
		})
	}
}

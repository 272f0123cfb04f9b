package xmppclient

import (
	"io"
	"net"
	"strings"
	"testing"
)

// BenchmarkStreamReader measures reading and decoding room messages of a
// typical size (a command and its MUC envelope).
func BenchmarkStreamReader(b *testing.B) {
	const stanza = `<message from='ops@conference.example.org/alice' to='bot@example.org/microbot' type='groupchat' id='a1b2c3'>` +
		`<body>microbot: query go.micro.srv.greeter Say.Hello {&quot;name&quot;: &quot;John&quot;}</body>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' id='x' by='ops@conference.example.org'/></message>`
	const n = 1000
	in := testHeader + strings.Repeat(stanza, n)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		sr := newStreamReader(strings.NewReader(in), DefaultMaxStanzaSize)
		if _, err := sr.header(); err != nil {
			b.Fatal(err)
		}
		for range n {
			el, err := sr.next()
			if err != nil {
				b.Fatal(err)
			}
			var m Message
			if err := el.decode(&m); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncodeMessage measures writing a reply of 2 KiB with characters
// that need escaping.
func BenchmarkEncodeMessage(b *testing.B) {
	a, p := net.Pipe()
	defer a.Close()
	go func() { _, _ = io.Copy(io.Discard, p) }()
	w := &streamWriter{conn: a, timeout: DefaultTimeout, max: DefaultMaxSendSize}
	body := strings.Repeat("go.micro.srv.greeter  <1.0.0>  127.0.0.1:8080 & more\n", 40)
	msg := &Message{To: "ops@conference.example.org", Type: MessageGroupchat, Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.encode(b.Context(), msg); err != nil {
			b.Fatal(err)
		}
	}
}

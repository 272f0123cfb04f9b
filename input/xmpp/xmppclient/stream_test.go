package xmppclient

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const testHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>`

// endless is a reader that never ends: a peer that keeps sending.
type endless struct{ b byte }

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.b
	}
	return len(p), nil
}

// readAll reads elements until an error, with a bound on time so that a
// hang fails the test instead of stalling it.
func readAll(t *testing.T, r io.Reader, max int64) ([]*element, error) {
	t.Helper()
	type result struct {
		els []*element
		err error
	}
	done := make(chan result, 1)
	go func() {
		sr := newStreamReader(r, max)
		var res result
		if _, res.err = sr.header(); res.err != nil {
			done <- res
			return
		}
		for {
			el, err := sr.next()
			if err != nil {
				res.err = err
				done <- res
				return
			}
			res.els = append(res.els, el)
		}
	}()
	select {
	case res := <-done:
		return res.els, res.err
	case <-time.After(20 * time.Second):
		t.Fatal("stream reader hung")
		return nil, nil
	}
}

func TestStreamReaderHostileInput(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	tests := []struct {
		name  string
		input io.Reader
		want  error  // matched with errors.Is, or nil
		text  string // or a piece of the error text
		ok    int    // elements read before the error
	}{
		{name: "unbalanced tags", input: strings.NewReader(testHeader + "<message><body>hi</message>"), text: "malformed XML"},
		{name: "huge stanza", input: strings.NewReader(testHeader + "<message><body>" + strings.Repeat("a", 200<<10) + "</body></message>"), want: ErrStanzaTooLarge},
		{name: "never-ending attribute", input: io.MultiReader(strings.NewReader(testHeader+"<message to='"), endless{'a'}), want: ErrStanzaTooLarge},
		{name: "never-ending text", input: io.MultiReader(strings.NewReader(testHeader+"<message><body>"), endless{'x'}), want: ErrStanzaTooLarge},
		{name: "never-ending header", input: io.MultiReader(strings.NewReader("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='"), endless{'a'}), want: ErrStanzaTooLarge},
		{name: "never-ending whitespace", input: io.MultiReader(strings.NewReader(testHeader), endless{' '}), want: ErrStanzaTooLarge},
		{name: "billion laughs", input: strings.NewReader(`<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>` + testHeader + "<message><body>&lol3;</body></message>"), want: ErrRestrictedXML},
		{name: "undeclared entity", input: strings.NewReader(testHeader + "<message><body>&lol9;</body></message>"), text: "malformed XML"},
		{name: "external entity", input: strings.NewReader(`<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + testHeader + "<message><body>&xxe;</body></message>"), want: ErrRestrictedXML},
		{name: "DTD inside the stream", input: strings.NewReader(testHeader + `<!DOCTYPE x [<!ENTITY a "b">]><message/>`), want: ErrRestrictedXML},
		{name: "comment", input: strings.NewReader(testHeader + "<message><!-- hi --></message>"), want: ErrRestrictedXML},
		{name: "processing instruction in a stanza", input: strings.NewReader(testHeader + "<message><?php evil() ?></message>"), want: ErrRestrictedXML},
		{name: "deep nesting", input: strings.NewReader(testHeader + "<message>" + deep + "</message>"), want: ErrRestrictedXML},
		{name: "too many tokens", input: strings.NewReader(testHeader + "<message>" + strings.Repeat("<a/>", maxTokens) + "</message>"), want: ErrRestrictedXML},
		{name: "text between stanzas", input: strings.NewReader(testHeader + "<message/>hello<message/>"), want: ErrRestrictedXML, ok: 1},
		{name: "invalid character reference", input: strings.NewReader(testHeader + "<message><body>&#0;</body></message>"), text: "malformed XML"},
		{name: "non-UTF-8 encoding", input: strings.NewReader(`<?xml version='1.0' encoding='ISO-8859-1'?>` + testHeader), text: "encoding"},
		{name: "invalid UTF-8", input: strings.NewReader(testHeader + "<message><body>\xff\xfe</body></message>"), text: "malformed XML"},
		{name: "wrong root element", input: strings.NewReader(`<html><body/></html>`), text: "expected <stream:stream>"},
		{name: "old stream version", input: strings.NewReader(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`), text: "unsupported stream version"},
		{name: "connection cut mid-stanza", input: strings.NewReader(testHeader + "<message><bo"), want: io.ErrUnexpectedEOF},
		{name: "closed stream after stanzas", input: strings.NewReader(testHeader + "<message/> \n <presence/></stream:stream>"), want: ErrStreamClosed, ok: 2},
		{name: "mismatched end of stream", input: strings.NewReader(testHeader + "</stream:other>"), text: "malformed XML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			els, err := readAll(t, tt.input, 64<<10)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v, want it to mention %q", err, tt.text)
			}
			if len(els) != tt.ok {
				t.Errorf("read %d elements before the error, want %d", len(els), tt.ok)
			}
		})
	}
}

func TestStreamErrorParsed(t *testing.T) {
	t.Parallel()
	in := testHeader + `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></stream:error></stream:stream>`
	_, err := readAll(t, strings.NewReader(in), 64<<10)
	var se *StreamError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StreamError", err)
	}
	if se.Condition != "conflict" || se.Text != "Replaced by new connection" {
		t.Errorf("got %+v", se)
	}
}

func TestStanzaDecoding(t *testing.T) {
	t.Parallel()
	in := testHeader + `
<message from='room@conference.localhost/alice' to='bot@localhost/r' type='groupchat' id='m1' xml:lang='en'>
  <body>microbot: list &lt;services&gt; &amp; more</body>
  <d:delay xmlns:d='urn:xmpp:delay' from='room@conference.localhost' stamp='2020-01-01T00:00:00Z'/>
  <active xmlns='http://jabber.org/protocol/chatstates'/>
</message>
<presence from='room@conference.localhost/alice'>
  <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant' jid='alice@localhost/phone'/><status code='110'/><status code='abc'/></x>
</presence>
<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>
<iq type='error' id='p2'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>nope</text></error></iq>
<c:message xmlns:c='jabber:client' from='x@y'><c:body>odd prefix</c:body></c:message>
`
	els, err := readAll(t, strings.NewReader(in), 64<<10)
	if len(els) != 5 {
		t.Fatalf("read %d elements, want 5 (%v)", len(els), err)
	}
	var m Message
	if err := els[0].decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Body != "microbot: list <services> & more" || m.Type != "groupchat" || m.Lang != "en" || !m.Delayed() || m.Delay.Stamp == "" {
		t.Errorf("message decoded as %+v", m)
	}
	if len(m.Extensions) != 1 || m.Extensions[0].XMLName.Local != "active" {
		t.Errorf("extensions %+v", m.Extensions)
	}
	var p Presence
	if err := els[1].decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.MUCUser == nil || len(p.MUCUser.Items) != 1 || p.MUCUser.Items[0].JID != "alice@localhost/phone" || !p.MUCUser.HasStatus(StatusSelf) {
		t.Errorf("presence decoded as %+v", p)
	}
	var ping IQ
	if err := els[2].decode(&ping); err != nil {
		t.Fatal(err)
	}
	if !ping.Payload.Is(NSPing, "ping") {
		t.Errorf("ping payload %+v", ping.Payload)
	}
	var iqErr IQ
	if err := els[3].decode(&iqErr); err != nil {
		t.Fatal(err)
	}
	if iqErr.Error == nil || iqErr.Error.Condition != ConditionServiceUnavailable || iqErr.Error.Text != "nope" || iqErr.Error.Type != ErrorCancel {
		t.Errorf("error decoded as %+v", iqErr.Error)
	}
	var odd Message
	if err := els[4].decode(&odd); err != nil || odd.Body != "odd prefix" {
		t.Errorf("odd prefix message: %+v, %v", odd, err)
	}
}

// TestStanzaEncodingEscapes checks that user text can never become markup.
func TestStanzaEncodingEscapes(t *testing.T) {
	t.Parallel()
	evil := `</body></message><message to='victim'><body>pwned</body></message><!-- ]]> & "'` + "\x00\x1b"
	var buf bytes.Buffer
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&buf, b); close(copied) }()
	w := &streamWriter{conn: a, timeout: 5 * time.Second}
	msg := &Message{To: "bob@localhost/x'y", Type: MessageChat, Body: evil, Thread: evil}
	errc := make(chan error, 1)
	go func() { errc <- w.encode(t.Context(), msg) }()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	a.Close()
	<-copied
	els, err := readAll(t, strings.NewReader(testHeader+buf.String()+"</stream:stream>"), 64<<10)
	if !errors.Is(err, ErrStreamClosed) || len(els) != 1 {
		t.Fatalf("re-reading what was written: %d elements, %v\n%s", len(els), err, buf.String())
	}
	var back Message
	if err := els[0].decode(&back); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(evil, "\x00", "\uFFFD")
	want = strings.ReplaceAll(want, "\x1b", "\uFFFD")
	if back.Body != want || back.To != msg.To {
		t.Errorf("round trip: body %q to %q", back.Body, back.To)
	}
}

func TestWriterLimitAndDeadline(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe() // nobody reads b: writes block
	defer a.Close()
	defer b.Close()
	w := &streamWriter{conn: a, timeout: 200 * time.Millisecond, max: 1024}
	err := w.encode(t.Context(), &Message{Body: strings.Repeat("x", 2048)})
	if !errors.Is(err, ErrStanzaTooLargeToSend) {
		t.Errorf("large stanza: err = %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- w.encode(t.Context(), &Message{Body: "hi"}) }()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("write to a peer that never reads succeeded")
		}
		if err2 := w.encode(t.Context(), &Message{Body: "again"}); err2 == nil {
			t.Error("writer accepted a stanza after a failed write")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("write did not time out")
	}
}

func FuzzStreamReader(f *testing.F) {
	seeds := []string{
		"<message from='a@b/c' type='chat'><body>hi &amp; bye</body><thread>t</thread></message>",
		"<presence from='r@c/n'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='a@b' nick='n'/><status code='110'/></x></presence>",
		"<iq type='result' id='1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@b/c</jid></bind></iq>",
		"<iq type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
		"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
		"<message><body>&lol;</body></message>",
		"<!DOCTYPE x [<!ENTITY a 'b'>]><message/>",
		"<message xmlns:x='urn:xmpp:delay'><x:delay stamp='now'/></message></stream:stream>",
		"<a><b><c></a>",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sr := newStreamReader(io.MultiReader(strings.NewReader(testHeader), bytes.NewReader(data)), 4096)
		if _, err := sr.header(); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			el, err := sr.next()
			if err != nil {
				return
			}
			for _, v := range []any{&Message{}, &Presence{}, &IQ{}, &Element{}, &features{}} {
				_ = el.decode(v)
			}
		}
	})
}

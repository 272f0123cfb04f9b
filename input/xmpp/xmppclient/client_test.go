package xmppclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// step is one turn of a scripted fake server: wait until the client has
// sent something containing want, then send reply.
type step struct{ want, reply string }

// fakeServer runs a script on the first connection to a loopback listener,
// then holds the connection open until the test ends.
func fakeServer(t *testing.T, script ...step) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		var seen bytes.Buffer
		buf := make([]byte, 4096)
		for _, s := range script {
			for !strings.Contains(seen.String(), s.want) {
				_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				seen.Write(buf[:n])
			}
			seen.Reset()
			if _, err := conn.Write([]byte(s.reply)); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, conn) // until the client hangs up
	}()
	return l.Addr().String()
}

const fakeHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='localhost' version='1.0'>`

func dialFake(t *testing.T, addr string, opts ...Option) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts = append([]Option{WithServer(addr), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	c, err := Dial(ctx, JID{Local: "bot", Domain: "localhost"}, "pw", opts...)
	if err == nil {
		_ = c.Close()
	}
	return err
}

func TestDialAgainstHostileServers(t *testing.T) {
	t.Parallel()
	tlsFeatures := fakeHeader + `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`
	plainFeatures := fakeHeader + `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>`
	tests := []struct {
		name   string
		script []step
		opts   []Option
		want   error
		text   string
	}{
		{
			name:   "silent server",
			script: []step{{"<never>", ""}},
			opts:   []Option{WithTimeout(500 * time.Millisecond)},
			want:   context.DeadlineExceeded,
		},
		{
			name:   "endless header",
			script: []step{{"stream", "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='" + strings.Repeat("a", 2<<20)}},
			opts:   []Option{WithMaxStanzaSize(64 << 10)},
			want:   ErrStanzaTooLarge,
		},
		{
			name:   "STARTTLS not offered",
			script: []step{{"stream", plainFeatures}},
			want:   ErrTLSRequired,
		},
		{
			name: "data injected after proceed",
			script: []step{
				{"stream", tlsFeatures},
				{"starttls", "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message><body>injected</body></message>"},
			},
			want: ErrRestrictedXML,
		},
		{
			name: "SCRAM success without the server's proof",
			script: []step{
				{"stream", plainFeatures},
				{"auth", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"},
			},
			opts: []Option{WithTLSMode(NoTLS)},
			want: ErrAuth,
			text: "server",
		},
		{
			name: "PLAIN refused without TLS",
			script: []step{
				{"stream", fakeHeader + `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`},
			},
			opts: []Option{WithTLSMode(NoTLS)},
			want: ErrAuth,
			text: "PLAIN refused without TLS",
		},
		{
			name: "SASL failure",
			script: []step{
				{"stream", plainFeatures},
				{"auth", "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><account-disabled/><text>go away</text></failure>"},
			},
			opts: []Option{WithTLSMode(NoTLS)},
			want: ErrAuth,
			text: "authentication failed for bot@localhost: account-disabled (go away)",
		},
		{
			name:   "stream error during negotiation",
			script: []step{{"stream", fakeHeader + "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"}},
			text:   "host-unknown",
		},
		{
			name:   "garbage",
			script: []step{{"stream", "HTTP/1.1 400 Bad Request\r\n\r\n"}},
			opts:   []Option{WithTimeout(time.Second)},
			text:   "text before the stream header",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := dialFake(t, fakeServer(t, tt.script...), tt.opts...)
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v, want it to mention %q", err, tt.text)
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("err %q contains the password", err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	srv := func(targets ...string) func(context.Context, string, string, string) (string, []*net.SRV, error) {
		return func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
			if len(targets) == 0 {
				return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
			}
			var out []*net.SRV
			for _, tg := range targets {
				out = append(out, &net.SRV{Target: tg, Port: 5999})
			}
			return "_" + service + "._" + proto + "." + name, out, nil
		}
	}
	tests := []struct {
		name    string
		cfg     func(*config)
		want    []string
		wantErr bool
	}{
		{"override", func(c *config) { c.server = "127.0.0.1:1234"; c.lookupSRV = nil }, []string{"127.0.0.1:1234"}, false},
		{"SRV targets in order", func(c *config) { c.lookupSRV = srv("a.example.", "b.example.") }, []string{"a.example:5999", "b.example:5999"}, false},
		{"no SRV: domain on 5222", func(c *config) { c.lookupSRV = srv() }, []string{"example.org:5222"}, false},
		{"no SRV, direct TLS: 5223", func(c *config) { c.lookupSRV = srv(); c.tlsMode = DirectTLS }, []string{"example.org:5223"}, false},
		{"service refused", func(c *config) { c.lookupSRV = srv(".") }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{cfg: defaultConfig(), domain: "example.org"}
			tt.cfg(&c.cfg)
			got, err := c.resolve(t.Context())
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("resolve = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestChooseMechanism(t *testing.T) {
	t.Parallel()
	all := []string{MechPlain, MechSCRAMSHA1, MechSCRAMSHA256}
	tests := []struct {
		prefs, offered []string
		tls, allow     bool
		want           string
	}{
		{DefaultMechanisms(), all, true, false, MechSCRAMSHA256},
		{DefaultMechanisms(), []string{MechPlain, MechSCRAMSHA1}, true, false, MechSCRAMSHA1},
		{DefaultMechanisms(), []string{MechPlain}, true, false, MechPlain},
		{DefaultMechanisms(), []string{MechPlain}, false, false, ""},
		{DefaultMechanisms(), []string{MechPlain}, false, true, MechPlain},
		{[]string{MechPlain}, all, true, false, MechPlain},
		{DefaultMechanisms(), []string{"X-OAUTH2", "SCRAM-SHA-1-PLUS"}, true, false, ""},
	}
	for _, tt := range tests {
		got, err := chooseMechanism(tt.prefs, tt.offered, tt.tls, tt.allow)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("chooseMechanism(%v, %v, tls=%v, allow=%v) = %q, %v; want %q", tt.prefs, tt.offered, tt.tls, tt.allow, got, err, tt.want)
		}
	}
}

func TestParseJID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    JID
		wantErr bool
	}{
		{"bot@localhost", JID{"bot", "localhost", ""}, false},
		{"Bot@LocalHost./Res/with/slash", JID{"bot", "localhost", "Res/with/slash"}, false},
		{"room@conference.localhost/Nick With Space", JID{"room", "conference.localhost", "Nick With Space"}, false},
		{"localhost", JID{"", "localhost", ""}, false},
		{"a@b@c", JID{}, true},
		{"@localhost", JID{}, true},
		{"bot@", JID{}, true},
		{"bot@localhost/", JID{}, true},
		{"b ot@localhost", JID{}, true},
		{"bot@local host", JID{}, true},
		{"bo<t@localhost", JID{}, true},
		{"bot@localhost/\x00", JID{}, true},
		{"\xff@localhost", JID{}, true},
		{strings.Repeat("a", 1024) + "@localhost", JID{}, true},
		{"", JID{}, true},
	}
	for _, tt := range tests {
		got, err := ParseJID(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseJID(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidJID) {
			t.Errorf("ParseJID(%q) error %v does not wrap ErrInvalidJID", tt.in, err)
		}
		if err == nil {
			if again, _ := ParseJID(got.String()); again != got {
				t.Errorf("ParseJID(%q).String() does not round-trip: %q", tt.in, got.String())
			}
		}
	}
}

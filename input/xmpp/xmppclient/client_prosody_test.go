package xmppclient_test

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/input/xmpp/xmppclient"
	"github.com/microbot/microbot/internal/prosodytest"
)

func dial(t *testing.T, srv *prosodytest.Server, user, password string, opts ...xmppclient.Option) (*xmppclient.Client, error) {
	t.Helper()
	j, err := xmppclient.ParseJID(prosodytest.JID(user))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := []xmppclient.Option{
		xmppclient.WithServer(srv.Addr),
		xmppclient.WithTLSConfig(srv.TLSConfig()),
		xmppclient.WithLogger(slog.New(slog.DiscardHandler)),
	}
	c, err := xmppclient.Dial(ctx, j, password, append(base, opts...)...)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func mustDial(t *testing.T, srv *prosodytest.Server, user, password string, opts ...xmppclient.Option) *xmppclient.Client {
	t.Helper()
	c, err := dial(t, srv, user, password, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", user, err, srv.Logs())
	}
	return c
}

// recvMessage waits for h's next message with a body, skipping presences.
func recvMessage(h *prosodytest.Human) *xmppclient.Message {
	return h.Expect("a message", func(s xmppclient.Stanza) bool {
		m, ok := s.(*xmppclient.Message)
		return ok && m.Body != ""
	}).(*xmppclient.Message)
}

func TestLoginMechanisms(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("alice", "s3cret pass")
	tests := []struct {
		name string
		opts []xmppclient.Option
		addr string
	}{
		{"SCRAM-SHA-256 over STARTTLS", []xmppclient.Option{xmppclient.WithMechanisms(xmppclient.MechSCRAMSHA256)}, ""},
		{"SCRAM-SHA-1 over STARTTLS", []xmppclient.Option{xmppclient.WithMechanisms(xmppclient.MechSCRAMSHA1)}, ""},
		{"PLAIN over STARTTLS", []xmppclient.Option{xmppclient.WithMechanisms(xmppclient.MechPlain)}, ""},
		{"default over direct TLS", []xmppclient.Option{xmppclient.WithTLSMode(xmppclient.DirectTLS)}, srv.TLSAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if tt.addr != "" {
				opts = append(opts, xmppclient.WithServer(tt.addr))
			}
			c := mustDial(t, srv, "alice", "s3cret pass", opts...)
			if !c.Encrypted() {
				t.Error("stream not encrypted")
			}
			if got := c.JID().Bare().String(); got != "alice@localhost" {
				t.Errorf("bound JID %q", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Ping(ctx, ""); err != nil {
				t.Errorf("ping: %v", err)
			}
		})
	}
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("alice", "right")
	t.Run("wrong password", func(t *testing.T) {
		_, err := dial(t, srv, "alice", "wrong")
		var ae *xmppclient.AuthError
		if !errors.As(err, &ae) || !errors.Is(err, xmppclient.ErrAuth) {
			t.Fatalf("err = %v, want an *AuthError", err)
		}
		if ae.Condition != "not-authorized" {
			t.Errorf("condition %q, want not-authorized", ae.Condition)
		}
		if want := "authentication failed for alice@localhost: not-authorized"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error %q contains the password", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := dial(t, srv, "alice", "right", xmppclient.WithTLSConfig(&tls.Config{}))
		var cv *tls.CertificateVerificationError
		if !errors.As(err, &cv) {
			t.Fatalf("err = %v, want a certificate verification error", err)
		}
	})
	t.Run("insecure skip verify", func(t *testing.T) {
		mustDial(t, srv, "alice", "right", xmppclient.WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	})
	t.Run("TLS turned off but required by server", func(t *testing.T) {
		_, err := dial(t, srv, "alice", "right", xmppclient.WithTLSMode(xmppclient.NoTLS))
		if !errors.Is(err, xmppclient.ErrTLSRequired) {
			t.Fatalf("err = %v, want ErrTLSRequired", err)
		}
	})
}

func TestPlainWithoutTLS(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t, prosodytest.WithInsecure())
	srv.Register("alice", "pw")
	noTLS := []xmppclient.Option{xmppclient.WithTLSMode(xmppclient.NoTLS), xmppclient.WithMechanisms(xmppclient.MechPlain)}
	_, err := dial(t, srv, "alice", "pw", noTLS...)
	if !errors.Is(err, xmppclient.ErrAuth) || !strings.Contains(err.Error(), "PLAIN refused without TLS") {
		t.Fatalf("PLAIN without TLS: err = %v, want a refusal", err)
	}
	c := mustDial(t, srv, "alice", "pw", append(noTLS, xmppclient.WithAllowPlain(true))...)
	if c.Encrypted() {
		t.Error("NoTLS stream says it is encrypted")
	}
	// SCRAM needs no permission without TLS.
	mustDial(t, srv, "alice", "pw", xmppclient.WithTLSMode(xmppclient.NoTLS))
	// A server that does not offer STARTTLS fails the default mode: this one
	// does offer it, so STARTTLS is used.
	if c := mustDial(t, srv, "alice", "pw"); !c.Encrypted() {
		t.Error("STARTTLS offered but not used")
	}
}

func TestMessageRoundTripEscaping(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	// Both online (initial presence reflected): messages to them are
	// delivered from then on.
	alice, bob := prosodytest.NewHuman(t, srv, "alice").Client(), prosodytest.NewHuman(t, srv, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bodies := []string{
		"plain text",
		`<b>not markup</b> & ]]> "quotes" 'apos' </message><message>`,
		"tabs\tand\nnew lines\r\n and unicode: héllo ✓ 🚀",
	}
	for _, body := range bodies {
		if err := alice.Send(ctx, &xmppclient.Message{To: prosodytest.JID("bob"), Type: xmppclient.MessageChat, Body: body}); err != nil {
			t.Fatal(err)
		}
		m := recvMessage(bob)
		want := strings.ReplaceAll(body, "\r\n", "\n") // XML normalises line ends
		if m.Body != want {
			t.Errorf("bob got %q, want %q", m.Body, want)
		}
		if from, _ := xmppclient.ParseJID(m.From); from.Bare().String() != prosodytest.JID("alice") {
			t.Errorf("from %q", m.From)
		}
	}
	// Control characters XML cannot carry are replaced, not sent raw.
	if err := alice.Send(ctx, &xmppclient.Message{To: prosodytest.JID("bob"), Type: xmppclient.MessageChat, Body: "bell\x07end"}); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(bob); m.Body != "bell\uFFFDend" {
		t.Errorf("bob got %q", m.Body)
	}
	// An IQ to a client that does not understand it gets service-unavailable.
	_, err := alice.SendIQ(ctx, &xmppclient.IQ{Type: xmppclient.IQGet, To: bob.Client().JID().String(),
		Payload: &xmppclient.Element{XMLName: xmlName("urn:example:unknown", "query")}})
	var se *xmppclient.StanzaError
	if !errors.As(err, &se) || se.Condition != xmppclient.ConditionServiceUnavailable {
		t.Errorf("unknown IQ: err = %v, want service-unavailable", err)
	}
	// And a ping between clients is answered.
	if err := alice.Ping(ctx, bob.Client().JID().String()); err != nil {
		t.Errorf("ping bob: %v", err)
	}
}

func TestServerShutdownEndsStream(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("alice", "a")
	c := mustDial(t, srv, "alice", "a")
	srv.Stop()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("stream did not end when the server stopped")
	}
	var se *xmppclient.StreamError
	err := c.Err()
	// prosody sends system-shutdown and closes the stream, except to
	// sessions it is still setting up, which it just disconnects.
	if !errors.As(err, &se) && !errors.Is(err, xmppclient.ErrStreamClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want a stream error, close or EOF", err)
	}
	if _, err := c.Recv(context.Background()); err == nil {
		t.Error("Recv after the end returned no error")
	}
}

func TestKeepaliveDetectsDeadStream(t *testing.T) {
	t.Parallel()
	srv := prosodytest.Start(t)
	srv.Register("alice", "a")
	c := mustDial(t, srv, "alice", "a", xmppclient.WithKeepalive(time.Second, 2*time.Second))
	// An idle but healthy stream survives several keepalive intervals.
	select {
	case <-c.Done():
		t.Fatalf("healthy idle stream ended: %v", c.Err())
	case <-time.After(4 * time.Second):
	}
	srv.Pause()
	defer srv.Resume()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("dead stream not detected")
	}
	if !errors.Is(c.Err(), xmppclient.ErrDeadStream) {
		t.Errorf("err = %v, want ErrDeadStream", c.Err())
	}
}

func xmlName(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }

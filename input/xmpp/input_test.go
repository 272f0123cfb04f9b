package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/xmpp/xmppclient"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	openCA := filepath.Join(dir, "open.pem")
	if err := os.WriteFile(openCA, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openCA, 0o666); err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-secret"
	account := func(cfg Config) Config {
		cfg.JID, cfg.Password = "bot@example.org", secret
		return cfg
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(t *testing.T, in *Input)
	}{
		{
			name: "account, rooms and server",
			cfg:  Config{JID: "Bot@Example.org", Password: secret, Rooms: []string{"ops@conference.example.org", "dev@conference.example.org"}, Server: "127.0.0.1:5222"},
			check: func(t *testing.T, in *Input) {
				if in.cfg.jid.String() != "bot@example.org" || in.cfg.nick != "bot" || len(in.cfg.rooms) != 2 || in.cfg.rooms[1].String() != "dev@conference.example.org" {
					t.Errorf("settings %+v", in.cfg)
				}
			},
		},
		{
			name: "nick and direct TLS",
			cfg:  account(Config{Nick: "microbot", TLS: "direct"}),
			check: func(t *testing.T, in *Input) {
				if in.cfg.nick != "microbot" || in.cfg.password != secret {
					t.Errorf("settings: nick %q", in.cfg.nick)
				}
			},
		},
		{name: "no JID", cfg: Config{Password: secret}, wantErr: "xmpp: JID is required: the bot's account"},
		{name: "no JID, named", cfg: Config{Password: secret, Names: input.Names{"JID": "--xmpp_jid"}}, wantErr: "xmpp: --xmpp_jid is required"},
		{name: "JID without localpart", cfg: Config{JID: "example.org", Password: secret}, wantErr: "not an account JID"},
		{name: "no password", cfg: Config{JID: "bot@example.org"}, wantErr: "xmpp: Password is required"},
		{name: "room with a nick", cfg: account(Config{Rooms: []string{"ops@conference.example.org/me"}}), wantErr: "Rooms: \"ops@conference.example.org/me\" is not a room JID"},
		{name: "server without port", cfg: account(Config{Server: "xmpp.example.org"}), wantErr: "Server \"xmpp.example.org\" must be host:port"},
		{name: "bad TLS mode", cfg: account(Config{TLS: "maybe"}), wantErr: "want starttls, direct or none"},
		{name: "missing CA file", cfg: account(Config{CAFile: filepath.Join(dir, "nope.pem")}), wantErr: "CAFile"},
		{name: "CA file without certificates", cfg: account(Config{CAFile: noPEM}), wantErr: "holds no PEM certificate"},
		{name: "CA file writable by everyone", cfg: account(Config{CAFile: openCA}), wantErr: "open.pem is writable by others (mode -rw-rw-rw-): whoever may change it can pose as the XMPP server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := New(tt.cfg, WithLogger(slog.New(slog.DiscardHandler)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || in != nil {
					t.Fatalf("New = %v, %v; want an error containing %q", in, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, in)
		})
	}
}

func TestHipChatAccount(t *testing.T) {
	tests := []struct {
		username, server string
		wantJID, wantAdr string
	}{
		{"bot@localhost", "127.0.0.1:5999", "bot@localhost", "127.0.0.1:5999"},
		{"bot", "chat.example.org", "bot@chat.example.org", "chat.example.org:5222"},
		{"bot@example.org", "", "bot@example.org", ""},
		{"bot", "", "bot", ""}, // New then refuses it: not an account JID
	}
	for _, tt := range tests {
		jid, addr := HipChatAccount(tt.username, tt.server)
		if jid != tt.wantJID || addr != tt.wantAdr {
			t.Errorf("HipChatAccount(%q, %q) = %q, %q; want %q, %q", tt.username, tt.server, jid, addr, tt.wantJID, tt.wantAdr)
		}
	}
	in, err := NewHipChat(Config{JID: "bot@example.org", Password: "pw"}, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil || in.String() != HipChatName {
		t.Fatalf("NewHipChat = %v, %v", in, err)
	}
}

func TestPermanentErrors(t *testing.T) {
	tests := []struct {
		err       error
		permanent bool
	}{
		{&xmppclient.AuthError{JID: "bot@localhost", Condition: "not-authorized"}, true},
		{fmt.Errorf("dial: %w", xmppclient.ErrTLSRequired), true},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true},
		{&xmppclient.StreamError{Condition: "host-unknown"}, true},
		{&xmppclient.StreamError{Condition: "conflict"}, false},
		{&xmppclient.StreamError{Condition: "system-shutdown"}, false},
		{io.ErrUnexpectedEOF, false},
		{context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		err := classify(tt.err)
		var p interface{ Permanent() bool }
		if errors.Is(err, ErrPermanent) != tt.permanent || (errors.As(err, &p) && p.Permanent()) != tt.permanent {
			t.Errorf("classify(%v): permanent = %v, want %v", tt.err, errors.Is(err, ErrPermanent), tt.permanent)
		}
		if !errors.Is(err, tt.err) && err.Error() != tt.err.Error() {
			t.Errorf("classify(%v) lost the error: %v", tt.err, err)
		}
	}
}

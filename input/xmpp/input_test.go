package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/input/xmpp/xmppclient"
)

// initWith runs Init on a command line made of the flags of the inputs
// given, the way cmd/microbot does.
func initWith(t *testing.T, in *Input, args []string, env map[string]string, also ...*Input) error {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	flags := in.Flags()
	for _, o := range also {
		flags = append(flags, o.Flags()...)
	}
	var initErr error
	app := &cli.App{Name: "microbot", Flags: flags, Action: func(c *cli.Context) error {
		initErr = in.Init(c)
		return nil
	}}
	if err := app.Run(append([]string{"microbot"}, args...)); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	return initErr
}

func TestFlagsHaveEnvVars(t *testing.T) {
	for _, in := range []*Input{New(), NewHipChat()} {
		for _, f := range in.Flags() {
			names := f.Names()
			var envs []string
			switch f := f.(type) {
			case *cli.StringFlag:
				envs = f.EnvVars
			case *cli.BoolFlag:
				envs = f.EnvVars
			case *cli.DurationFlag:
				envs = f.EnvVars
			}
			if len(envs) == 0 || envs[0] != "MICRO_"+strings.ToUpper(names[0]) {
				t.Errorf("flag --%s has env vars %v", names[0], envs)
			}
		}
	}
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-secret"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, in *Input)
	}{
		{
			name: "flags",
			args: []string{"--xmpp_jid", "Bot@Example.org", "--xmpp_password", secret, "--xmpp_rooms", "ops@conference.example.org, dev@conference.example.org", "--xmpp_server", "127.0.0.1:5222"},
			check: func(t *testing.T, in *Input) {
				if in.cfg.jid.String() != "bot@example.org" || in.cfg.nick != "bot" || len(in.cfg.rooms) != 2 || in.cfg.rooms[1].String() != "dev@conference.example.org" {
					t.Errorf("settings %+v", in.cfg)
				}
			},
		},
		{
			name: "environment",
			env:  map[string]string{"MICRO_XMPP_JID": "bot@example.org", "MICRO_XMPP_PASSWORD": secret, "MICRO_XMPP_NICK": "microbot", "MICRO_XMPP_TLS": "direct"},
			check: func(t *testing.T, in *Input) {
				if in.cfg.nick != "microbot" || in.cfg.password != secret {
					t.Errorf("settings from env: nick %q", in.cfg.nick)
				}
			},
		},
		{name: "no JID", args: []string{"--xmpp_password", secret}, wantErr: "--xmpp_jid is required (MICRO_XMPP_JID)"},
		{name: "JID without localpart", args: []string{"--xmpp_jid", "example.org", "--xmpp_password", secret}, wantErr: "not an account JID"},
		{name: "no password", args: []string{"--xmpp_jid", "bot@example.org"}, wantErr: "--xmpp_password is required (MICRO_XMPP_PASSWORD)"},
		{name: "room with a nick", args: []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_rooms", "ops@conference.example.org/me"}, wantErr: "not a room JID"},
		{name: "server without port", args: []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_server", "xmpp.example.org"}, wantErr: "must be host:port"},
		{name: "bad TLS mode", args: []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_tls", "maybe"}, wantErr: "want starttls, direct or none"},
		{name: "missing CA file", args: []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_ca_file", filepath.Join(dir, "nope.pem")}, wantErr: "--xmpp_ca_file"},
		{name: "CA file without certificates", args: []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_ca_file", noPEM}, wantErr: "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := New()
			err := initWith(t, in, tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the password: %v", err)
				}
				if in.cfg != nil {
					t.Error("a failed Init changed the configuration")
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

func TestInitHipChat(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantJID string
		wantErr string
	}{
		{name: "JID and server", args: []string{"--hipchat_username", "bot@localhost", "--hipchat_password", "pw", "--hipchat_server", "127.0.0.1:5999"}, wantJID: "bot@localhost"},
		{name: "user on server", args: []string{"--hipchat_username", "bot", "--hipchat_password", "pw", "--hipchat_server", "chat.example.org"}, wantJID: "bot@chat.example.org"},
		{name: "JID alone", args: []string{"--hipchat_username", "bot@example.org", "--hipchat_password", "pw"}, wantJID: "bot@example.org"},
		{name: "user without server", args: []string{"--hipchat_username", "bot", "--hipchat_password", "pw"}, wantErr: "--hipchat_username"},
		{name: "no password", args: []string{"--hipchat_username", "bot@example.org"}, wantErr: "--hipchat_password is required (MICRO_HIPCHAT_PASSWORD)"},
		{name: "shares the xmpp flags", args: []string{"--hipchat_username", "bot@example.org", "--hipchat_password", "pw", "--xmpp_rooms", "ops@conference.example.org", "--xmpp_nick", "hal"}, wantJID: "bot@example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := NewHipChat()
			err := initWith(t, in, tt.args, nil, New())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.cfg.jid.String() != tt.wantJID {
				t.Errorf("JID %q, want %q", in.cfg.jid, tt.wantJID)
			}
			if tt.name == "shares the xmpp flags" && (len(in.cfg.rooms) != 1 || in.cfg.nick != "hal") {
				t.Errorf("xmpp flags not applied: %+v", in.cfg)
			}
		})
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

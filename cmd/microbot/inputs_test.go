package main

import (
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/input"
)

// withFlags runs action on a command line of the bot's flags, args and env
// (the environment variables the flags read are unset but for env).
func withFlags(t *testing.T, args []string, env map[string]string, action func(c *cli.Context) error) error {
	t.Helper()
	flags := allFlags()
	for _, f := range flags {
		if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
			for _, k := range ev.GetEnvVars() {
				t.Setenv(k, "") // restored after the test
				os.Unsetenv(k)
			}
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var err error
	app := &cli.App{Name: "microbot", Flags: flags, Writer: io.Discard, ErrWriter: io.Discard,
		Action: func(c *cli.Context) error { err = action(c); return nil }}
	if rerr := app.Run(append([]string{"microbot"}, args...)); rerr != nil {
		t.Fatalf("parsing %q: %v", args, rerr)
	}
	return err
}

func TestInputTable(t *testing.T) {
	if got, want := inputTable.Names(), []string{"hipchat", "shell", "slack", "xmpp"}; !slices.Equal(got, want) {
		t.Errorf("inputs %v, want %v", got, want)
	}
	if _, err := inputTable.Get("irc"); err == nil || err.Error() != `input "irc": unknown (have [hipchat shell slack xmpp])` {
		t.Errorf("unknown input: %v", err)
	}
	// Each input, given the flags it needs, calls itself by its name and
	// reports whether it is connected.
	account := []string{"--slack_app_token", "xapp-1-A1-abcdefgh", "--slack_bot_token", "xoxb-1-abcdefgh",
		"--xmpp_jid", "bot@example.org", "--xmpp_password", "pw",
		"--hipchat_username", "bot", "--hipchat_server", "chat.example.org", "--hipchat_password", "pw"}
	for _, name := range inputTable.Names() {
		newInput, _ := inputTable.Get(name)
		err := withFlags(t, account, nil, func(c *cli.Context) error {
			in, err := newInput(c, &parts{table: command.NewTable()})
			if err != nil {
				return err
			}
			if in.String() != name {
				t.Errorf("input %q calls itself %q", name, in.String())
			}
			if _, ok := in.(input.StatusReporter); !ok {
				t.Errorf("input %q does not report its status", name)
			}
			return nil
		})
		if err != nil {
			t.Errorf("input %s: %v", name, err)
		}
	}
}

func TestFlagsHaveEnvVars(t *testing.T) {
	for _, f := range allFlags() {
		name := f.Names()[0]
		ev, ok := f.(interface{ GetEnvVars() []string })
		if !ok || len(ev.GetEnvVars()) == 0 || ev.GetEnvVars()[0] != "MICRO_"+strings.ToUpper(name) {
			t.Errorf("flag --%s lacks its MICRO_ environment variable", name)
		}
	}
}

// TestInputFlags: the flags (and their environment variables) reach each
// input's Config, and a setting an input refuses is named by its flag,
// never showing a secret.
func TestInputFlags(t *testing.T) {
	const secret = "Zq9SECRETvalue"
	dir := t.TempDir()
	tests := []struct {
		name  string
		input string
		args  []string
		env   map[string]string
		want  string // "" for success
	}{
		{"shell user", "shell", []string{"--shell_user", "U123"}, nil, ""},
		{"shell user with a space", "shell", []string{"--shell_user", "two words"}, nil, `shell: --shell_user "two words": must be a non-empty id without spaces`},
		{"shell user from env", "shell", nil, map[string]string{"MICRO_SHELL_USER": ""}, "--shell_user"},

		{"slack tokens from env", "slack", nil, map[string]string{"MICRO_SLACK_APP_TOKEN": "xapp-1-A1-" + secret, "MICRO_SLACK_BOT_TOKEN": "xoxb-1-" + secret}, ""},
		{"slack bot token under micro's name", "slack", []string{"--slack_app_token", "xapp-1-A1-" + secret, "--slack_token", "xoxb-1-" + secret}, nil, ""},
		{"slack bot token under micro's env", "slack", []string{"--slack_app_token", "xapp-1-A1-" + secret}, map[string]string{"MICRO_SLACK_TOKEN": "xoxb-1-" + secret}, ""},
		{"no slack tokens", "slack", nil, nil, "slack: no app-level token: set --slack_app_token (or MICRO_SLACK_APP_TOKEN) to"},
		{"slack tokens swapped", "slack", []string{"--slack_app_token", "xoxb-1-" + secret, "--slack_bot_token", "xapp-1-" + secret}, nil, "--slack_app_token (or MICRO_SLACK_APP_TOKEN) holds a bot token"},
		{"bad slack bot token in env", "slack", []string{"--slack_app_token", "xapp-1-A1-" + secret}, map[string]string{"MICRO_SLACK_TOKEN": "xoxb-" + secret + " x"},
			"--slack_bot_token (or --slack_token, MICRO_SLACK_BOT_TOKEN, MICRO_SLACK_TOKEN) is malformed"},
		{"bad slack api url", "slack", []string{"--slack_app_token", "xapp-1-A1-" + secret, "--slack_bot_token", "xoxb-1-" + secret, "--slack_api_url", "localhost:80"}, nil,
			"--slack_api_url (or MICRO_SLACK_API_URL) must be an absolute http(s) URL"},

		{"xmpp from env", "xmpp", nil, map[string]string{"MICRO_XMPP_JID": "bot@example.org", "MICRO_XMPP_PASSWORD": secret, "MICRO_XMPP_NICK": "microbot", "MICRO_XMPP_TLS": "direct"}, ""},
		{"xmpp rooms", "xmpp", []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_rooms", "ops@conference.example.org, dev@conference.example.org"}, nil, ""},
		{"xmpp rooms with blanks", "xmpp", []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_rooms", "ops@conference.example.org,, dev@conference.example.org,"}, nil, ""},
		{"xmpp rooms from env", "xmpp", nil, map[string]string{"MICRO_XMPP_JID": "bot@example.org", "MICRO_XMPP_PASSWORD": secret, "MICRO_XMPP_ROOMS": "ops@conference.example.org,dev@conference.example.org/me"}, "--xmpp_rooms"},
		{"no xmpp JID", "xmpp", []string{"--xmpp_password", secret}, nil, "xmpp: --xmpp_jid (or MICRO_XMPP_JID) is required"},
		{"no xmpp password", "xmpp", []string{"--xmpp_jid", "bot@example.org"}, nil, "xmpp: --xmpp_password (or MICRO_XMPP_PASSWORD) is required"},
		{"xmpp room with a nick", "xmpp", []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_rooms", "ops@conference.example.org/me"}, nil, "--xmpp_rooms (or MICRO_XMPP_ROOMS)"},
		{"bad xmpp TLS mode", "xmpp", []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_tls", "maybe"}, nil, `--xmpp_tls (or MICRO_XMPP_TLS) "maybe": want starttls, direct or none`},
		{"missing CA file", "xmpp", []string{"--xmpp_jid", "bot@example.org", "--xmpp_password", secret, "--xmpp_ca_file", dir + "/nope.pem"}, nil, "--xmpp_ca_file"},

		{"hipchat user on server", "hipchat", []string{"--hipchat_username", "bot", "--hipchat_password", secret, "--hipchat_server", "chat.example.org"}, nil, ""},
		{"hipchat shares the xmpp flags", "hipchat", []string{"--hipchat_username", "bot@example.org", "--hipchat_password", secret, "--xmpp_rooms", "ops@conference.example.org/me"}, nil, "--xmpp_rooms"},
		{"hipchat user without server", "hipchat", []string{"--hipchat_username", "bot", "--hipchat_password", secret}, nil, `--hipchat_username (or MICRO_HIPCHAT_USERNAME) "bot" is not an account JID`},
		{"no hipchat password", "hipchat", []string{"--hipchat_username", "bot@example.org"}, nil, "--hipchat_password (or MICRO_HIPCHAT_PASSWORD) is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newInput, err := inputTable.Get(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			err = withFlags(t, tt.args, tt.env, func(c *cli.Context) error { _, err := newInput(c, &parts{table: command.NewTable()}); return err })
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("input %s: %v", tt.input, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("input %s: err = %v, want %q", tt.input, err, tt.want)
			case err != nil && strings.Contains(err.Error(), secret):
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestOpsConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    opsConfig
		wantErr string
	}{
		{name: "defaults: listener off", want: opsConfig{LogFormat: "auto", ShutdownTimeout: 20 * time.Second, AlertmanagerTopic: "alerts"}},
		{name: "flags", args: []string{"--http_address", ":8080", "--log_format", "json", "--shutdown_timeout", "3s",
			"--alertmanager_token", "am-token", "--alertmanager_topic", "alerts.prod"},
			want: opsConfig{HTTPAddress: ":8080", LogFormat: "json", ShutdownTimeout: 3 * time.Second, AlertmanagerToken: "am-token", AlertmanagerTopic: "alerts.prod"}},
		{name: "environment", env: map[string]string{"MICRO_HTTP_ADDRESS": "127.0.0.1:9100", "MICRO_LOG_FORMAT": "text", "MICRO_SHUTDOWN_TIMEOUT": "1m",
			"MICRO_ALERTMANAGER_TOKEN": "am-token"},
			want: opsConfig{HTTPAddress: "127.0.0.1:9100", LogFormat: "text", ShutdownTimeout: time.Minute, AlertmanagerToken: "am-token", AlertmanagerTopic: "alerts"}},
		{name: "no port", args: []string{"--http_address", "localhost"}, wantErr: "--http_address \"localhost\": want host:port"},
		{name: "alertmanager without a listener", args: []string{"--alertmanager_token", "am-token"},
			wantErr: "--alertmanager_token needs --http_address: the webhook is served on the ops listener"},
		{name: "bad alert topic", args: []string{"--alertmanager_topic", "alerts/#"}, wantErr: "--alertmanager_topic: invalid topic"},
		{name: "bad format", args: []string{"--log_format", "xml"}, wantErr: "--log_format \"xml\": want auto, text or json"},
		{name: "zero timeout", args: []string{"--shutdown_timeout", "0s"}, wantErr: "--shutdown_timeout must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got opsConfig
			err := withFlags(t, tt.args, tt.env, func(c *cli.Context) error {
				var err error
				got, err = opsConfigFrom(c)
				return err
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	t.Setenv("TEST_OPS_BOT_TOKEN", "xoxb-from-the-env")
	var got []string
	app := &cli.App{
		Name: "x",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "slack_bot_token", EnvVars: []string{"TEST_OPS_BOT_TOKEN"}},
			&cli.StringFlag{Name: "slack_app_token"},
			&cli.StringFlag{Name: "xmpp_password"},
			&cli.StringFlag{Name: "registry_address"},
			&cli.StringSliceFlag{Name: "api_secret"},
		},
		Commands: []*cli.Command{{
			Name:   "exec",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "exec_password"}},
			Action: func(c *cli.Context) error { got = secrets(c); return nil },
		}},
	}
	err := app.Run([]string{"x", "--xmpp_password", "pa55word", "--registry_address", "127.0.0.1:8500",
		"--api_secret", "s3cret-one", "--api_secret", "s3cret-two",
		"exec", "--exec_password", "sub-command-pw"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"pa55word", "s3cret-one", "s3cret-two", "sub-command-pw", "xoxb-from-the-env"}
	if !slices.Equal(got, want) {
		t.Errorf("secrets = %q, want %q", got, want)
	}
}

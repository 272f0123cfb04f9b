package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestHAFlags(t *testing.T) {
	tests := []struct {
		args   []string
		env    map[string]string
		err    string // "" for none
		prefix string // the coordinator's keys, "" without --ha
	}{
		{args: nil},
		{args: []string{"--registry", "consul"}},
		{args: []string{"--ha"}, err: `--ha needs --registry=consul: the instances coordinate through Consul (--registry is "local")`},
		{args: []string{"--ha", "--registry", "memory"}, err: `--registry is "memory"`},
		{args: []string{"--ha", "--registry", "consul", "--ha_ttl", "500ms"}, err: "--ha_ttl 500ms: want at least 1s"},
		{args: []string{"--ha", "--registry", "consul", "--registry_address", "127.0.0.1:1"}, prefix: "microbot/ha/go.micro.srv.bot/"},
		{args: []string{"--registry", "consul", "--server_name", "go.micro.srv.teambot"}, env: map[string]string{"MICRO_HA": "true"}, prefix: "microbot/ha/go.micro.srv.teambot/"},
	}
	for _, tt := range tests {
		err := withFlags(t, tt.args, tt.env, func(c *cli.Context) error {
			kit, err := newHA(c, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			switch {
			case kit == nil && tt.prefix != "":
				t.Errorf("%q: no HA", tt.args)
			case kit != nil && kit.coord.Prefix() != tt.prefix:
				t.Errorf("%q: keys under %q, want %q", tt.args, kit.coord.Prefix(), tt.prefix)
			}
			return nil
		})
		if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: %v, want %q", tt.args, err, tt.err)
		}
	}
}

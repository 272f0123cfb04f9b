package ops_test

import (
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot/ops"
)

func TestConfigFromCLI(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    ops.Config
		wantErr string
	}{
		{name: "defaults: listener off", want: ops.Config{LogFormat: "auto", ShutdownTimeout: ops.DefaultShutdownTimeout}},
		{name: "flags", args: []string{"--http_address", ":8080", "--log_format", "json", "--shutdown_timeout", "3s"},
			want: ops.Config{HTTPAddress: ":8080", LogFormat: "json", ShutdownTimeout: 3 * time.Second}},
		{name: "environment", env: map[string]string{"MICRO_HTTP_ADDRESS": "127.0.0.1:9100", "MICRO_LOG_FORMAT": "text", "MICRO_SHUTDOWN_TIMEOUT": "1m"},
			want: ops.Config{HTTPAddress: "127.0.0.1:9100", LogFormat: "text", ShutdownTimeout: time.Minute}},
		{name: "no port", args: []string{"--http_address", "localhost"}, wantErr: "want host:port"},
		{name: "bad format", args: []string{"--log_format", "xml"}, wantErr: "want auto, text or json"},
		{name: "zero timeout", args: []string{"--shutdown_timeout", "0s"}, wantErr: "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var got ops.Config
			var err error
			app := &cli.App{Name: "x", Flags: ops.Flags(), Action: func(c *cli.Context) error {
				got, err = ops.ConfigFromCLI(c)
				return nil
			}}
			if rerr := app.Run(append([]string{"x"}, tt.args...)); rerr != nil {
				t.Fatal(rerr)
			}
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

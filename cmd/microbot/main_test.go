package main

import (
	"io"
	"maps"
	"os"
	"testing"

	"github.com/urfave/cli/v2"
)

// flagSeen is what exec's action sees of one flag.
type flagSeen struct {
	value string // as flagValue writes it
	set   bool
}

// execSees runs microbot with args and env (and no other MICRO_* variable
// of its flags), exec's action replaced by one that reads every flag.
func execSees(t *testing.T, args []string, env map[string]string) map[string]flagSeen {
	t.Helper()
	for _, f := range allFlags() {
		for _, k := range f.(interface{ GetEnvVars() []string }).GetEnvVars() {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	app := newApp(io.Discard, io.Discard)
	seen := map[string]flagSeen{}
	app.Commands[0].Action = func(c *cli.Context) error {
		for _, f := range c.Command.Flags {
			v, err := flagValue(c, f)
			if err != nil {
				return err
			}
			seen[f.Names()[0]] = flagSeen{v, c.IsSet(f.Names()[0])}
		}
		return nil
	}
	if err := app.Run(append([]string{"microbot"}, args...)); err != nil || len(seen) == 0 {
		t.Fatalf("microbot %q: %v (exec saw %d flags)", args, err, len(seen))
	}
	return seen
}

// Every flag works before exec as after it; one given in both places takes
// exec's value; the command line beats the environment wherever it
// stands. (Flags before exec were once silently ignored: --registry=consul
// exec "list services" asked the local registry.)
func TestExecFlagPlacement(t *testing.T) {
	// v and w: two values of each flag, other than its default.
	values := func(f cli.Flag) (v, w string) {
		switch f.(type) {
		case *cli.StringSliceFlag:
			return "a,b", "c"
		case *cli.BoolFlag:
			return "true", "false"
		case *cli.IntFlag, *cli.GenericFlag: // durations in seconds, sizes in bytes
			return "7", "9"
		case *cli.DurationFlag:
			return "7s", "9s"
		default:
			return "v-value", "w-value"
		}
	}
	var (
		vArgs, wArgs []string
		vEnv, wEnv   = map[string]string{}, map[string]string{}
	)
	flags := allFlags()
	if n := len(execFlags()); n != len(flags) {
		t.Fatalf("exec has %d flags, microbot %d", n, len(flags))
	}
	for _, f := range flags {
		v, w := values(f)
		name, env := f.Names()[0], f.(interface{ GetEnvVars() []string }).GetEnvVars()[0]
		vArgs, wArgs = append(vArgs, "--"+name+"="+v), append(wArgs, "--"+name+"="+w)
		vEnv[env], wEnv[env] = v, w
	}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	exec, cmd := []string{"exec"}, []string{"x"}

	defaults := execSees(t, cat(exec, cmd), nil)
	want := execSees(t, cat(exec, vArgs, cmd), nil)
	for _, f := range flags {
		name := f.Names()[0]
		if s, d := want[name], defaults[name]; d.set || !s.set || s.value == d.value {
			t.Errorf("--%s: not given %+v, given after exec %+v", name, d, s)
		}
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"before exec", cat(vArgs, exec, cmd), nil},
		{"both: exec's wins", cat(wArgs, exec, vArgs, cmd), nil},
		{"environment only", cat(exec, cmd), vEnv},
		{"before exec beats the environment", cat(vArgs, exec, cmd), wEnv},
		{"after exec beats the environment", cat(exec, vArgs, cmd), wEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := execSees(t, tt.args, tt.env)
			if !maps.Equal(got, want) {
				for name, s := range got {
					if s != want[name] {
						t.Errorf("--%s: %+v, want %+v", name, s, want[name])
					}
				}
			}
		})
	}
	t.Run("alias before exec", func(t *testing.T) {
		got := execSees(t, []string{"--" + flagSlackToken + "=xoxb-1", "exec", "x"}, nil)
		if s := got[flagSlackBotToken]; s != (flagSeen{"xoxb-1", true}) {
			t.Errorf("--%s before exec: --%s is %+v", flagSlackToken, flagSlackBotToken, s)
		}
	})
}

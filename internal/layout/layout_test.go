// Package layout holds a test of the repository's layering rules (see
// DESIGN.md, "Layout"): a package may import the ones below it, never the
// reverse.
package layout

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const module = "github.com/microbot/microbot/"

// rules: packages under from may not import packages under any of to.
var rules = []struct {
	from string
	to   []string
	why  string
}{
	{"framework", []string{"bot", "command", "commandsvc", "input", "cmd"}, "the framework knows nothing of chat"},
	{"input", []string{"framework", "bot", "command", "commandsvc", "cmd"}, "inputs know nothing of the registry or of commands"},
	{"command", []string{"input/slack", "input/xmpp", "input/shell", "bot", "cmd"}, "commands know nothing of Slack, XMPP or the console"},
	{"commandsvc", []string{"input/slack", "input/xmpp", "input/shell", "bot", "cmd"}, "command services know nothing of Slack, XMPP or the console"},
	{"bot", []string{"input/slack", "input/xmpp", "input/shell", "cmd"}, "the bot works with any input; cmd/microbot wires them"},
	{"proto", []string{"bot", "command", "commandsvc", "input", "cmd"}, "the contract depends on the framework only"},
}

func under(pkg, dir string) bool {
	p := strings.TrimPrefix(pkg, module)
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func TestLayering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Non-test imports of every package of the module.
	out, err := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg, imports := fields[0], fields[1:]
		for _, r := range rules {
			if !under(pkg, r.from) {
				continue
			}
			checked++
			for _, imp := range imports {
				if !strings.HasPrefix(imp, module) {
					continue
				}
				for _, banned := range r.to {
					if under(imp, banned) {
						t.Errorf("%s imports %s: %s", strings.TrimPrefix(pkg, module), strings.TrimPrefix(imp, module), r.why)
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d packages checked: go list did not list the module", checked)
	}
}

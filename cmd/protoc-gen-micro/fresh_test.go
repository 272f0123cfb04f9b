package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/microbot/microbot/internal/testenv"
)

// protocVersion matches the line of protoc-gen-go's header naming the
// protoc release, the one part of the output that depends on which protoc
// is installed rather than on the .proto, the plugins and go.mod.
var protocVersion = regexp.MustCompile(`(?m)^// \tprotoc +v?\S+$`)

// TestCommittedCodeIsFresh regenerates every committed generated package
// with gen.sh, as go generate does, into a temporary directory, and fails
// if the output differs from the committed files: a .proto, protoc-gen-go's
// version in go.mod or this plugin changed without `go generate` being run.
func TestCommittedCodeIsFresh(t *testing.T) {
	_, err := exec.LookPath("protoc")
	testenv.Require(t, "protoc", err)
	gen, err := filepath.Abs("gen.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir   string   // the package, relative to this one
		pkg   string   // the package, relative to the module's root
		proto string   // the .proto in it
		files []string // the generated files committed in it
	}{
		{"../../proto/bot", "./proto/bot", "bot.proto", []string{"bot.pb.go", "bot.micro.go"}},
		{"../../proto/bot", "./proto/bot", "notification.proto", []string{"notification.pb.go"}},
		{"internal/testpb", "./cmd/protoc-gen-micro/internal/testpb", "testpb.proto", []string{"testpb.pb.go", "testpb.micro.go"}},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command("bash", gen, "-o", out, tc.proto)
			cmd.Dir = tc.dir
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("gen.sh %s: %v\n%s", tc.proto, err, msg)
			}
			entries, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(tc.files) {
				t.Errorf("gen.sh wrote %d files, want %d (%q)", len(entries), len(tc.files), tc.files)
			}
			for _, name := range tc.files {
				fresh, err := os.ReadFile(filepath.Join(out, name))
				if err != nil {
					t.Errorf("gen.sh did not write %s: %v", name, err)
					continue
				}
				committed, err := os.ReadFile(filepath.Join(tc.dir, name))
				if err != nil {
					t.Errorf("%s is not committed: %v", name, err)
					continue
				}
				if !bytes.Equal(normalize(fresh), normalize(committed)) {
					t.Errorf("%s/%s is stale: run `go generate %s` and commit the result", tc.pkg, name, tc.pkg)
				}
			}
		})
	}
}

// normalize blanks the protoc release in protoc-gen-go's header, so that a
// developer's protoc of another release does not fail the test when it
// generates the same code.
func normalize(b []byte) []byte {
	return protocVersion.ReplaceAll(b, []byte("// \tprotoc (any)"))
}

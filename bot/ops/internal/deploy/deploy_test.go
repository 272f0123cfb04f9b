package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/microbot/microbot/internal/testenv"
)

// root is the repository's root, from this package's directory.
const root = "../../../.."

// instruction is one Dockerfile instruction.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// parseDockerfile splits a Dockerfile into instructions (comments dropped,
// continuation lines joined).
func parseDockerfile(t *testing.T, file string) []instruction {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(data), "\n") {
		trim := strings.TrimSpace(l)
		if cur.Len() == 0 && (trim == "" || strings.HasPrefix(trim, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if more, ok := strings.CutSuffix(trim, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trim)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// dockerignored reports whether .dockerignore excludes p (patterns as
// Docker reads them: rooted at the context, ** for any directories).
func dockerignored(patterns []string, p string) bool {
	ignored := false
	for _, pat := range patterns {
		neg := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/")
		if matchIgnore(pat, p) {
			ignored = !neg
		}
	}
	return ignored
}

func matchIgnore(pat, p string) bool {
	if rest, ok := strings.CutPrefix(pat, "**/"); ok {
		parts := strings.Split(p, "/")
		for i := range parts {
			if matchIgnore(rest, strings.Join(parts[i:], "/")) {
				return true
			}
		}
		return false
	}
	// A pattern matches the path or a directory above it.
	for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
		if ok, _ := path.Match(pat, q); ok {
			return true
		}
	}
	return false
}

func readLines(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// dockerBuild is what the Dockerfile says about the build.
type dockerBuild struct {
	goBuild []string // the go build command's words
	env     []string // the build stage's ENV, as k=v
}

var (
	staticOnce sync.Once
	staticBin  string
	staticErr  error
	staticDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "microbot-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	staticDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// checkDockerfile checks the Dockerfile against the repository and returns
// its build command.
func checkDockerfile(t *testing.T) dockerBuild {
	t.Helper()
	ins := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	ignore := readLines(t, filepath.Join(root, ".dockerignore"))
	stages := map[string]bool{}
	var b dockerBuild
	var finalUser, entry, copiedTo string
	exposed := ""
	httpAddr := ""
	nStages := 0
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages[f[2]] = true
			} else if len(f) != 1 {
				t.Errorf("line %d: FROM %s", in.line, in.args)
			}
			nStages++
			finalUser, entry, copiedTo = "", "", ""
		case "COPY":
			f := strings.Fields(in.args)
			var from string
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--from="); ok {
					from = v
				}
				f = f[1:]
			}
			if len(f) < 2 {
				t.Errorf("line %d: COPY needs a source and a destination: %s", in.line, in.args)
				continue
			}
			srcs, dst := f[:len(f)-1], f[len(f)-1]
			if from != "" {
				if !stages[from] {
					t.Errorf("line %d: COPY --from=%s: no earlier stage of that name (have %v)", in.line, from, stages)
				}
				copiedTo = dst
				continue
			}
			for _, s := range srcs {
				if s == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, s)); err != nil {
					t.Errorf("line %d: COPY %s: %v", in.line, s, err)
				}
				if dockerignored(ignore, s) {
					t.Errorf("line %d: COPY %s, but .dockerignore excludes it", in.line, s)
				}
			}
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				if nStages == 1 {
					b.env = append(b.env, kv)
				}
				if v, ok := strings.CutPrefix(kv, "MICRO_HTTP_ADDRESS="); ok {
					httpAddr = v
				}
			}
		case "RUN":
			if w := shellWords(in.args); len(w) > 2 && w[0] == "go" && w[1] == "build" {
				b.goBuild = w
			}
		case "USER":
			finalUser = in.args
		case "EXPOSE":
			exposed = in.args
		case "ENTRYPOINT":
			var argv []string
			if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
				t.Errorf("line %d: ENTRYPOINT should be a JSON array (exec form, so SIGTERM reaches the bot): %s", in.line, in.args)
				continue
			}
			entry = argv[0]
		}
	}
	if nStages < 2 {
		t.Errorf("%d stages, want a multi-stage build", nStages)
	}
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("the build stage does not set CGO_ENABLED=0 (ENV %v)", b.env)
	}
	if b.goBuild == nil {
		t.Fatal("no RUN go build")
	}
	pkg := b.goBuild[len(b.goBuild)-1]
	if _, err := os.Stat(filepath.Join(root, pkg, "main.go")); err != nil {
		t.Errorf("go build %s: %v", pkg, err)
	}
	uid, _, _ := strings.Cut(finalUser, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q: want a numeric non-root uid", finalUser)
	}
	if entry == "" || entry != copiedTo {
		t.Errorf("ENTRYPOINT %q is not the binary copied from the build stage (%q)", entry, copiedTo)
	}
	if _, port, err := splitPort(httpAddr); err != nil || port != exposed {
		t.Errorf("EXPOSE %q but MICRO_HTTP_ADDRESS=%q", exposed, httpAddr)
	}
	return b
}

func splitPort(addr string) (string, string, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", "", errors.New("no port")
	}
	return addr[:i], addr[i+1:], nil
}

// shellWords splits a shell command line into words, as sh would for a
// simple command: blanks separate words, quotes group and are removed.
func shellWords(line string) []string {
	var out []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// buildStatic builds the binary as the Dockerfile does (its go build
// command, its build stage's environment) once.
func buildStatic(t *testing.T, b dockerBuild) string {
	t.Helper()
	staticOnce.Do(func() {
		staticBin = filepath.Join(staticDir, "microbot")
		args := slices.Clone(b.goBuild[1:])
		if i := slices.Index(args, "-o"); i >= 0 && i+1 < len(args) {
			args[i+1] = staticBin
		} else {
			staticErr = fmt.Errorf("the Dockerfile's go build has no -o: %v", b.goBuild)
			return
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return staticBin
}

func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	b := checkDockerfile(t)
	bin := buildStatic(t, b)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	for _, name := range []string{".interp", ".dynamic"} {
		if f.Section(name) != nil {
			t.Errorf("the binary has a %s section: it is not static", name)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs %v", libs)
	}
}

// known is what the binary reads: its flags and environment variables, as
// its --help says.
type known struct {
	flags, env map[string]bool
}

var (
	helpOnce sync.Once
	helpOut  known
)

func knownNames(t *testing.T, bin string) known {
	t.Helper()
	helpOnce.Do(func() {
		out, err := exec.Command(bin, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("microbot --help: %v\n%s", err, out)
		}
		helpOut = known{flags: map[string]bool{}, env: map[string]bool{}}
		for _, m := range regexp.MustCompile(`--([a-z][a-z0-9_]*)`).FindAllStringSubmatch(string(out), -1) {
			helpOut.flags[m[1]] = true
		}
		for _, m := range regexp.MustCompile(`\$(MICRO_[A-Z0-9_]+)`).FindAllStringSubmatch(string(out), -1) {
			helpOut.env[m[1]] = true
		}
	})
	if len(helpOut.env) < 10 {
		t.Fatalf("--help names only %d environment variables", len(helpOut.env))
	}
	return helpOut
}

// checkArgs checks that each --flag of args is one the binary has.
func checkArgs(t *testing.T, where string, k known, args []string) map[string]string {
	t.Helper()
	set := map[string]string{}
	for _, a := range args {
		name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !k.flags[name] {
			t.Errorf("%s: %q is not a flag of microbot", where, a)
		}
		set[name] = val
	}
	return set
}

// serveProbes runs the binary with its listener on a free loopback port
// (no input, a private local registry) and returns the listener's base URL.
func serveProbes(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin, "--inputs=", "--registry_address", t.TempDir(), "--http_address", "127.0.0.1:0", "--log_format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct{ Msg, Address string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "ops HTTP listener started" {
				addr <- rec.Address
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatal("the binary did not start its listener")
	}
	return ""
}

// get returns the status of GET url, asking again for up to 30 s while
// the listener is not up or answers 503 (the bot may still be starting).
func get(t *testing.T, url string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := &http.Client{Timeout: 10 * time.Second}
		rsp, err := c.Get(url)
		if err == nil {
			rsp.Body.Close()
			if rsp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				return rsp.StatusCode
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []envVar `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type deployment struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			RollingUpdate struct {
				MaxUnavailable any `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
				Containers                    []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type secret struct {
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
}

type disruptionBudget struct {
	Spec struct {
		MinAvailable any `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

func TestKubernetesExample(t *testing.T) {
	bin := buildStatic(t, checkDockerfile(t))
	k := knownNames(t, bin)

	files, err := filepath.Glob(filepath.Join(root, "examples/deploy/kubernetes/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var deps []deployment
	secrets := map[string]secret{}
	var svcs []service
	var pdbs []disruptionBudget
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", file, i, err)
			}
			var head struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
			}
			if err := doc.Decode(&head); err != nil || head.APIVersion == "" || head.Kind == "" {
				t.Fatalf("%s document %d: no apiVersion/kind (%v)", file, i, err)
			}
			var into any
			switch head.Kind {
			case "Deployment":
				deps = append(deps, deployment{})
				into = &deps[len(deps)-1]
			case "Secret":
				var s secret
				if err := doc.Decode(&s); err != nil {
					t.Fatal(err)
				}
				secrets[s.Metadata.Name] = s
				continue
			case "Service":
				svcs = append(svcs, service{})
				into = &svcs[len(svcs)-1]
			case "PodDisruptionBudget":
				pdbs = append(pdbs, disruptionBudget{})
				into = &pdbs[len(pdbs)-1]
			default:
				t.Errorf("%s: unexpected kind %s", file, head.Kind)
				continue
			}
			if err := doc.Decode(into); err != nil {
				t.Fatalf("%s %s: %v", file, head.Kind, err)
			}
		}
	}
	if len(deps) != 1 || len(svcs) != 1 || len(secrets) != 1 {
		t.Fatalf("%d Deployments, %d Services, %d Secrets; want one of each", len(deps), len(svcs), len(secrets))
	}
	d := deps[0]
	for key, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[key] != v {
			t.Errorf("the Deployment's selector %s=%s does not match its pods' labels %v", key, v, d.Spec.Template.Metadata.Labels)
		}
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	set := checkArgs(t, "Deployment args", k, c.Args)
	if set["registry"] != "consul" {
		t.Errorf("args %v: want --registry=consul", c.Args)
	}
	// Several replicas run side by side only with --ha (docs/ha.md), and
	// a rolling update or a drain keeps one.
	replicas := 1
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if _, ha := set["ha"]; replicas > 1 && (!ha || set["ha"] != "" && set["ha"] != "true") {
		t.Errorf("%d replicas without --ha: each would answer every XMPP message, and confirmation codes would work on one only", replicas)
	}
	if replicas > 1 {
		if mu := fmt.Sprint(d.Spec.Strategy.RollingUpdate.MaxUnavailable); mu != "0" {
			t.Errorf("rolling update maxUnavailable %s: want 0, so a replica is always up", mu)
		}
		if len(pdbs) != 1 {
			t.Errorf("%d replicas and %d PodDisruptionBudgets: want one", replicas, len(pdbs))
		}
	}
	for _, pdb := range pdbs {
		for key, v := range pdb.Spec.Selector.MatchLabels {
			if d.Spec.Template.Metadata.Labels[key] != v {
				t.Errorf("the PodDisruptionBudget selects %s=%s; the pods have %v", key, v, d.Spec.Template.Metadata.Labels)
			}
		}
		if n, err := strconv.Atoi(fmt.Sprint(pdb.Spec.MinAvailable)); err != nil || n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget minAvailable %v: want at least 1 and under the %d replicas", pdb.Spec.MinAvailable, replicas)
		}
	}
	// Shutdown: the grace period covers the drain.
	if st, err := time.ParseDuration(set["shutdown_timeout"]); err != nil || time.Duration(d.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second <= st {
		t.Errorf("terminationGracePeriodSeconds %d is not longer than --shutdown_timeout %q", d.Spec.Template.Spec.TerminationGracePeriodSeconds, set["shutdown_timeout"])
	}
	// Environment: only variables microbot reads (or that other values use,
	// as $(POD_IP)); the tokens from the Secret.
	env := map[string]envVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, e := range c.Env {
		used := false
		for _, o := range c.Env {
			used = used || strings.Contains(o.Value, "$("+e.Name+")")
		}
		if !k.env[e.Name] && !used {
			t.Errorf("env %s: microbot does not read it", e.Name)
		}
	}
	if _, ok := env["MICRO_REGISTRY_ADDRESS"]; !ok {
		t.Error("no MICRO_REGISTRY_ADDRESS")
	}
	for _, name := range []string{"MICRO_SLACK_APP_TOKEN", "MICRO_SLACK_BOT_TOKEN", "MICRO_XMPP_PASSWORD"} {
		e, ok := env[name]
		if name == "MICRO_XMPP_PASSWORD" && !ok && !strings.Contains(set["inputs"], "xmpp") {
			continue
		}
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s does not come from a Secret", name)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		s, ok := secrets[ref.Name]
		if _, has := s.StringData[ref.Key]; !ok || !has {
			t.Errorf("%s: Secret %s key %s is not in the example Secret", name, ref.Name, ref.Key)
		}
	}
	// Ports and probes: on the --http_address port, on paths the binary
	// serves.
	_, httpPort, _ := splitPort(set["http_address"])
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if strconv.Itoa(ports["http"]) != httpPort {
		t.Errorf("container port http=%d, --http_address=%q", ports["http"], set["http_address"])
	}
	base := serveProbes(t, bin)
	for name, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s httpGet probe", name)
			continue
		}
		if port := fmt.Sprint(p.HTTPGet.Port); port != "http" && port != httpPort {
			t.Errorf("%s probe on port %s, not the ops listener's", name, port)
		}
		if code := get(t, base+p.HTTPGet.Path); code != 200 {
			t.Errorf("%s probe GET %s: %d", name, p.HTTPGet.Path, code)
		}
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("liveness on %s, readiness on %s", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("no %s request or limit", r)
		}
	}
	// The Service selects the pods and targets the ops port.
	s := svcs[0]
	for key, v := range s.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[key] != v {
			t.Errorf("the Service selects %s=%s; the pods have %v", key, v, d.Spec.Template.Metadata.Labels)
		}
	}
	if len(s.Spec.Ports) != 1 {
		t.Fatalf("Service ports %v", s.Spec.Ports)
	}
	if tp := fmt.Sprint(s.Spec.Ports[0].TargetPort); tp != "http" && tp != httpPort {
		t.Errorf("the Service targets port %s", tp)
	}
}

// unit is a systemd unit: section -> key -> values (a key may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, file string) unit {
	t.Helper()
	u := unit{}
	sec := ""
	for i, l := range readLines(t, file) {
		if strings.HasPrefix(l, "[") {
			if !strings.HasSuffix(l, "]") {
				t.Fatalf("%s:%d: bad section %q", file, i+1, l)
			}
			sec = strings.Trim(l, "[]")
			u[sec] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || sec == "" {
			t.Fatalf("%s: line %q is not key=value in a section", file, l)
		}
		u[sec][strings.TrimSpace(k)] = append(u[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	bin := buildStatic(t, checkDockerfile(t))
	k := knownNames(t, bin)
	file := filepath.Join(root, "examples/deploy/systemd/microbot.service")
	u := parseUnit(t, file)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Fatalf("no [%s] section", s)
		}
	}
	svc := u["Service"]
	want := map[string]string{
		"DynamicUser":     "yes",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"Restart":         "on-failure",
	}
	for key, v := range want {
		if got := svc[key]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%v, want %s", key, got, v)
		}
	}
	if len(svc["EnvironmentFile"]) != 1 {
		t.Error("no EnvironmentFile for the tokens")
	}
	if len(u["Install"]["WantedBy"]) == 0 {
		t.Error("no WantedBy")
	}
	argv := shellWords(strings.Join(svc["ExecStart"], " "))
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		t.Fatalf("ExecStart %v: want an absolute path", argv)
	}
	set := checkArgs(t, "ExecStart", k, argv[1:])
	for f := range set {
		if strings.Contains(f, "token") || strings.Contains(f, "password") {
			t.Errorf("ExecStart has --%s: secrets belong in the EnvironmentFile", f)
		}
	}
	stop, err := time.ParseDuration(strings.Join(svc["TimeoutStopSec"], ""))
	if st, err2 := time.ParseDuration(set["shutdown_timeout"]); err != nil || err2 != nil || stop <= st {
		t.Errorf("TimeoutStopSec %v is not longer than --shutdown_timeout %q", svc["TimeoutStopSec"], set["shutdown_timeout"])
	}
	for _, e := range svc["Environment"] {
		name, _, _ := strings.Cut(e, "=")
		if !k.env[name] {
			t.Errorf("Environment=%s: microbot does not read it", e)
		}
	}
	// The example environment file names the tokens microbot reads.
	for _, l := range readLines(t, filepath.Join(root, "examples/deploy/systemd/microbot.env.example")) {
		name, _, _ := strings.Cut(l, "=")
		if !k.env[name] {
			t.Errorf("microbot.env.example: microbot does not read %s", name)
		}
	}

	// systemd's own check, where systemd is installed.
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("systemd-analyze not installed: the unit was checked as INI only")
		return
	}
	dir := t.TempDir()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the ExecStart binary to exist.
	data = bytes.Replace(data, []byte("ExecStart="+argv[0]), []byte("ExecStart="+bin), 1)
	if err := os.WriteFile(filepath.Join(dir, "microbot.service"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "verify", filepath.Join(dir, "microbot.service")).CombinedOutput()
	// verify also warns about the host's units; only ours matter.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "microbot.service") {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
	if err != nil {
		t.Logf("systemd-analyze verify: %v\n%s", err, out)
	}
}

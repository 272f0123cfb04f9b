package access

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/internal/trustedfile"
)

// Built-in group names: every policy has them, and a policy file cannot
// define them.
const (
	// GroupAdmins holds the admins (the policy's admins list and --admins).
	GroupAdmins = "admins"
	// GroupEveryone holds everyone, whoever they are.
	GroupEveryone = "everyone"
)

// DefaultConfirmTimeout is how long a confirmation code stays valid.
const DefaultConfirmTimeout = 2 * time.Minute

// AdminCommands returns the commands the default rules allow admins only:
// changing the registry (register service, deregister service), which
// topics' events a room sees (watch, unwatch: events can carry data a room
// should not see) and publishing events (publish). Everyone may run the
// others, watching included.
func AdminCommands() []string {
	return []string{"register service", "deregister service", "watch", "unwatch", "publish"}
}

// DefaultDangerous returns the commands that need a confirmation when the
// policy file does not say otherwise (confirm.commands), in a new slice.
func DefaultDangerous() []string { return []string{"register service", "deregister service"} }

// ConfirmMode says whether a command needs a confirmation, and from whom.
type ConfirmMode int

// Confirmation modes, from the weakest.
const (
	// NoConfirm runs the command at once.
	NoConfirm ConfirmMode = iota
	// ConfirmSelf: the requester confirms, with the code, in the same place.
	ConfirmSelf
	// ConfirmTwoPerson: someone else, also allowed to run the command
	// there, confirms; the requester cannot.
	ConfirmTwoPerson
)

// String returns "none", "self" or "two-person".
func (m ConfirmMode) String() string {
	switch m {
	case ConfirmSelf:
		return "self"
	case ConfirmTwoPerson:
		return "two-person"
	}
	return "none"
}

// parseConfirm reads a confirmation mode as written in a policy file or a
// service's bot.confirm metadata.
func parseConfirm(s string) (ConfirmMode, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "false", "no", "off", "none", "never", "0":
		return NoConfirm, true
	case "true", "yes", "on", "self", "1":
		return ConfirmSelf, true
	case "two-person", "two_person", "twoperson", "other", "2":
		return ConfirmTwoPerson, true
	}
	return ConfirmSelf, false
}

// Policy is an access policy: admins, groups of users, ordered rules, and
// what needs confirmation. A Policy is immutable; reloading makes a new
// one.
type Policy struct {
	source    string              // the file it came from, or "" for the defaults
	extra     []string            // admins given besides the file (--admins), as given
	admins    map[string]bool     // qualified user ids
	groups    map[string][]string // group -> qualified user ids (admins and everyone excluded)
	rules     []*Rule             // the file's, then the defaults
	dangerous []string            // command patterns that need a confirmation
	twoPerson bool                // every confirmation needs a second person
	timeout   time.Duration
}

// Rule is one rule of a policy. Every condition given must hold for the
// rule to apply; a condition left out holds for anything.
type Rule struct {
	// Commands are patterns of command names (see the package comment).
	Commands []string
	// Services are patterns of the service the command acts on.
	Services []string
	// Users are qualified user ids (input:id); Groups are group names. The
	// rule applies to a caller listed in Users or in one of Groups; with
	// neither, to everyone.
	Users  []string
	Groups []string
	// Rooms are qualified rooms (input:room).
	Rooms []string
	// Inputs are input names.
	Inputs []string
	// Direct, when set, limits the rule to direct messages (true) or to
	// rooms (false).
	Direct *bool
	// Allow is the rule's action: allow, or deny.
	Allow bool
	// Confirm is the confirmation the rule asks for, if it allows.
	Confirm ConfirmMode
	// Source says where the rule comes from: "file:line", or "default".
	Source string
}

// Source names the file the policy came from ("" for the defaults).
func (p *Policy) Source() string { return p.source }

// Rules returns the policy's rules in the order they are tried, the
// default rules last.
func (p *Policy) Rules() []*Rule { return slices.Clone(p.rules) }

// ConfirmTimeout is how long a confirmation code stays valid.
func (p *Policy) ConfirmTimeout() time.Duration { return p.timeout }

// Admins returns the admins' qualified ids, sorted.
func (p *Policy) Admins() []string { return slices.Sorted(maps.Keys(p.admins)) }

// defaultAdminsOnly is the Source of the default rule that keeps the
// admin commands for admins; a denial by it says so.
const defaultAdminsOnly = "default: only admins may register and deregister services, watch and unwatch topics and publish"

// defaultRules are tried after a policy file's rules.
func defaultRules() []*Rule {
	admin := AdminCommands()
	return []*Rule{
		{Commands: admin, Groups: []string{GroupAdmins}, Allow: true, Source: "default: admins may register and deregister services, watch and unwatch topics and publish"},
		{Commands: admin, Allow: false, Source: defaultAdminsOnly},
		{Commands: []string{"*"}, Allow: true, Source: "default: everyone may run the other commands"},
	}
}

// Default returns the policy in effect without a policy file: the default
// rules, admins (qualified ids: "slack:U0123ABCD") and no groups.
func Default(admins ...string) (*Policy, error) {
	return build("", nil, admins)
}

// Load reads a policy file. admins are added to the file's admins. The
// file must belong to this user or to root and not be writable by
// everyone: whoever may change it decides who may run what.
func Load(path string, admins ...string) (*Policy, error) {
	data, err := trustedfile.Read(path, maxPolicySize, "whoever may change it decides who may run what")
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Parse(path, data, admins...)
}

// maxPolicySize bounds a policy file.
const maxPolicySize = 4 << 20

// Parse reads a policy from data, YAML, which came from the file name (for
// messages). admins are added to the file's admins. An error names the
// file and line at fault. A file with nothing in it (empty, blank, only
// comments, or an empty document) is refused, as a file cut short while
// being written would be: it must not open everything. ("{}" says "the
// defaults" on purpose.)
func Parse(name string, data []byte, admins ...string) (*Policy, error) {
	if isEmptyYAML(data) {
		return nil, fmt.Errorf("%s: the policy file is empty: write at least one rule or admin, or give no policy file for the default policy", name)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(name, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: only one YAML document is allowed (found a second one, or text after the first)", name)
	}
	return build(name, &f, admins)
}

// isEmptyYAML reports whether data holds no YAML document, or a null one
// ("---" alone, "~"). Malformed data is not empty: Parse reports it.
func isEmptyYAML(data []byte) bool {
	var n yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&n)
	if errors.Is(err, io.EOF) {
		return true
	}
	return err == nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 &&
		n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null"
}

// file is a policy file as written.
type file struct {
	Admins  stringList            `yaml:"admins"`
	Groups  map[string]stringList `yaml:"groups"`
	Confirm fileConfirm           `yaml:"confirm"`
	Rules   []fileRule            `yaml:"rules"`
}

// fileConfirm is the confirm section of a policy file.
type fileConfirm struct {
	Timeout   duration    `yaml:"timeout"`
	TwoPerson bool        `yaml:"two_person"`
	Commands  *stringList `yaml:"commands"`
}

// fileRule is a rule as written, with the line it starts on.
type fileRule struct {
	line     int
	Commands stringList `yaml:"commands"`
	Services stringList `yaml:"services"`
	Users    stringList `yaml:"users"`
	Groups   stringList `yaml:"groups"`
	Rooms    stringList `yaml:"rooms"`
	Inputs   stringList `yaml:"inputs"`
	Direct   *bool      `yaml:"direct"`
	Action   string     `yaml:"action"`
	Confirm  string     `yaml:"confirm"`
}

var ruleFields = []string{"commands", "services", "users", "groups", "rooms", "inputs", "direct", "action", "confirm"}

// UnmarshalYAML reads a rule, refusing unknown fields, and keeps its line.
func (r *fileRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a rule must be a mapping (commands: ..., action: ...)", n.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(ruleFields, k.Value) {
			return fmt.Errorf("line %d: unknown field %q in a rule (the fields are %s)", k.Line, k.Value, strings.Join(ruleFields, ", "))
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: field %q given twice in a rule", k.Line, k.Value)
		}
		seen[k.Value] = true
	}
	type plain fileRule
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*r = fileRule(p)
	r.line = n.Line
	return nil
}

// stringList is a list of strings written as a YAML sequence or as one
// scalar (commands: deploy*).
type stringList []string

// UnmarshalYAML reads a scalar or a sequence of scalars.
func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*l = nil
			return nil
		}
		*l = stringList{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(stringList, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a word here, not a list or a mapping", c.Line)
			}
			out = append(out, c.Value)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: want a word or a list of words", n.Line)
}

// duration is a time.Duration written "2m", "90s".
type duration time.Duration

// UnmarshalYAML reads a duration.
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		return fmt.Errorf("line %d: %q is not a positive duration (e.g. 2m, 90s)", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

var (
	yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	// Messages of yaml.v3 said in the policy's words.
	yamlWords = []struct {
		re   *regexp.Regexp
		repl string
	}{
		{regexp.MustCompile(`field (\S+) not found in type access\.file$`), `unknown field "$1" (the fields are admins, groups, confirm, rules)`},
		{regexp.MustCompile(`field (\S+) not found in type access\.fileConfirm$`), `unknown field "$1" under confirm (the fields are timeout, two_person, commands)`},
		{regexp.MustCompile("cannot unmarshal !!\\w+ `(.*)` into bool$"), `want true or false, not "$1"`},
		{regexp.MustCompile("cannot unmarshal !!\\w+ into map\\[string\\]access\\.stringList$"), `groups: want group names, each with its list of users`},
		{regexp.MustCompile("cannot unmarshal !!(seq|map) into string$"), `want a word here, not a list or a mapping`},
		{regexp.MustCompile("cannot unmarshal !!\\w+ into access\\.(file|fileConfirm)$"), `want a mapping here`},
		{regexp.MustCompile("cannot unmarshal !!\\w+ into \\[\\]access\\.fileRule$"), `rules: want a list of rules`},
	}
)

// yamlError turns a YAML error into "file:line: message" lines.
func yamlError(name string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	for i, m := range msgs {
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			m = name + ":" + sm[1] + ": " + m[len(sm[0]):]
		} else {
			m = name + ": " + strings.TrimPrefix(m, "yaml: ")
		}
		for _, w := range yamlWords {
			m = w.re.ReplaceAllString(m, w.repl)
		}
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "\n"))
}

var (
	groupName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	inputName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// build checks a parsed file (nil for none) and makes the policy.
func build(name string, f *file, extraAdmins []string) (*Policy, error) {
	p := &Policy{
		source:    name,
		extra:     slices.Clone(extraAdmins),
		admins:    map[string]bool{},
		groups:    map[string][]string{},
		dangerous: DefaultDangerous(),
		timeout:   DefaultConfirmTimeout,
	}
	where := func(line int) string {
		if line > 0 {
			return name + ":" + strconv.Itoa(line)
		}
		return name
	}
	for _, a := range extraAdmins {
		id, err := ParseID(a)
		if err != nil {
			return nil, fmt.Errorf("--admins: %w", err)
		}
		p.admins[id] = true
	}
	if f == nil {
		p.rules = defaultRules()
		return p, nil
	}
	for _, a := range f.Admins {
		id, err := ParseID(a)
		if err != nil {
			return nil, fmt.Errorf("%s: admins: %w", name, err)
		}
		p.admins[id] = true
	}
	for g, members := range f.Groups {
		switch {
		case g == GroupAdmins || g == GroupEveryone:
			return nil, fmt.Errorf("%s: groups: %q is a built-in group and cannot be defined (list admins under admins:)", name, g)
		case !groupName.MatchString(g):
			return nil, fmt.Errorf("%s: groups: %q is not a group name (letters, digits, _ . -)", name, g)
		}
		ids := make([]string, 0, len(members))
		for _, m := range members {
			id, err := ParseID(m)
			if err != nil {
				return nil, fmt.Errorf("%s: group %s: %w", name, g, err)
			}
			ids = append(ids, id)
		}
		p.groups[strings.ToLower(g)] = ids
	}
	if f.Confirm.Timeout > 0 {
		p.timeout = time.Duration(f.Confirm.Timeout)
	}
	p.twoPerson = f.Confirm.TwoPerson
	if f.Confirm.Commands != nil {
		p.dangerous = nil
		for _, c := range *f.Confirm.Commands {
			pat, err := commandPattern(c)
			if err != nil {
				return nil, fmt.Errorf("%s: confirm.commands: %w", name, err)
			}
			p.dangerous = append(p.dangerous, pat)
		}
	}
	for i, fr := range f.Rules {
		r, err := p.rule(fr)
		if err != nil {
			return nil, fmt.Errorf("%s: rule %d: %w", where(fr.line), i+1, err)
		}
		r.Source = where(fr.line)
		p.rules = append(p.rules, r)
	}
	p.rules = append(p.rules, defaultRules()...)
	return p, nil
}

// rule checks a rule as written and makes it.
func (p *Policy) rule(fr fileRule) (*Rule, error) {
	r := &Rule{Direct: fr.Direct}
	switch strings.ToLower(strings.TrimSpace(fr.Action)) {
	case "allow":
		r.Allow = true
	case "deny":
	case "":
		return nil, errors.New("action is missing: say allow or deny")
	default:
		return nil, fmt.Errorf("action %q: say allow or deny", fr.Action)
	}
	mode, ok := parseConfirm(fr.Confirm)
	if !ok {
		return nil, fmt.Errorf("confirm %q: say true, false or two-person", fr.Confirm)
	}
	if mode != NoConfirm && !r.Allow {
		return nil, errors.New("confirm on a deny rule means nothing: remove it, or allow")
	}
	r.Confirm = mode
	for _, c := range fr.Commands {
		pat, err := commandPattern(c)
		if err != nil {
			return nil, err
		}
		r.Commands = append(r.Commands, pat)
	}
	for _, s := range fr.Services {
		s = command.Fold(strings.TrimSpace(s))
		if s == "" || strings.ContainsFunc(s, unicode.IsSpace) {
			return nil, fmt.Errorf("services: %q is not a service name pattern", s)
		}
		r.Services = append(r.Services, s)
	}
	for _, u := range fr.Users {
		id, err := ParseID(u)
		if err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		r.Users = append(r.Users, id)
	}
	for _, g := range fr.Groups {
		g = strings.ToLower(strings.TrimSpace(g))
		if _, ok := p.groups[g]; !ok && g != GroupAdmins && g != GroupEveryone {
			return nil, fmt.Errorf("groups: no group %q (defined: %s)", g, strings.Join(p.groupNames(), ", "))
		}
		r.Groups = append(r.Groups, g)
	}
	for _, room := range fr.Rooms {
		q, err := ParseID(room)
		if err != nil {
			return nil, fmt.Errorf("rooms: %w", err)
		}
		r.Rooms = append(r.Rooms, q)
	}
	for _, in := range fr.Inputs {
		in = normInput(strings.TrimSpace(in))
		if !inputName.MatchString(in) {
			return nil, fmt.Errorf("inputs: %q is not an input name", in)
		}
		r.Inputs = append(r.Inputs, in)
	}
	return r, nil
}

// groupNames returns every group name the policy knows, built-ins first.
func (p *Policy) groupNames() []string {
	return append([]string{GroupAdmins, GroupEveryone}, slices.Sorted(maps.Keys(p.groups))...)
}

// commandPattern checks and folds a command name pattern.
func commandPattern(s string) (string, error) {
	f := strings.Join(strings.Fields(command.Fold(s)), " ")
	if f == "" {
		return "", errors.New("commands: an empty command pattern")
	}
	return f, nil
}

// ParseID checks a qualified id, "input:id" (a user: "slack:U0123ABCD",
// "xmpp:alice@example.org", "shell:alice"; or a room: "slack:C0123ABCD",
// "xmpp:ops@conference.example.org", "shell:console"), and returns it
// normalised as the policy compares it (see [Qualify]).
func ParseID(s string) (string, error) {
	s = strings.TrimSpace(s)
	in, id, ok := strings.Cut(s, ":")
	switch {
	case !ok || id == "":
		return "", fmt.Errorf("%q: want input:id, e.g. slack:U0123ABCD, xmpp:alice@example.org, shell:alice", s)
	case !inputName.MatchString(in):
		return "", fmt.Errorf("%q: %q is not an input name", s, in)
	case strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "", fmt.Errorf("%q: an id has no spaces", s)
	}
	return Qualify(in, id), nil
}

// Qualify returns the qualified id of a user or room id of an input as the
// policy compares them: "input:id". An input known under two names has one
// identity: the console's one-shot mode (input "exec") is the console
// ("shell"), and --inputs=hipchat, the XMPP input under the original micro
// bot's name, is "xmpp". XMPP addresses are compared in lower case, as XMPP
// servers do.
func Qualify(inputName, id string) string {
	in := normInput(inputName)
	if in == "xmpp" {
		id = strings.ToLower(id)
	}
	return in + ":" + id
}

// normInput returns the name the policy knows an input by.
func normInput(in string) string {
	switch in = strings.ToLower(in); in {
	case "exec":
		return "shell"
	case "hipchat":
		return "xmpp"
	}
	return in
}

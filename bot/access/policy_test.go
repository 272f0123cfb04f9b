package access

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/internal/testenv"
)

func TestExamplePolicyLoads(t *testing.T) {
	p, err := Load("../../examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Admins(); strings.Join(got, ",") != "shell:root,slack:U0ADMIN01" {
		t.Errorf("admins: %q", got)
	}
	if p.ConfirmTimeout() != 2*time.Minute || p.twoPerson {
		t.Errorf("confirm: %s %v", p.ConfirmTimeout(), p.twoPerson)
	}
	rules := p.Rules()
	if n := len(rules) - len(defaultRules()); n != 8 {
		t.Errorf("%d rules, want 8", n)
	}
	if rules[0].Source != "../../examples/policy.yaml:57" || rules[0].Allow || rules[0].Users[0] != "slack:U0GONE001" {
		t.Errorf("first rule: %+v", rules[0])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"not yaml", "rules: [\n  - {commands: x\n", "p.yaml:"},
		{"unknown top-level field", "admins: [shell:a]\nrulez: []\n", `p.yaml:2: unknown field "rulez" (the fields are admins, groups, confirm, rules)`},
		{"unknown rule field", "rules:\n  - commands: x\n    action: allow\n    user: slack:U1\n", `p.yaml:4: unknown field "user" in a rule`},
		{"field twice", "rules:\n  - commands: x\n    action: allow\n    action: deny\n", `p.yaml:4: field "action" given twice`},
		{"missing action", "rules:\n  - commands: x\n", "p.yaml:2: rule 1: action is missing"},
		{"bad action", "rules:\n  - commands: x\n    action: allow\n  - commands: y\n    action: permit\n", `p.yaml:4: rule 2: action "permit"`},
		{"unknown group", "groups:\n  ops: [slack:U1]\nrules:\n  - groups: opz\n    action: allow\n", `p.yaml:4: rule 1: groups: no group "opz" (defined: admins, everyone, ops)`},
		{"user without input", "rules:\n  - users: U123\n    action: deny\n", `p.yaml:2: rule 1: users: "U123": want input:id`},
		{"admin without input", "admins: [alice]\n", `p.yaml: admins: "alice": want input:id`},
		{"group member with space", "groups:\n  ops: ['slack:U1 U2']\n", `p.yaml: group ops: "slack:U1 U2": an id has no spaces`},
		{"defining admins", "groups:\n  admins: [slack:U1]\n", `"admins" is a built-in group`},
		{"bad group name", "groups:\n  'o ps': [slack:U1]\n", `"o ps" is not a group name`},
		{"bad confirm", "rules:\n  - action: allow\n    confirm: maybe\n", `p.yaml:2: rule 1: confirm "maybe"`},
		{"confirm on deny", "rules:\n  - action: deny\n    confirm: true\n", "confirm on a deny rule means nothing"},
		{"bad timeout", "confirm:\n  timeout: soon\n", `p.yaml:2: "soon" is not a positive duration`},
		{"negative timeout", "confirm:\n  timeout: -1m\n", `p.yaml:2: "-1m" is not a positive duration`},
		{"rule not a mapping", "rules:\n  - allow\n", "p.yaml:2: a rule must be a mapping"},
		{"list of lists", "rules:\n  - commands: [[a]]\n    action: allow\n", "p.yaml:2: want a word here"},
		{"direct not a bool", "rules:\n  - direct: sometimes\n    action: allow\n", `p.yaml:2: want true or false, not "sometimes"`},
		{"bad input name", "rules:\n  - inputs: 'Sl ack'\n    action: allow\n", `inputs: "sl ack" is not an input name`},
		{"two documents", "admins: []\n---\nadmins: []\n", "only one YAML document"},
		{"empty command pattern", "rules:\n  - commands: ['  ']\n    action: allow\n", "an empty command pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseEmptyAndAdmins(t *testing.T) {
	// A file with nothing in it is refused: a file cut short while being
	// written must not open everything (issue 15, item 8).
	for _, data := range []string{"", "\n  \n", "# nothing but a comment\n", "---\n", "~\n"} {
		_, err := Parse("p.yaml", []byte(data), "slack:U1")
		if err == nil || !strings.Contains(err.Error(), "p.yaml: the policy file is empty") {
			t.Errorf("%q: %v", data, err)
		}
	}
	// An empty mapping is written on purpose: the defaults.
	for _, data := range []string{"{}\n", "rules: []\n"} {
		p, err := Parse("p.yaml", []byte(data), "slack:U1")
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if len(p.Rules()) != len(defaultRules()) || !p.admins["slack:U1"] {
			t.Errorf("%q: %d rules, admins %v", data, len(p.Rules()), p.Admins())
		}
	}
	if _, err := Default("alice"); err == nil || !strings.Contains(err.Error(), "--admins") {
		t.Errorf("Default with a bad admin: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestQualify(t *testing.T) {
	tests := []struct{ in, id, want string }{
		{"slack", "U123", "slack:U123"},
		{"xmpp", "Alice@Example.ORG", "xmpp:alice@example.org"},
		{"hipchat", "A@B", "xmpp:a@b"},
		{"HipChat", "A@B", "xmpp:a@b"},
		{"exec", "alice", "shell:alice"},
		{"Shell", "Alice", "shell:Alice"},
	}
	for _, tt := range tests {
		if got := Qualify(tt.in, tt.id); got != tt.want {
			t.Errorf("Qualify(%q, %q) = %q, want %q", tt.in, tt.id, got, tt.want)
		}
	}
	if id, err := ParseID(" xmpp:Bob@Example.org "); err != nil || id != "xmpp:bob@example.org" {
		t.Errorf("ParseID: %q %v", id, err)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*", "anything at all", true},
		{"deploy*", "deploy", true},
		{"deploy*", "deploy-db", true},
		{"deploy*", "redeploy", false},
		{"go.micro.srv.payments.*", "go.micro.srv.payments.charge", true},
		{"go.micro.srv.payments.*", "go.micro.srv.payments", false},
		{"go.micro.srv.payments.*", "go.micro.srv.paymentsx.charge", false},
		{"*.payments.*", "go.micro.srv.payments.a.b", true},
		{"d?ploy", "deploy", true},
		{"d?ploy", "dééploy", false},
		{"d?ploy", "déploy", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{"", "x", false},
		{"*a*a*a*a*a*b", strings.Repeat("a", 200), false}, // no blow-up
	}
	for _, tt := range tests {
		if got := glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

// The commands the matcher is tried on: built-ins as the table has them,
// and command services with their metadata.
var (
	cmdHelp       = &command.Command{Name: "help"}
	cmdList       = &command.Command{Name: "list services"}
	cmdQuery      = &command.Command{Name: "query", Aliases: []string{"call"}}
	cmdHealth     = &command.Command{Name: "health"}
	cmdRegister   = &command.Command{Name: "register service"}
	cmdDeregister = &command.Command{Name: "deregister service"}
	cmdPing       = &command.Command{Name: "ping"}
	cmdLaws       = &command.Command{Name: "the three laws", Aliases: []string{"three laws"}}
	cmdDeploy     = svcCmd("deploy", nil)
	cmdDeployDB   = svcCmd("deploy-db", nil)
	cmdOpsOnly    = svcCmd("restart", map[string]string{MetaGroup: "ops"})
	cmdOpsOrSre   = svcCmd("scale", map[string]string{MetaGroup: "ops, sre"})
	cmdDisagree   = svcCmd("migrate", map[string]string{MetaGroup: "ops\nsre"})
	cmdNobody     = svcCmd("nuke", map[string]string{MetaGroup: "undefined-group"})
	cmdConfirm    = svcCmd("drop", map[string]string{MetaConfirm: "true"})
	cmdTwo        = svcCmd("wipe", map[string]string{MetaConfirm: "two-person"})
	cmdWeird      = svcCmd("odd", map[string]string{MetaConfirm: "perhaps"})
	cmdNodesMixed = svcCmd("mixed", map[string]string{MetaConfirm: "false\ntwo-person"})
	cmdEchoSvc    = svcCmd("echo", nil)
)

func svcCmd(name string, md map[string]string) *command.Command {
	m := map[string]string{command.MetaService: "go.micro.bot." + name}
	for k, v := range md {
		m[k] = v
	}
	return &command.Command{Name: name, Metadata: m}
}

// req parses line as the table would have matched it to cmd.
func req(cmd *command.Command, line string) *command.Request {
	r := &command.Request{Text: command.Normalize(line), Command: cmd}
	r.Words = command.Split(r.Text)
	r.Matched = len(strings.Fields(cmd.Name))
	if cmd.Name == "query" && len(r.Words) > 0 && strings.EqualFold(r.Words[0].Text, "call") {
		r.Matched = 1
	}
	return r
}

const testPolicy = `
admins: [slack:UADMIN, shell:root]
groups:
  ops: [slack:UOPS, xmpp:bob@example.org, shell:alice]
  sre: [slack:USRE]
confirm:
  commands: [deregister service]
rules:
  - users: slack:UGONE
    action: deny
  - commands: deploy*
    groups: ops
    direct: true
    action: allow
    confirm: true
  - commands: deploy*
    action: deny
  - commands: call
    services: go.micro.srv.payments.*
    groups: ops
    action: allow
  - commands: query
    services: go.micro.srv.payments.*
    action: deny
  - commands: [register, health]
    users: slack:UREG
    inputs: slack
    action: allow
  - commands: health
    services: go.micro.srv.secret
    action: deny
  - rooms: slack:CGENERAL
    commands: [help, list services, ping]
    action: allow
  - rooms: slack:CGENERAL
    action: deny
  - commands: the three laws
    direct: false
    action: deny
  - commands: ping
    groups: everyone
    action: allow
    confirm: two-person
`

// --inputs=hipchat is the XMPP input under the original micro bot's name:
// its users, rooms, admins and group members are the xmpp ones, written
// either way (issue 15, item 3).
func TestHipChatIsXMPP(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
admins: [xmpp:root@example.org]
groups:
  ops: [hipchat:alice@example.org]
rules:
  - users: xmpp:bob@example.org
    action: deny
  - rooms: xmpp:quiet@conference.example.org
    action: deny
  - commands: deploy
    groups: ops
    action: allow
  - commands: deploy
    action: deny
  - commands: ping
    inputs: xmpp
    action: deny
`), "hipchat:admin2@example.org")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		caller Caller
		cmd    *command.Command
		allow  bool
	}{
		{"a denied user under hipchat", Caller{Input: "hipchat", UserID: "Bob@example.org", Room: "r@c"}, cmdHelp, false},
		{"a denied user under xmpp", Caller{Input: "xmpp", UserID: "bob@example.org", Room: "r@c"}, cmdHelp, false},
		{"a denied room under hipchat", Caller{Input: "hipchat", UserID: "carol@example.org", Room: "quiet@conference.example.org"}, cmdHelp, false},
		{"a group member written hipchat:, under xmpp", Caller{Input: "xmpp", UserID: "alice@example.org", Room: "r@c"}, cmdDeploy, true},
		{"a group member under hipchat", Caller{Input: "hipchat", UserID: "alice@example.org", Room: "r@c"}, cmdDeploy, true},
		{"a non-member under hipchat", Caller{Input: "hipchat", UserID: "carol@example.org", Room: "r@c"}, cmdDeploy, false},
		{"an admin written xmpp:, under hipchat", Caller{Input: "hipchat", UserID: "root@example.org", Room: "r@c"}, cmdDeregister, true},
		{"an --admins entry written hipchat:, under xmpp", Caller{Input: "xmpp", UserID: "admin2@example.org", Room: "r@c"}, cmdDeregister, true},
		{"inputs: xmpp covers hipchat", Caller{Input: "hipchat", UserID: "carol@example.org", Room: "r@c"}, cmdPing, false},
		{"inputs: xmpp, not slack", Caller{Input: "slack", UserID: "U1", Room: "C1"}, cmdPing, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := p.Decide(tt.caller, tt.cmd, nil); d.Allow != tt.allow {
				t.Errorf("Decide = %+v, want allow %v", d, tt.allow)
			}
		})
	}
	if id := (Caller{Input: "hipchat", UserID: "Bob@Example.org"}).ID(); id != "xmpp:bob@example.org" {
		t.Errorf("ID under hipchat = %q", id)
	}
}

func TestDecide(t *testing.T) {
	p, err := Parse("p.yaml", []byte(testPolicy), "xmpp:Root@Example.org")
	if err != nil {
		t.Fatal(err)
	}
	var (
		adminDM  = Caller{Input: "slack", UserID: "UADMIN", Room: "D1", Direct: true}
		opsDM    = Caller{Input: "slack", UserID: "UOPS", Room: "D2", Direct: true}
		opsRoom  = Caller{Input: "slack", UserID: "UOPS", Room: "COPS"}
		sreRoom  = Caller{Input: "slack", UserID: "USRE", Room: "COPS"}
		dev      = Caller{Input: "slack", UserID: "UDEV", Room: "COPS"}
		devDM    = Caller{Input: "slack", UserID: "UDEV", Room: "D3", Direct: true}
		gone     = Caller{Input: "slack", UserID: "UGONE", Room: "D4", Direct: true}
		general  = Caller{Input: "slack", UserID: "UDEV", Room: "CGENERAL"}
		adminGen = Caller{Input: "slack", UserID: "UADMIN", Room: "CGENERAL"}
		bob      = Caller{Input: "xmpp", UserID: "Bob@Example.org", Room: "bob@example.org", Direct: true}
		root     = Caller{Input: "xmpp", UserID: "root@example.org", Room: "ops@conference.example.org"}
		anon     = Caller{Input: "xmpp", UserID: "ops@conference.example.org/bob", Room: "ops@conference.example.org"}
		alice    = Caller{Input: "shell", UserID: "alice", Room: "console", Direct: true}
		aliceX   = Caller{Input: "exec", UserID: "alice", Room: "exec", Direct: true}
		reg      = Caller{Input: "slack", UserID: "UREG", Room: "COPS"}
		regXMPP  = Caller{Input: "xmpp", UserID: "UREG", Room: "r"}
		nobody   = Caller{}
		slackU   = Caller{Input: "slack", UserID: "uops", Room: "D2", Direct: true} // ids are case-sensitive on Slack
	)
	type want struct {
		allow   bool
		confirm ConfirmMode
		rule    string // prefix of Decision.Rule
	}
	allow := func(rule string) want { return want{true, NoConfirm, rule} }
	deny := func(rule string) want { return want{false, NoConfirm, rule} }
	confirm := func(m ConfirmMode, rule string) want { return want{true, m, rule} }
	tests := []struct {
		name   string
		caller Caller
		cmd    *command.Command
		line   string // "" asks as help does (no parameters)
		want   want
	}{
		{"help for anyone", dev, cmdHelp, "help", allow("default: everyone")},
		{"help for nobody in particular", nobody, cmdHelp, "help", allow("default: everyone")},
		{"a gone user is denied everything", gone, cmdHelp, "help", deny("p.yaml:9")},
		{"a gone user cannot even list", gone, cmdList, "list services", deny("p.yaml:9")},

		{"deploy: ops in a DM, confirmed", opsDM, cmdDeploy, "deploy web v2", confirm(ConfirmSelf, "p.yaml:11")},
		{"deploy-db matches deploy*", opsDM, cmdDeployDB, "deploy-db", confirm(ConfirmSelf, "p.yaml:11")},
		{"deploy: ops in a room is denied", opsRoom, cmdDeploy, "deploy web", deny("p.yaml:16")},
		{"deploy: a dev in a DM is denied", devDM, cmdDeploy, "deploy web", deny("p.yaml:16")},
		{"deploy: an XMPP ops member by bare JID, any case", bob, cmdDeploy, "deploy web", confirm(ConfirmSelf, "p.yaml:11")},
		{"deploy: the console user alice is ops", alice, cmdDeploy, "deploy", confirm(ConfirmSelf, "p.yaml:11")},
		{"deploy: exec is the console", aliceX, cmdDeploy, "deploy", confirm(ConfirmSelf, "p.yaml:11")},
		{"deploy: Slack ids are exact", slackU, cmdDeploy, "deploy", deny("p.yaml:16")},
		{"deploy: an anonymous room occupant is nobody", anon, cmdDeploy, "deploy", deny("p.yaml:16")},
		{"deploy as help sees it, ops DM", opsDM, cmdDeploy, "", confirm(ConfirmSelf, "p.yaml:11")},
		{"deploy as help sees it, dev", dev, cmdDeploy, "", deny("p.yaml:16")},

		{"query payments: ops (rule says call, the alias)", opsRoom, cmdQuery, "query go.micro.srv.payments.charge Pay.Charge {}", allow("p.yaml:18")},
		{"call payments: ops", opsRoom, cmdQuery, "call go.micro.srv.payments.charge Pay.Charge {}", allow("p.yaml:18")},
		{"query payments: dev denied", dev, cmdQuery, "query go.micro.srv.payments.charge Pay.Charge {}", deny("p.yaml:22")},
		{"query payments: case does not get around", dev, cmdQuery, "query GO.MICRO.SRV.Payments.charge Pay.Charge {}", deny("p.yaml:22")},
		{"query greeter: dev allowed by default", dev, cmdQuery, "query go.micro.srv.greeter Say.Hello {}", allow("default: everyone")},
		{"query with no parameters: usage, allowed", dev, cmdQuery, "query", allow("default: everyone")},
		{"query as help sees it: visible to dev", dev, cmdQuery, "", allow("default: everyone")},

		{"register: admin, confirmation not in confirm.commands", adminDM, cmdRegister, `register service {"name": "a", "nodes": []}`, allow("default: admins")},
		{"register: dev denied", dev, cmdRegister, `register service {"name": "a"}`, deny("default: only admins")},
		{"register: named user on slack", reg, cmdRegister, `register service {"name": "a"}`, allow("p.yaml:25")},
		{"register: same id on another input", regXMPP, cmdRegister, `register service {"name": "a"}`, deny("default: only admins")},
		{"deregister: admin, confirmed", adminDM, cmdDeregister, `deregister service {"name": "a"}`, confirm(ConfirmSelf, "default: admins")},
		{"deregister: --admins entry, XMPP case folded", root, cmdDeregister, `deregister service {"name": "a"}`, confirm(ConfirmSelf, "default: admins")},
		{"deregister: ops is no admin", opsDM, cmdDeregister, `deregister service {"name": "a"}`, deny("default: only admins")},
		{"deregister as help sees it: dev", dev, cmdDeregister, "", deny("default: only admins")},

		{"health secret: denied", dev, cmdHealth, "health go.micro.srv.secret", deny("p.yaml:29")},
		{"health other: allowed", dev, cmdHealth, "health go.micro.srv.greeter", allow("default: everyone")},
		{"health as help sees it: a deny with services does not hide it", dev, cmdHealth, "", allow("default: everyone")},

		{"general: help allowed", general, cmdHelp, "help", allow("p.yaml:32")},
		{"general: query denied", general, cmdQuery, "query a b", deny("p.yaml:35")},
		{"general: even admins", adminGen, cmdDeploy, "deploy", deny("p.yaml:16")},
		{"general: admins may not deregister there either", adminGen, cmdDeregister, `deregister service {"name":"a"}`, deny("p.yaml:35")},

		{"three laws in a room: denied (alias matched)", dev, cmdLaws, "three laws", deny("p.yaml:37")},
		{"three laws in a DM: allowed", devDM, cmdLaws, "the three laws", allow("default: everyone")},
		{"ping: two-person from the rule", dev, cmdPing, "ping", confirm(ConfirmTwoPerson, "p.yaml:40")},

		{"metadata group: member", opsRoom, cmdOpsOnly, "restart web", allow("default: everyone")},
		{"metadata group: non-member", dev, cmdOpsOnly, "restart web", deny("service metadata bot.group=ops")},
		{"metadata group: admins are not implicitly in it", adminDM, cmdOpsOnly, "restart", deny("service metadata")},
		{"metadata groups: any of", sreRoom, cmdOpsOrSre, "scale", allow("default: everyone")},
		{"metadata groups: disagreeing nodes, both needed", opsRoom, cmdDisagree, "migrate", deny("service metadata bot.group=ops | sre")},
		{"metadata group undefined: nobody", adminDM, cmdNobody, "nuke", deny("service metadata")},
		{"metadata group: as help sees it", dev, cmdOpsOnly, "", deny("service metadata")},
		{"metadata group cannot loosen a deny", gone, cmdOpsOnly, "restart", deny("p.yaml:9")},
		{"metadata confirm", dev, cmdConfirm, "drop table", confirm(ConfirmSelf, "default: everyone")},
		{"metadata two-person", dev, cmdTwo, "wipe", confirm(ConfirmTwoPerson, "default: everyone")},
		{"metadata confirm unknown value: confirm anyway", dev, cmdWeird, "odd", confirm(ConfirmSelf, "default: everyone")},
		{"metadata confirm, nodes disagree: strongest", dev, cmdNodesMixed, "mixed", confirm(ConfirmTwoPerson, "default: everyone")},
		{"a service command named like a replaceable built-in", dev, cmdEchoSvc, "echo hi", allow("default: everyone")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *command.Request
			if tt.line != "" {
				r = req(tt.cmd, tt.line)
			}
			d := p.Decide(tt.caller, tt.cmd, r)
			if d.Allow != tt.want.allow || d.Confirm != tt.want.confirm || !strings.HasPrefix(d.Rule, tt.want.rule) {
				t.Errorf("got allow=%v confirm=%s rule=%q (%s); want allow=%v confirm=%s rule=%q…",
					d.Allow, d.Confirm, d.Rule, d.Reason, tt.want.allow, tt.want.confirm, tt.want.rule)
			}
		})
	}
}

func TestDecideTargets(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
rules:
  - commands: [deregister, get]
    services: go.micro.srv.keep*
    action: deny
`), "shell:root")
	if err != nil {
		t.Fatal(err)
	}
	root := Caller{Input: "shell", UserID: "root", Room: "console", Direct: true}
	tests := []struct {
		line   string
		cmd    *command.Command
		allow  bool
		target string
	}{
		{`deregister service {"name": "go.micro.srv.keepme", "nodes": [{"id": "x"}]}`, cmdDeregister, false, "go.micro.srv.keepme"},
		{`deregister service '{"name": "go.micro.srv.keepme"}'`, cmdDeregister, false, "go.micro.srv.keepme"},
		{`deregister service {"name": "go.micro.srv.other"}`, cmdDeregister, true, "go.micro.srv.other"},
		// The definition does not parse: a deny with services applies
		// (fail closed), whatever the command would make of it.
		{`deregister service {"name": "go.micro.srv.keepme"`, cmdDeregister, false, ""},
		{`deregister service not-json`, cmdDeregister, false, ""},
		{`deregister service`, cmdDeregister, true, ""}, // only the usage
		{`get service go.micro.srv.keep`, &command.Command{Name: "get service"}, false, "go.micro.srv.keep"},
		{`get service go.micro.srv.greeter`, &command.Command{Name: "get service"}, true, "go.micro.srv.greeter"},
	}
	for _, tt := range tests {
		d := p.Decide(root, tt.cmd, req(tt.cmd, tt.line))
		if d.Allow != tt.allow || d.Target != tt.target {
			t.Errorf("%s: allow=%v target=%q (%s), want allow=%v target=%q", tt.line, d.Allow, d.Target, d.Rule, tt.allow, tt.target)
		}
	}
}

func TestConfirmCommandsAndTwoPerson(t *testing.T) {
	p, err := Parse("p.yaml", []byte("confirm:\n  two_person: true\n  commands: [ping, deploy*]\n  timeout: 90s\n"), "slack:UADMIN")
	if err != nil {
		t.Fatal(err)
	}
	dev := Caller{Input: "slack", UserID: "UDEV", Room: "C1"}
	admin := Caller{Input: "slack", UserID: "UADMIN", Room: "C1"}
	for _, tt := range []struct {
		c    Caller
		cmd  *command.Command
		want ConfirmMode
	}{
		{dev, cmdPing, ConfirmTwoPerson},
		{dev, cmdDeployDB, ConfirmTwoPerson},
		{dev, cmdHelp, NoConfirm},
		{admin, cmdDeregister, NoConfirm}, // no longer in confirm.commands
		{dev, cmdConfirm, ConfirmTwoPerson},
	} {
		if d := p.Decide(tt.c, tt.cmd, nil); !d.Allow || d.Confirm != tt.want {
			t.Errorf("%s: %+v, want confirm %s", tt.cmd.Name, d, tt.want)
		}
	}
	if p.ConfirmTimeout() != 90*time.Second {
		t.Errorf("timeout %s", p.ConfirmTimeout())
	}
	p, err = Parse("p.yaml", []byte("confirm:\n  commands: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Decide(admin, cmdDeregister, nil); d.Confirm != NoConfirm {
		t.Errorf("confirm.commands: [] still confirms deregister: %+v", d)
	}
}

func TestLoadFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - commands: ping\n    action: deny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Decide(Caller{Input: "shell", UserID: "a"}, cmdPing, nil); d.Allow || d.Rule != path+":2" {
		t.Errorf("%+v", d)
	}
}

// A policy file others may change, or that belongs to another user than
// this one or root, is refused: whoever may change it decides who may run
// what (issue 15, item 6's class).
func TestLoadRefusesUntrustedFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - commands: ping\n    action: deny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("a private file: %v", err)
	}
	for _, mode := range []os.FileMode{0o666, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "writable by others") {
			t.Errorf("mode %v: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		if testenv.InCI() && os.Getuid() == 0 {
			t.Fatal(err)
		}
		t.Skipf("cannot give a file to another user: %v", err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("another user's file: %v", err)
	}
}

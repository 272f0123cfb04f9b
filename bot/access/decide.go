package access

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/input"
)

// Metadata keys a command service may set in its registry metadata (node
// or service metadata) to restrict itself; a policy cannot loosen them.
const (
	// MetaGroup names the group(s) whose members alone may run the command:
	// "ops", or several separated by commas or spaces ("ops, sre": a member
	// of any of them).
	MetaGroup = "bot.group"
	// MetaConfirm says the command needs a confirmation: "true" (the
	// requester confirms) or "two-person" (someone else must).
	MetaConfirm = "bot.confirm"
)

// Caller is who asks, and where.
type Caller struct {
	// Input is the input's name ("slack", "xmpp", "shell").
	Input string
	// UserID is the user's immutable id in that input.
	UserID string
	// Room is the room or channel (for a direct message, its conversation).
	Room string
	// Direct is true for a direct message.
	Direct bool
}

// CallerOf returns the caller of an event (the zero Caller for nil).
func CallerOf(ev *input.Event) Caller {
	if ev == nil {
		return Caller{}
	}
	return Caller{Input: ev.Input, UserID: ev.UserID, Room: ev.Room, Direct: ev.Direct}
}

// ID returns the caller's qualified id, "input:id" (see [Qualify]), or ""
// for a caller without one.
func (c Caller) ID() string {
	if c.Input == "" || c.UserID == "" {
		return ""
	}
	return Qualify(c.Input, c.UserID)
}

// place returns the qualified room.
func (c Caller) place() string {
	if c.Input == "" {
		return ""
	}
	return Qualify(c.Input, c.Room)
}

// Decision is what the policy says about a command.
type Decision struct {
	// Allow is true when the caller may run the command here.
	Allow bool
	// Confirm is the confirmation the command needs first.
	Confirm ConfirmMode
	// Rule is what decided: a rule's Source, or the service's metadata.
	Rule string
	// Reason says why a command was denied, for the audit log.
	Reason string
	// Target is the service the command acts on, "" if none or unknown.
	Target string
}

// targetKind says what is known of the service a command acts on.
type targetKind int

const (
	noTarget      targetKind = iota // the command acts on no service
	knownTarget                     // the service is known
	unknownTarget                   // it acts on one, but which cannot be told
)

type target struct {
	kind targetKind
	name string
}

// targetOf returns the service req's command acts on: its own service for
// a command service, the first parameter of query, call, health and get
// service, the "name" of the definition of register and deregister
// service. req nil means any (help asks whether a command is visible at
// all).
func targetOf(cmd *command.Command, req *command.Request) target {
	if s := cmd.Metadata[command.MetaService]; s != "" {
		return target{knownTarget, s}
	}
	switch cmd.Name {
	case "query", "health", "get service", "register service", "deregister service":
	default:
		return target{kind: noTarget}
	}
	if req == nil {
		return target{kind: unknownTarget}
	}
	p := req.Params()
	if len(p) == 0 {
		return target{kind: noTarget} // the command answers with its usage
	}
	if cmd.Name != "register service" && cmd.Name != "deregister service" {
		return target{knownTarget, p[0]}
	}
	raw := req.Rest(0)
	if j := req.Matched; j == len(req.Words)-1 && req.Words[j].Quoted {
		raw = req.Words[j].Text
	}
	var def struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(raw), &def); err != nil || def.Name == "" {
		return target{kind: unknownTarget}
	}
	return target{knownTarget, def.Name}
}

// Decide says whether caller may run cmd, as req asks (req gives the
// parameters, hence the target service; nil asks whether the caller may run
// cmd here at all, as help does), and what confirmation it needs.
//
// The rules are tried in order, the policy file's then the defaults; the
// first that applies decides. An allowed command then meets the floor its
// service set in its metadata (bot.group, bot.confirm), and the
// confirmation is the strongest asked for by the rule, confirm.commands,
// the metadata and confirm.two_person.
func (p *Policy) Decide(caller Caller, cmd *command.Command, req *command.Request) Decision {
	t := targetOf(cmd, req)
	d := Decision{Target: t.name}
	var rule *Rule
	for _, r := range p.rules {
		if p.applies(r, caller, cmd, t, req == nil) {
			rule = r
			break
		}
	}
	if rule == nil { // cannot happen: the defaults end with a catch-all
		d.Reason = "no rule applies"
		return d
	}
	d.Rule = rule.Source
	if !rule.Allow {
		d.Reason = "denied by " + rule.Source
		return d
	}
	d.Allow, d.Confirm = true, rule.Confirm
	if cmd.Metadata != nil {
		if g, ok := cmd.Metadata[MetaGroup]; ok && !p.inGroups(caller, g) {
			d.Allow = false
			d.Rule = "service metadata " + MetaGroup + "=" + strings.ReplaceAll(g, "\n", " | ")
			d.Reason = "not in the group(s) the service requires"
			return d
		}
		if c, ok := cmd.Metadata[MetaConfirm]; ok {
			for part := range strings.SplitSeq(c, "\n") {
				m, _ := parseConfirm(part) // unknown values ask for a confirmation
				d.Confirm = max(d.Confirm, m)
			}
		}
	}
	if p.isDangerous(cmd) {
		d.Confirm = max(d.Confirm, ConfirmSelf)
	}
	if p.twoPerson && d.Confirm != NoConfirm {
		d.Confirm = ConfirmTwoPerson
	}
	return d
}

// inGroups reports whether caller meets a bot.group value: every line of it
// (nodes of a service that disagree give one line each) names groups, and
// the caller must be in one of each line's groups.
func (p *Policy) inGroups(caller Caller, value string) bool {
	for line := range strings.SplitSeq(value, "\n") {
		names := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		if len(names) == 0 {
			return false // declared, but empty: nobody
		}
		if !slices.ContainsFunc(names, func(g string) bool { return p.member(caller, strings.ToLower(g)) }) {
			return false
		}
	}
	return true
}

// member reports whether caller is in group g.
func (p *Policy) member(caller Caller, g string) bool {
	if g == GroupEveryone {
		return true
	}
	id := caller.ID()
	if id == "" {
		return false
	}
	if g == GroupAdmins {
		return p.admins[id]
	}
	return slices.Contains(p.groups[g], id)
}

func (p *Policy) isDangerous(cmd *command.Command) bool {
	return slices.ContainsFunc(p.dangerous, func(pat string) bool { return matchCommand(pat, cmd) })
}

// applies reports whether every condition of r holds.
func (p *Policy) applies(r *Rule, caller Caller, cmd *command.Command, t target, anyTarget bool) bool {
	if len(r.Commands) > 0 && !slices.ContainsFunc(r.Commands, func(pat string) bool { return matchCommand(pat, cmd) }) {
		return false
	}
	if len(r.Services) > 0 {
		switch t.kind {
		case noTarget:
			return false
		case unknownTarget:
			// Help: a command is visible if some service is allowed, so
			// only allow rules count. A request whose target cannot be
			// told: fail closed, only deny rules count.
			if r.Allow != anyTarget {
				return false
			}
		case knownTarget:
			name := command.Fold(t.name)
			if !slices.ContainsFunc(r.Services, func(pat string) bool { return glob(pat, name) }) {
				return false
			}
		}
	}
	if len(r.Users) > 0 || len(r.Groups) > 0 {
		id := caller.ID()
		if !(id != "" && slices.Contains(r.Users, id)) && !slices.ContainsFunc(r.Groups, func(g string) bool { return p.member(caller, g) }) {
			return false
		}
	}
	if len(r.Rooms) > 0 && !slices.Contains(r.Rooms, caller.place()) {
		return false
	}
	if len(r.Inputs) > 0 && !slices.Contains(r.Inputs, normInput(caller.Input)) {
		return false
	}
	if r.Direct != nil && *r.Direct != caller.Direct {
		return false
	}
	return true
}

// matchCommand reports whether a command pattern (folded) matches cmd: its
// name, one of its aliases, or the first word of its name ("deregister"
// is "deregister service"; "call" is query).
func matchCommand(pat string, cmd *command.Command) bool {
	name := command.Fold(cmd.Name)
	if glob(pat, name) {
		return true
	}
	if first, _, multi := strings.Cut(name, " "); multi && glob(pat, first) {
		return true
	}
	for _, a := range cmd.Aliases {
		if glob(pat, command.Fold(strings.Join(strings.Fields(a), " "))) {
			return true
		}
	}
	return false
}

// glob reports whether s matches pattern, where * stands for any run of
// characters (dots and spaces included) and ? for one character; nothing
// else is special.
func glob(pattern, s string) bool {
	pat, str := []rune(pattern), []rune(s)
	// Iterative matching, backtracking to the last star only: never
	// exponential.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(str) {
		switch {
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case p < len(pat) && (pat[p] == '?' || pat[p] == str[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

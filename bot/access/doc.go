// Package access is the bot's access policy: who may run which command,
// where, and which commands need a confirmation first. A [Guard] enforces
// a [Policy] as a bot middleware, hides from help what a caller may not
// run, serves the confirm command, and writes an audit record (package
// bot/audit) for every command.
//
// # Identity
//
// Decisions use the immutable user id an input gives (input.Event.UserID),
// never a display name. A user, or a room, is written qualified by its
// input: "slack:U0123ABCD", "xmpp:alice@example.org", "shell:alice" (the
// console user, set with --shell_user), "slack:C0123ABCD",
// "xmpp:ops@conference.example.org", "shell:console". The console's
// one-shot mode (microbot exec) counts as the console (shell). XMPP
// addresses are compared in lower case. In an anonymous XMPP room an
// occupant has no verified identity (their id is room@service/nick): rules
// naming users or groups never apply to them.
//
// # Rules
//
// A policy has admins (the group "admins"), named groups of users, and an
// ordered list of rules. Each rule has conditions and an action:
//
//	commands   command name patterns ("deploy*", "deregister service")
//	services   patterns of the service the command acts on
//	users      qualified user ids
//	groups     group names ("admins", "everyone", or the policy's own)
//	rooms      qualified rooms
//	inputs     input names (slack, xmpp, shell)
//	direct     true: direct messages only; false: rooms only
//	action     allow or deny (required)
//	confirm    true, or two-person: the command needs a confirmation
//
// A rule applies when every condition it gives holds (users and groups
// together: the caller is one of the users or in one of the groups). The
// rules are tried in order and the first that applies decides: first-match,
// like a firewall. After the policy file's rules come the default rules,
// which are all there is without a file:
//
//  1. register service, deregister service, watch, unwatch and publish
//     (see [AdminCommands]): allow admins;
//  2. the same commands: deny;
//  3. any command: allow.
//
// So with no file everyone may run help, list services, get service,
// health, query, watching, the small built-ins (echo, hello, ping, time,
// the three laws) and every command service, and only admins (none unless
// --admins names some) may register and deregister services, choose the
// topics whose events a room sees (watch, unwatch) and publish events. A
// file that wants to deny what its rules do not allow ends with a rule
// {commands: "*", action: deny}.
//
// Patterns are case-insensitive; * stands for any run of characters
// (dots and spaces too) and ? for one character. A command pattern matches
// a command's name, an alias ("call" is query), or the first word of a
// name of several ("deregister" is "deregister service").
//
// The service a command acts on is a command service's own service
// (go.micro.bot.deploy), the first parameter of query, call, health and
// get service, and the "name" of the JSON definition of register and
// deregister service; other commands act on none, and a rule with services
// never applies to them. When the service cannot be told (a definition
// that does not parse) rules with services apply only if they deny. A
// query of a command service (query go.micro.bot.deploy Command.Exec ...)
// is decided as query of that service and as running that command: it
// cannot get around the command's rules.
//
// The confirm command is outside the rules: anyone may type it, and what
// it may do is decided by the command it confirms.
//
// # What a command service declares
//
// A command service may restrict itself in its registry metadata (node
// metadata: framework.WithMetadata, or --server_metadata):
//
//	bot.group    only members of this group run it ("ops"; "ops,sre": of any)
//	bot.confirm  it needs a confirmation: true, or two-person
//
// These are a floor the policy cannot lower: a command the rules allow
// still needs the caller in bot.group, and its confirmation is the
// strongest asked for by the rule, the metadata, and the policy. A group
// the policy does not define has no members. Nodes of a service that
// disagree (a rolling upgrade) are all obeyed.
//
// # Confirmation
//
// A command needs a confirmation when the rule that allowed it says so,
// when its service's metadata says so, or when it is in confirm.commands
// (default: register service, deregister service). It then does not run;
// the bot answers with a code (6 characters from crypto/rand) and the
// command runs when "confirm CODE" is typed in the same place (input and
// room) within the timeout (default 2m; confirm.timeout, --confirm_timeout)
// by the same user, or, under the two-person rule (confirm: two-person, or
// confirm.two_person for every confirmation), by someone else who may run
// the command there, never the requester. A code works once. When it is
// confirmed, the command is matched and decided again under the policy in
// effect then. It runs with the requester's identity, and the services it
// calls also get Micro-Confirmed-By: the confirmer's qualified id.
//
// # Denials
//
// A denied built-in command gets "you are not allowed to run NAME here",
// followed by " (admins only)" when the default rule kept it for admins.
// A denied command service is one the caller does not see: the reply is
// the one for an unknown command, and help does not list it. help lists
// what the caller may run where they ask.
//
// # Reloading
//
// [Guard.Reload] (SIGHUP in microbot) reads the policy file again: a file
// that does not load leaves the policy in effect and logs why, with the
// file and line. At start-up such a file is an error.
package access

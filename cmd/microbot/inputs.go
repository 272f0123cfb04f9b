package main

import (
	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/shell"
	"github.com/microbot/microbot/input/slack"
	"github.com/microbot/microbot/input/xmpp"
	"github.com/microbot/microbot/internal/plugin"
)

// inputTable is the table of inputs --inputs picks from (the shape is
// package internal/plugin's): a new input is one more line here.
var inputTable = plugin.NewTable("input", map[string]func() input.Input{
	shell.Name:       func() input.Input { return shell.New() },
	slack.Name:       func() input.Input { return slack.New() },
	xmpp.Name:        func() input.Input { return xmpp.New() },
	xmpp.HipChatName: func() input.Input { return xmpp.NewHipChat() }, // the same input with the --hipchat_* flags
})

// newInput builds the input called name. The console completes with the
// command table (the commands the console user may run, service names and
// endpoints from the registry) and keeps out of its history file the lines
// the audit log would redact.
func newInput(name string, p *parts) (input.Input, error) {
	if name == shell.Name {
		return shell.New(shell.WithCompleter(p.table), shell.WithSecretLines(audit.HasSecret)), nil
	}
	f, err := inputTable.Get(name)
	if err != nil {
		return nil, err
	}
	return f(), nil
}

package main

import (
	"slices"
	"testing"

	"github.com/microbot/microbot/input"
)

func TestInputTable(t *testing.T) {
	if got, want := inputTable.Names(), []string{"hipchat", "shell", "slack", "xmpp"}; !slices.Equal(got, want) {
		t.Errorf("inputs %v, want %v", got, want)
	}
	for _, name := range inputTable.Names() {
		newInput, err := inputTable.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		in := newInput()
		if in.String() != name {
			t.Errorf("input %q calls itself %q", name, in.String())
		}
		if _, ok := in.(input.StatusReporter); !ok {
			t.Errorf("input %q does not report its status", name)
		}
	}
	if _, err := inputTable.Get("irc"); err == nil || err.Error() != `input "irc": unknown (have [hipchat shell slack xmpp])` {
		t.Errorf("unknown input: %v", err)
	}
}

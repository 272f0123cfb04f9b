package watch

import (
	"maps"
	"testing"

	"github.com/microbot/microbot/framework/registry"
)

// The access-policy keys of a command service come from its service and
// node metadata; nodes that disagree give every value, one per line.
func TestPolicyMeta(t *testing.T) {
	node := func(md map[string]string) *registry.Node { return &registry.Node{ID: "n", Metadata: md} }
	tests := []struct {
		name     string
		versions []*registry.Service
		want     map[string]string
	}{
		{"none", []*registry.Service{{Nodes: []*registry.Node{node(map[string]string{"server": "microbot"})}}}, map[string]string{}},
		{"node metadata", []*registry.Service{{Nodes: []*registry.Node{node(map[string]string{"bot.group": "ops", "bot.confirm": "true", "transport": "http"})}}},
			map[string]string{"bot.group": "ops", "bot.confirm": "true"}},
		{"service metadata", []*registry.Service{{Metadata: map[string]string{"bot.group": "ops"}, Nodes: []*registry.Node{node(nil)}}},
			map[string]string{"bot.group": "ops"}},
		{"nodes agree", []*registry.Service{{Nodes: []*registry.Node{node(map[string]string{"bot.group": "ops"}), node(map[string]string{"bot.group": "ops"})}}},
			map[string]string{"bot.group": "ops"}},
		{"nodes disagree", []*registry.Service{
			{Version: "2", Nodes: []*registry.Node{node(map[string]string{"bot.group": "sre"})}},
			{Version: "1", Nodes: []*registry.Node{node(map[string]string{"bot.group": "ops", "bot.confirm": "two-person"}), node(nil)}},
		}, map[string]string{"bot.group": "ops\nsre", "bot.confirm": "two-person"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			policyMeta(got, tt.versions)
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

package plugin

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	items := map[string]int{"b": 2, "a": 1}
	tb := NewTable("widget", items)
	items["c"] = 3 // the table keeps its own copy
	if got := strings.Join(tb.Names(), ","); got != "a,b" {
		t.Errorf("Names = %s, want a,b (sorted)", got)
	}
	tests := []struct {
		name    string
		want    int
		wantErr string
	}{
		{"a", 1, ""},
		{"b", 2, ""},
		{"c", 0, `widget "c": unknown (have [a b])`},
		{"", 0, `widget "": unknown (have [a b])`},
	}
	for _, tt := range tests {
		got, err := tb.Get(tt.name)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Get(%q) error = %v, want %q", tt.name, err, tt.wantErr)
			}
			if _, ok := tb.Lookup(tt.name); ok {
				t.Errorf("Lookup(%q) found an item", tt.name)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Get(%q) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
		if got, ok := tb.Lookup(tt.name); !ok || got != tt.want {
			t.Errorf("Lookup(%q) = %d, %v; want %d", tt.name, got, ok, tt.want)
		}
	}
}

package plugin

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	tb := NewTable[int]("widget")
	tb.Add("b", 2)
	tb.Add("a", 1)
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
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Get(%q) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}

func TestAddTwicePanics(t *testing.T) {
	tb := NewTable[int]("widget")
	tb.Add("a", 1)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"a" added twice`) {
			t.Errorf("recover() = %v, want a panic naming the name", r)
		}
	}()
	tb.Add("a", 2)
}

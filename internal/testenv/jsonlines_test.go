package testenv

import (
	"fmt"
	"testing"
)

// fatalTB records a Fatal instead of stopping the test.
type fatalTB struct {
	testing.TB
	failed string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func (f *fatalTB) Fatal(args ...any) { f.failed = fmt.Sprint(args...) }

func TestJSONLines(t *testing.T) {
	type rec struct{ A int }
	tests := []struct {
		name, data string
		want       []rec
		fails      bool
	}{
		{"empty", "", nil, false},
		{"lines", "{\"A\":1}\n{\"A\":2}\n", []rec{{1}, {2}}, false},
		{"no final newline", `{"A":3}`, []rec{{3}}, false},
		{"unknown field", `{"A":1,"B":2}`, nil, true},
		{"two values on a line", `{"A":1}{"A":2}`, nil, true},
		{"not JSON", "A=1", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fatalTB{TB: t}
			got := JSONLines[rec](f, []byte(tt.data))
			if (f.failed != "") != tt.fails {
				t.Fatalf("failed = %q, want failure %v", f.failed, tt.fails)
			}
			if !tt.fails && fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

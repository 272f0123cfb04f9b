package testenv

import "testing"

func TestMetric(t *testing.T) {
	const page = `# HELP x_total X.
# TYPE x_total counter
x_total{a="1",b="2"} 3
x_total{a="2"} 4.5 1700000000000
y 7
y_total 8
z +Inf
`
	tests := []struct {
		series string
		want   float64
	}{
		{`x_total{a="1",b="2"}`, 3},
		{`x_total{a="2"}`, 4.5},
		{"y", 7},
		{"y_total", 8},
		{`x_total{a="3"}`, -1},
		{"x", -1},
	}
	for _, tt := range tests {
		if got := Metric(page, tt.series); got != tt.want {
			t.Errorf("Metric(%s) = %v, want %v", tt.series, got, tt.want)
		}
	}
	if got := Metric(page, "z"); got < 1e308 {
		t.Errorf("Metric(z) = %v, want +Inf", got)
	}
}

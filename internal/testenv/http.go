package testenv

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Get sends a GET to url (within 10 s) and returns the status code and the
// body; an error fails the test.
func Get(tb testing.TB, url string) (int, string) {
	tb.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	rsp, err := c.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer rsp.Body.Close()
	body, err := io.ReadAll(rsp.Body)
	if err != nil {
		tb.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return rsp.StatusCode, string(body)
}

// Metric returns the value of the sample series on page, a page in the
// Prometheus text format (series is name{labels} as written there, labels
// sorted by name), or -1 if the page has no such sample.
func Metric(page, series string) float64 {
	for l := range strings.SplitSeq(page, "\n") {
		rest, ok := strings.CutPrefix(l, series+" ")
		if !ok {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				return v
			}
		}
	}
	return -1
}

package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// JSONLines decodes data, one JSON value a line (a log in JSON lines), into
// values of type T, strictly: a line that is not exactly one value of T, or
// that has a field T does not know, fails the test.
func JSONLines[T any](tb testing.TB, data []byte) []T {
	tb.Helper()
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var v T
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		err := dec.Decode(&v)
		if err == nil {
			if _, err = dec.Token(); errors.Is(err, io.EOF) {
				err = nil
			} else if err == nil {
				err = errors.New("more than one value")
			}
		}
		if err != nil {
			tb.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

package envelope

import (
	"fmt"
	"testing"
)

// smallHeader is what client.Publish sends with a 128-byte body, as in
// bench/cmd/brokerbench.
var smallHeader = map[string]string{"Content-Type": "application/protobuf", "Micro-Topic": "bench.x",
	"Micro-Id": "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50"}

// largeHeader is twelve headers, some with characters encoding/json
// escapes, for a 4 KiB body.
func largeHeader() map[string]string {
	h := map[string]string{"Content-Type": "application/json", "Micro-Topic": "deploys.web",
		"Micro-Id": "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50", "Micro-Message-Type": "go.micro.bot.Notification",
		"Summary": "deploy <web> v2 & friends", "Ünïcödé": "välüe"}
	for i := range 6 {
		h[fmt.Sprintf("X-Trace-%d", i)] = fmt.Sprintf("00-%032x-%016x-01", i, i)
	}
	return h
}

func benchEncode(b *testing.B, header map[string]string, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if p := Encode(header, body); len(p) == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkEncodeSmall: the message of brokerbench's +headers rows.
func BenchmarkEncodeSmall(b *testing.B) { benchEncode(b, smallHeader, make([]byte, 128)) }

// BenchmarkEncodeLarge: twelve headers and a 4 KiB body.
func BenchmarkEncodeLarge(b *testing.B) { benchEncode(b, largeHeader(), make([]byte, 4096)) }

// BenchmarkDecodeSmall: the message of brokerbench's +headers rows.
func BenchmarkDecodeSmall(b *testing.B) { benchDecode(b, Encode(smallHeader, make([]byte, 128)), true) }

// BenchmarkDecodeLarge: twelve headers and a 4 KiB body.
func BenchmarkDecodeLarge(b *testing.B) {
	benchDecode(b, Encode(largeHeader(), make([]byte, 4096)), true)
}

package envelope

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload string
		ok      bool
		header  map[string]string
		body    string
	}{
		{"go-micro's", `{"Header":{"Content-Type":"application/json","Micro-Topic":"alerts"},"Body":"eyJhIjoxfQ=="}`, true,
			map[string]string{"Content-Type": "application/json", "Micro-Topic": "alerts"}, `{"a":1}`},
		{"null header and body", `{"Header":null,"Body":null}`, true, nil, ""},
		{"empty header", `{"Header":{},"Body":""}`, true, nil, ""},
		{"Body first, spaces", " \n{ \"Body\" : \"AP8=\" ,\t\"Header\":{\"a\":\"\\u003c\"}}\n", true, map[string]string{"a": "<"}, "\x00\xff"},

		{"an application's JSON", `{"name":"disk full"}`, false, nil, ""},
		{"an application's header and body", `{"header":{"a":"b"},"body":"aGk="}`, false, nil, ""},
		{"case other than go-micro's", `{"Header":{"a":"b"},"body":"aGk="}`, false, nil, ""},
		{"Body alone", `{"Body":"aGk="}`, false, nil, ""},
		{"Header alone", `{"Header":{"a":"b"}}`, false, nil, ""},
		{"a third key", `{"Header":{},"Body":"aGk=","Topic":"x"}`, false, nil, ""},
		{"a header not a string", `{"Header":{"n":1},"Body":"aGk="}`, false, nil, ""},
		{"headers not an object", `{"Header":"a","Body":"aGk="}`, false, nil, ""},
		{"body not base64", `{"Header":null,"Body":"not base64!"}`, false, nil, ""},
		{"body not a string", `{"Header":null,"Body":{"a":1}}`, false, nil, ""},
		{"truncated", `{"Header":null,"Body":"aGk="`, false, nil, ""},
		{"trailing garbage", `{"Header":null,"Body":"aGk="}x`, false, nil, ""},
		{"empty", ``, false, nil, ""},
		{"not JSON", "\x00\x01binary", false, nil, ""},
		{"an array", `[{"Header":null,"Body":null}]`, false, nil, ""},
		{"a key twice", `{"Header":{"a":"1"},"Header":{"a":"2"},"Body":null}`, false, nil, ""},
		{"a control character", "{\"Header\":{\"a\":\"\x01\"},\"Body\":null}", false, nil, ""},
		{"a bad escape", `{"Header":{"a":"\x"},"Body":null}`, false, nil, ""},
		{"escaped key", `{"\u0048eader":null,"Body":null}`, false, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, b, ok := Decode([]byte(tt.payload))
			if ok != tt.ok {
				t.Fatalf("Decode(%q): ok %v, want %v", tt.payload, ok, tt.ok)
			}
			if !ok {
				if h != nil || b != nil {
					t.Errorf("not an envelope, yet header %v body %q", h, b)
				}
				return
			}
			if !maps.Equal(h, tt.header) || (tt.header == nil) != (h == nil) || string(b) != tt.body {
				t.Errorf("Decode(%q) = %v %q, want %v %q", tt.payload, h, b, tt.header, tt.body)
			}
		})
	}
}

// TestEncode: what go-micro's codec writes, byte for byte.
func TestEncode(t *testing.T) {
	for _, tt := range []struct {
		header map[string]string
		body   []byte
		want   string
	}{
		{nil, nil, `{"Header":null,"Body":null}`},
		{map[string]string{"b": "2", "a": "<1>"}, []byte("hi"), `{"Header":{"a":"\u003c1\u003e","b":"2"},"Body":"aGk="}`},
	} {
		got, err := Encode(tt.header, tt.body)
		if err != nil || string(got) != tt.want {
			t.Errorf("Encode(%v, %q) = %s, %v; want %s", tt.header, tt.body, got, err, tt.want)
		}
		// go-micro's own decoding: encoding/json into its broker.Message.
		var m Message
		if err := json.Unmarshal(got, &m); err != nil || !bytes.Equal(m.Body, tt.body) || len(m.Header) != len(tt.header) {
			t.Errorf("go-micro would read %s as %+v, %v", got, m, err)
		}
	}
}

// FuzzDecode: Decode never panics, takes back what Encode wrote, and what
// it takes, encoding/json (go-micro's codec) takes alike.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"Header":{"a":"b"},"Body":"aGk="}`), "k", "v")
	f.Add([]byte(`{"name":"x"}`), "", "")
	f.Add([]byte(` {"Body":null,"Header":null}`), "Content-Type", "application/json")
	f.Fuzz(func(t *testing.T, payload []byte, k, v string) {
		if h, b, ok := Decode(payload); ok {
			var m Message
			if err := json.Unmarshal(payload, &m); err != nil {
				t.Fatalf("Decode took %q, encoding/json refuses it: %v", payload, err)
			}
			if !bytes.Equal(m.Body, b) || len(m.Header) != len(h) {
				t.Fatalf("Decode(%q) = %v %q, encoding/json %v %q", payload, h, b, m.Header, m.Body)
			}
		}
		hdr := map[string]string{k: v}
		enc, err := Encode(hdr, payload)
		if err != nil {
			t.Fatal(err)
		}
		h, b, ok := Decode(enc)
		if !ok || !bytes.Equal(b, payload) || len(h) != 1 {
			t.Fatalf("Decode(Encode(%v, %q)) = %v %q %v", hdr, payload, h, b, ok)
		}
	})
}

func benchDecode(b *testing.B, payload []byte, want bool) {
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, _, ok := Decode(payload); ok != want {
			b.Fatal(ok)
		}
	}
}

// BenchmarkDecodeRaw: a payload that is not JSON (protobuf) costs one byte's look.
func BenchmarkDecodeRaw(b *testing.B) {
	benchDecode(b, append([]byte{0x0a, 0x05}, make([]byte, 126)...), false)
}

// BenchmarkDecodeJSON: an application's JSON object costs a look at its
// first key.
func BenchmarkDecodeJSON(b *testing.B) {
	benchDecode(b, []byte(`{"title":"deploy started","severity":"info","thread_key":"web-v2","fields":[{"name":"service","value":"web"}]}`), false)
}

// BenchmarkDecodeEnvelope: go-micro's message of a 128-byte body with the
// headers go-micro's client sends.
func BenchmarkDecodeEnvelope(b *testing.B) {
	p, err := Encode(map[string]string{"Content-Type": "application/protobuf", "Micro-Topic": "bench.x",
		"Micro-Id": "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50"}, make([]byte, 128))
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, p, true)
}

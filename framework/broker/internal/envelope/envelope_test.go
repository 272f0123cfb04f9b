package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"
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

// reference is Decode as encoding/json does it (the package's code before
// it decoded by hand): the shape, then json.Unmarshal into a Message.
func reference(payload []byte) (map[string]string, []byte, bool) {
	if _, ok := shaped(payload); !ok {
		return nil, nil, false
	}
	var m Message
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, nil, false
	}
	if len(m.Header) == 0 {
		m.Header = nil
	}
	return m.Header, m.Body, true
}

// sameAsReference fails t unless Decode(payload) is what encoding/json
// makes of it: the same verdict, header and body (nil or not).
func sameAsReference(t *testing.T, payload []byte) {
	t.Helper()
	h, b, ok := Decode(payload)
	rh, rb, rok := reference(payload)
	if ok != rok || !maps.Equal(h, rh) || (h == nil) != (rh == nil) || !bytes.Equal(b, rb) || (b == nil) != (rb == nil) {
		t.Fatalf("Decode(%q) = %q %q (nil %v) %v; encoding/json: %q %q (nil %v) %v", payload, h, b, b == nil, ok, rh, rb, rb == nil, rok)
	}
}

// TestDecodeAsEncodingJSON: strings and bodies that are not plain, decoded
// as encoding/json decodes them, or refused where it refuses them.
func TestDecodeAsEncodingJSON(t *testing.T) {
	for _, tt := range []struct {
		name, payload string
		ok            bool
	}{
		{"short escapes", `{"Header":{"a\n":"\"\\\/\b\f\n\r\t"},"Body":null}`, true},
		{"HTML escapes", `{"Header":{"a":"\u003c\u003e\u0026"},"Body":null}`, true},
		{"upper-case hex", `{"Header":{"a":"\u00E9\u00e9"},"Body":null}`, true},
		{"U+2028", `{"Header":{"a":"\u2028\u2029"},"Body":null}`, true},
		{"surrogate pair", `{"Header":{"a":"\ud83d\ude00"},"Body":null}`, true},
		{"lone high surrogate", `{"Header":{"a":"\ud83dx"},"Body":null}`, true},
		{"high surrogate then an escape", `{"Header":{"a":"\ud83d\n"},"Body":null}`, true},
		{"high surrogate then a non-surrogate", `{"Header":{"a":"\ud83d\u0041"},"Body":null}`, true},
		{"lone low surrogate", `{"Header":{"a":"\ude00"},"Body":null}`, true},
		{"high surrogate at the end", `{"Header":{"a":"\ud83d"},"Body":null}`, true},
		{"invalid UTF-8", "{\"Header\":{\"a\xff\":\"b\xc3\xed\xa0\x80\"},\"Body\":null}", true},
		{"invalid UTF-8 and an escape", "{\"Header\":{\"a\":\"\xff\\n\"},\"Body\":null}", true},
		{"valid UTF-8", `{"Header":{"ünï":"cödé ✓"},"Body":null}`, true},
		{"a key twice in Header", `{"Header":{"a":"1","a":"2"},"Body":null}`, true},
		{"empty strings", `{"Header":{"":""},"Body":""}`, true},
		{"body with escaped CR LF", `{"Header":null,"Body":"aGk=\r\n"}`, true},
		{"body with escaped base64", `{"Header":null,"Body":"\u0061Gk\u003d"}`, true},
		{"body with escaped slash", `{"Header":null,"Body":"\/w=="}`, true},

		{"escaped quote", `{"Header":{"a":"\'"},"Body":null}`, false},
		{"unknown escape", `{"Header":{"a":"\x"},"Body":null}`, false},
		{"short \\u", `{"Header":{"a":"\u00"},"Body":null}`, false},
		{"\\u not hex", `{"Header":{"a":"\u00g0"},"Body":null}`, false},
		{"raw newline", "{\"Header\":{\"a\":\"\n\"},\"Body\":null}", false},
		{"raw tab in a key", "{\"Header\":{\"\t\":\"a\"},\"Body\":null}", false},
		{"raw newline in body", "{\"Header\":null,\"Body\":\"aGk=\n\"}", false},
		{"raw DEL is fine", "{\"Header\":{\"a\":\"\x7f\"},\"Body\":null}", true},
		{"body not padded", `{"Header":null,"Body":"aGk"}`, false},
		{"body URL alphabet", `{"Header":null,"Body":"-_8="}`, false},
		{"body with invalid UTF-8", "{\"Header\":null,\"Body\":\"aGk=\xff\"}", false},
		{"body with a bad escape", `{"Header":null,"Body":"aGk=\x"}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, ok := Decode([]byte(tt.payload)); ok != tt.ok {
				t.Errorf("Decode(%q): ok %v, want %v", tt.payload, ok, tt.ok)
			}
			sameAsReference(t, []byte(tt.payload))
		})
	}
}

// TestEncode: what go-micro's codec writes, byte for byte.
func TestEncode(t *testing.T) {
	var ctl strings.Builder
	for c := range 0x20 {
		ctl.WriteByte(byte(c))
	}
	for _, tt := range []struct {
		name   string
		header map[string]string
		body   []byte
		want   string // "" for json.Marshal's
	}{
		{"nil", nil, nil, `{"Header":null,"Body":null}`},
		{"empty", map[string]string{}, []byte{}, `{"Header":{},"Body":""}`},
		{"sorted, HTML", map[string]string{"b": "2", "a": "<1>"}, []byte("hi"), `{"Header":{"a":"\u003c1\u003e","b":"2"},"Body":"aGk="}`},
		{"control characters", map[string]string{ctl.String(): ctl.String()}, nil, ""},
		{"quotes, backslashes", map[string]string{`"\`: `\"`, "&": "'"}, nil, ""},
		{"U+2028, U+2029", map[string]string{"\u2028": "a\u2029b\u2027\u202a"}, nil, ""},
		{"invalid UTF-8", map[string]string{"\xff": "a\xc3b\xed\xa0\x80c\xf4\x90\x80\x80", "\xc3\xa9": "\xe2\x80"}, nil, ""},
		{"non-ASCII", map[string]string{"ü": "✓ 😀", "Ü": "é"}, []byte{0, 0xff, 0xfe}, ""},
		{"byte order of keys", map[string]string{"a": "", "B": "", "_": "", "é": "", "~": "", "": ""}, []byte("x"), ""},
		{"many headers", func() map[string]string {
			h := map[string]string{}
			for i := range 20 {
				h[fmt.Sprint(i)] = fmt.Sprint(i * i)
			}
			return h
		}(), make([]byte, 100), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(Message{Header: tt.header, Body: tt.body})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && string(want) != tt.want {
				t.Fatalf("the table is wrong: json.Marshal gives %s", want)
			}
			got := Encode(tt.header, tt.body)
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode(%q, %q) =\n%s\nwant\n%s", tt.header, tt.body, got, want)
			}
			if n := encodedLen(tt.header == nil, sortedPairs(nil, tt.header), tt.body); n != len(want) {
				t.Errorf("encodedLen = %d, want %d", n, len(want))
			}
			if got := AppendEncode([]byte("prefix"), tt.header, tt.body); string(got) != "prefix"+string(want) {
				t.Errorf("AppendEncode = %s", got)
			}
		})
	}
}

// FuzzEncode: Encode is json.Marshal of a Message, byte for byte, and
// Decode reads it back as encoding/json does.
func FuzzEncode(f *testing.F) {
	f.Add("Content-Type", "application/json", "Micro-Id", "1f0c", "", "", []byte(`{"a":1}`), false, false)
	f.Add("<a>", "&\u2028\u2029", "\x00\n\r\t\b\f\x1f", "\xff\xc3", "\"\\", "é", []byte{}, false, true)
	f.Add("", "", "", "", "", "", []byte(nil), true, true)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, body []byte, nilHeader, nilBody bool) {
		var h map[string]string
		if !nilHeader {
			h = map[string]string{k1: v1, k2: v2, k3: v3}
		}
		if nilBody {
			body = nil
		} else if body == nil {
			body = []byte{}
		}
		want, err := json.Marshal(Message{Header: h, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		got := AppendEncode(nil, h, body)
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendEncode(%q, %q) =\n%s\nwant\n%s", h, body, got, want)
		}
		if n := encodedLen(h == nil, sortedPairs(nil, h), body); n != len(want) {
			t.Errorf("encodedLen = %d, want %d", n, len(want))
		}
		sameAsReference(t, got)
		if _, _, ok := Decode(got); !ok {
			t.Fatalf("Decode refuses %s", got)
		}
	})
}

// FuzzDecode: Decode never panics and makes of any payload what
// encoding/json (go-micro's codec) makes of it, behind the same strict
// shape.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"Header":{"a":"b"},"Body":"aGk="}`))
	f.Add([]byte(`{"name":"x"}`))
	f.Add([]byte(` {"Body":null,"Header":null}`))
	f.Add([]byte(`{"Header":{"a\u00e9":"\ud83d\ude00\n"},"Body":"aG\r\nk="}`))
	f.Add([]byte("{\"Header\":{\"\xff\":\"\x01\"},\"Body\":\"\"}"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		sameAsReference(t, payload)
	})
}

// FuzzDecodeStrings: FuzzDecode with the fuzzer's bytes put as they are
// inside the strings of an envelope, where escapes and UTF-8 matter.
func FuzzDecodeStrings(f *testing.F) {
	f.Add("a", "b", "aGk=")
	f.Add(`\u00e9`, `\ud83d\ude00\ud83d`, `aG\r\nk=`)
	f.Add("\xff", "\xed\xa0\x80", `\u0061Gk=`)
	f.Add(`\'`, `\u12`, "aGk=\n")
	f.Fuzz(func(t *testing.T, k, v, body string) {
		sameAsReference(t, []byte(`{"Header":{"`+k+`":"`+v+`","x":"`+k+`"},"Body":"`+body+`"}`))
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

// TestPlain: plain's eight bytes at a time agree with a byte at a time,
// for every byte value at every place of a 16-byte string.
func TestPlain(t *testing.T) {
	naive := func(s string, html bool) int {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < ' ' || c >= utf8.RuneSelf || c == '"' || c == '\\' || html && (c == '<' || c == '>' || c == '&') {
				return i
			}
		}
		return len(s)
	}
	for c := range 256 {
		for at := range 16 {
			b := bytes.Repeat([]byte("a"), 16)
			b[at] = byte(c)
			for _, html := range []bool{false, true} {
				if got, want := plain(string(b), html), naive(string(b), html); got != want {
					t.Fatalf("plain(%q, %v) = %d, want %d", b, html, got, want)
				}
			}
		}
	}
}

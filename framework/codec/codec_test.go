package codec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/apipb"
)

type hello struct {
	Name string `json:"name"`
}

// wired is a hand-made protobuf message: field 1, string.
type wired struct{ S string }

func (w *wired) MarshalProto() ([]byte, error) {
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), w.S), nil
}

func (w *wired) UnmarshalProto(b []byte) error {
	_, _, n := protowire.ConsumeTag(b)
	s, m := protowire.ConsumeString(b[n:])
	if m < 0 {
		return protowire.ParseError(m)
	}
	w.S = s
	return nil
}

func TestFor(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", JSON},
		{"application/json", JSON},
		{"Application/JSON; charset=utf-8", JSON},
		{"application/protobuf", Protobuf},
		{"application/x-protobuf", Protobuf},
		{"application/octet-stream", Protobuf},
	}
	for _, tt := range tests {
		c, err := For(tt.in)
		if err != nil {
			t.Fatalf("For(%q): %v", tt.in, err)
		}
		if c.ContentType() != tt.want {
			t.Errorf("For(%q) = %s, want %s", tt.in, c.ContentType(), tt.want)
		}
	}
	_, err := For("text/plain")
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "application/json, application/protobuf") {
		t.Errorf("For(text/plain) error = %v, want ErrUnsupported listing the supported types", err)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		ct       string
		in, out  any
		wantWire string // for JSON; empty to skip
		check    func(out any) bool
	}{
		{"struct json", JSON, &hello{"John"}, new(hello), `{"name":"John"}`,
			func(o any) bool { return o.(*hello).Name == "John" }},
		{"no HTML escaping", JSON, &hello{"<a&b>"}, new(hello), `{"name":"<a&b>"}`,
			func(o any) bool { return o.(*hello).Name == "<a&b>" }},
		{"proto json", JSON, &apipb.Method{Name: "Hello", RequestStreaming: true}, new(apipb.Method), "",
			func(o any) bool { m := o.(*apipb.Method); return m.Name == "Hello" && m.RequestStreaming }},
		{"proto protobuf", Protobuf, &apipb.Method{Name: "Hello"}, new(apipb.Method), "",
			func(o any) bool { return o.(*apipb.Method).Name == "Hello" }},
		{"raw json", JSON, json.RawMessage(`{"name": "raw"}`), new(json.RawMessage), `{"name": "raw"}`,
			func(o any) bool { return string(*o.(*json.RawMessage)) == `{"name": "raw"}` }},
		{"raw json into struct", JSON, json.RawMessage(`{"name":"x"}`), new(hello), "",
			func(o any) bool { return o.(*hello).Name == "x" }},
		{"hand-made proto", Protobuf, &wired{"ok"}, new(wired), "",
			func(o any) bool { return o.(*wired).S == "ok" }},
		{"hand-made json", JSON, &wired{"ok"}, new(wired), `{"S":"ok"}`,
			func(o any) bool { return o.(*wired).S == "ok" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := For(tt.ct)
			if err != nil {
				t.Fatal(err)
			}
			b, err := c.Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if tt.wantWire != "" && string(b) != tt.wantWire {
				t.Errorf("wire = %s, want %s", b, tt.wantWire)
			}
			if err := c.Unmarshal(b, tt.out); err != nil {
				t.Fatalf("Unmarshal(%q): %v", b, err)
			}
			if !tt.check(tt.out) {
				t.Errorf("decoded %+v from %q", tt.out, b)
			}
		})
	}
}

func TestProtoJSONIsCanonical(t *testing.T) {
	b, err := jsonC{}.Marshal(&apipb.Method{Name: "Hello", RequestTypeUrl: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["name"] != "Hello" || m["requestTypeUrl"] != "x" {
		t.Errorf("protojson output %s, want lowerCamelCase JSON names", b)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"invalid raw json", func() error { _, err := jsonC{}.Marshal(json.RawMessage(`{"a":`)); return err }, "not valid"},
		{"protobuf of struct", func() error { _, err := protoC{}.Marshal(&hello{}); return err }, "want a proto.Message"},
		{"protobuf into struct", func() error { return protoC{}.Unmarshal(nil, &hello{}) }, "want a proto.Message"},
		{"bad json into struct", func() error { return jsonC{}.Unmarshal([]byte(`{"name":5}`), &hello{}) }, "cannot unmarshal"},
		{"bad json into proto", func() error { return jsonC{}.Unmarshal([]byte(`{"nope":1}`), &apipb.Method{}) }, "unknown field"},
		{"bad protobuf", func() error { return protoC{}.Unmarshal([]byte{0xff, 0xff}, &apipb.Method{}) }, "cannot parse"},
		{"invalid json into raw", func() error { return jsonC{}.Unmarshal([]byte(`{`), new(json.RawMessage)) }, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestEmptyBodyIsEmptyRequest(t *testing.T) {
	h := &hello{Name: "keep"}
	if err := (jsonC{}).Unmarshal(nil, h); err != nil || h.Name != "keep" {
		t.Errorf("Unmarshal(empty) = %v, %+v", err, h)
	}
	m := &apipb.Method{Name: "x"}
	if err := (jsonC{}).Unmarshal([]byte(" "), m); err != nil || !proto.Equal(m, &apipb.Method{}) {
		t.Errorf("Unmarshal(empty) into proto = %v, %v", err, m)
	}
}

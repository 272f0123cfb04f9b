// Package codec turns request and response values into bytes and back, one
// codec per Content-Type:
//
//   - application/json: protobuf messages through protojson (the canonical
//     proto3 JSON mapping), any other Go value through encoding/json
//     (without its HTML escaping: "<" stays "<").
//     A json.RawMessage (or *json.RawMessage) passes through unchanged, so a
//     caller can send and receive JSON it did not decode.
//   - application/protobuf: protobuf messages (proto.Message), and values that
//     encode themselves on the protobuf wire (see [ProtoMarshaler]).
//
// [For] finds the codec of a Content-Type header value in the table of
// codecs (the shape is package internal/plugin's; a new codec is one more
// line in it); parameters such as "; charset=utf-8" are ignored, and
// "application/x-protobuf" and "application/octet-stream" are accepted as
// aliases of application/protobuf.
//
// go-micro's old framings, application/proto-rpc and application/json-rpc
// (go-micro before v0.22), carry a protobuf or JSON message inside an
// envelope naming the method: For returns the protobuf or JSON codec of the
// message for them, and the transport adds and removes the envelope (see
// package framework/transport).
package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/internal/plugin"
)

// Content types of the codecs shipped here.
const (
	JSON     = "application/json"
	Protobuf = "application/protobuf"
	// ProtoRPC and JSONRPC are go-micro's old framings of a protobuf or
	// JSON message.
	ProtoRPC = "application/proto-rpc"
	JSONRPC  = "application/json-rpc"
)

// ErrUnsupported is returned (wrapped) by [For] for a Content-Type no codec
// handles, and by a codec for a value it cannot encode.
var ErrUnsupported = errors.New("unsupported")

// Codec encodes and decodes values for one Content-Type.
type Codec interface {
	// Marshal returns the encoding of v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, which must be a pointer (or a
	// proto.Message).
	Unmarshal(data []byte, v any) error
	// ContentType is the media type the codec speaks.
	ContentType() string
}

// ProtoMarshaler is implemented by values that are not generated protobuf
// messages but encode themselves on the protobuf wire (with package
// google.golang.org/protobuf/encoding/protowire), so they work with both
// codecs: JSON through encoding/json, protobuf through these methods.
type ProtoMarshaler interface {
	MarshalProto() ([]byte, error)
}

// ProtoUnmarshaler is the decoding half of [ProtoMarshaler].
type ProtoUnmarshaler interface {
	UnmarshalProto(data []byte) error
}

// codecs is the table of codecs, by the media type they speak. [For] picks
// from it; a new codec is one more line here.
var codecs = plugin.NewTable("codec", map[string]Codec{
	JSON:     jsonC{},
	Protobuf: protoC{},
})

// aliases are other names of the media types of codecs.
var aliases = map[string]string{
	"application/x-protobuf":   Protobuf,
	"application/octet-stream": Protobuf,
	// the message inside go-micro's old framings (the transport frames it)
	ProtoRPC: Protobuf,
	JSONRPC:  JSON,
}

// For returns the codec of a Content-Type header value. An empty value means
// application/json. An unknown one gives an error wrapping ErrUnsupported
// that lists the supported types.
func For(contentType string) (Codec, error) {
	if c, ok := codecs.Lookup(contentType); ok { // the exact values our client sends
		return c, nil
	}
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		mt = JSON
	}
	if a, ok := aliases[mt]; ok {
		mt = a
	}
	if c, ok := codecs.Lookup(mt); ok {
		return c, nil
	}
	return nil, fmt.Errorf("content type %q: %w (supported: %s)", contentType, ErrUnsupported, Supported())
}

// Supported returns the supported content types, comma-separated, for error
// messages and the registry's node metadata.
func Supported() string { return strings.Join(codecs.Names(), ", ") }

type jsonC struct{}

var (
	protojsonMarshal   = protojson.MarshalOptions{}
	protojsonUnmarshal = protojson.UnmarshalOptions{}
)

func (jsonC) ContentType() string { return JSON }

func (jsonC) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case json.RawMessage:
		return rawJSON(m)
	case *json.RawMessage:
		if m == nil {
			return []byte("null"), nil
		}
		return rawJSON(*m)
	case proto.Message:
		return protojsonMarshal.Marshal(m)
	}
	// Not json.Marshal: it writes <, > and & as \u003c... (for HTML), which
	// people reading answers in chat should not have to decode.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func rawJSON(m json.RawMessage) ([]byte, error) {
	if len(m) == 0 {
		return []byte("null"), nil
	}
	if !json.Valid(m) {
		return nil, fmt.Errorf("raw JSON is not valid: %.64q", m)
	}
	return m, nil
}

func (jsonC) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *json.RawMessage:
		if !json.Valid(data) {
			return fmt.Errorf("not valid JSON: %.64q", data)
		}
		*m = append((*m)[:0], data...)
		return nil
	case proto.Message:
		if len(bytes.TrimSpace(data)) == 0 {
			proto.Reset(m)
			return nil
		}
		return protojsonUnmarshal.Unmarshal(data, m)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil // an empty body is an empty request
	}
	return json.Unmarshal(data, v)
}

type protoC struct{}

func (protoC) ContentType() string { return Protobuf }

func (protoC) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case proto.Message:
		return proto.Marshal(m)
	case ProtoMarshaler:
		return m.MarshalProto()
	}
	return nil, fmt.Errorf("%s cannot encode %T: %w (want a proto.Message)", Protobuf, v, ErrUnsupported)
}

func (protoC) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case proto.Message:
		return proto.Unmarshal(data, m)
	case ProtoUnmarshaler:
		return m.UnmarshalProto(data)
	}
	return fmt.Errorf("%s cannot decode into %T: %w (want a proto.Message)", Protobuf, v, ErrUnsupported)
}

package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// HealthEndpoint is the endpoint every server answers with status "ok".
const HealthEndpoint = "Debug.Health"

// HealthRequest is the request of Debug.Health. It works with both codecs:
// in JSON it is {}, on the protobuf wire it is the empty message
// go.micro.debug.HealthRequest.
type HealthRequest struct{}

// MarshalProto encodes the empty message.
func (*HealthRequest) MarshalProto() ([]byte, error) { return nil, nil }

// UnmarshalProto accepts any well-formed message, ignoring its fields.
func (*HealthRequest) UnmarshalProto(b []byte) error { return walkFields(b, nil) }

// HealthResponse is the response of Debug.Health. In JSON it is
// {"status": "ok"}; on the protobuf wire it is go.micro.debug.HealthResponse
// (string status = 1), as the original go-micro sends it. Both encodings are
// written by hand, so no generated code is needed.
type HealthResponse struct {
	Status string `json:"status"`
}

// MarshalProto encodes r as go.micro.debug.HealthResponse.
func (r *HealthResponse) MarshalProto() ([]byte, error) {
	if r.Status == "" {
		return nil, nil
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendString(b, r.Status), nil
}

// UnmarshalProto decodes go.micro.debug.HealthResponse, skipping unknown
// fields.
func (r *HealthResponse) UnmarshalProto(b []byte) error {
	r.Status = ""
	return walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == 1 {
			if typ != protowire.BytesType {
				return fmt.Errorf("field status: wire type %d, want bytes", typ)
			}
			r.Status = string(v)
		}
		return nil
	})
}

// walkFields calls f for each field of the protobuf message b, with the
// field's value bytes (the content for length-delimited fields).
func walkFields(b []byte, f func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		v := b[:m]
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(v)
		}
		if f != nil {
			if err := f(num, typ, v); err != nil {
				return err
			}
		}
		b = b[m:]
	}
	return nil
}

// debugHandler serves the Debug.* endpoints every server has.
type debugHandler struct{}

// Health answers status "ok" while the server is serving.
func (*debugHandler) Health(ctx context.Context, req *HealthRequest, rsp *HealthResponse) error {
	rsp.Status = "ok"
	return nil
}

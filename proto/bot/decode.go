package bot

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/microbot/microbot/framework/broker"
)

// Kinds of message body, as [Decode] reads them.
const (
	// KindNotification: a Notification ([Decoded].Notification).
	KindNotification = "notification"
	// KindJSON: JSON that is neither a Notification nor a string.
	KindJSON = "json"
	// KindProtobuf: protobuf of a type not known here ([Decoded].Type
	// names it, when the message does).
	KindProtobuf = "protobuf"
	// KindText: text ([Decoded].Text): text/*, a body without a content
	// type that is not JSON, or a JSON string (its value).
	KindText = "text"
	// KindOther: anything else (binary, another content type).
	KindOther = "other"
	// KindUndecodable: a body that says it is a Notification and is not
	// ([Decoded].Err says why).
	KindUndecodable = "undecodable"
)

// Decoded is a published message's body as the bot reads it.
type Decoded struct {
	// Kind is one of the Kind constants.
	Kind string
	// Notification is the notification, for KindNotification.
	Notification *Notification
	// Text is the text, for KindText.
	Text string
	// MediaType is the Content-Type's media type in lower case, "" when
	// the message has none.
	MediaType string
	// Type is the protobuf type the message names (HeaderMessageType, or
	// the Content-Type parameter proto), "" when it names none.
	Type string
	// Err says why a KindUndecodable body does not decode.
	Err error
}

// Decode reads the body of a message published for the bot to show (an
// event of a watched topic, a line of a command's progress), by its
// headers (names in any case): a Notification when its type says so
// (HeaderMessageType, or the Content-Type parameter
// proto=go.micro.bot.Notification), as protobuf or JSON; then JSON (a
// Notification as [ParseNotification] reads it, a string, or any other
// JSON), protobuf of another type, text (text/*, or UTF-8 without a
// content type), and anything else. It never fails: what cannot be read
// is KindOther, or KindUndecodable for a Notification that is not one.
func Decode(header map[string]string, body []byte) Decoded {
	ct := broker.HeaderValue(header, "Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, params = strings.ToLower(strings.TrimSpace(ct)), nil
	}
	d := Decoded{MediaType: mt, Type: cmp.Or(broker.HeaderValue(header, HeaderMessageType), params["proto"])}
	isProto := mt == "application/protobuf" || mt == "application/x-protobuf" || mt == "application/octet-stream"
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if d.Type == NotificationType {
		n := &Notification{}
		var err error
		if isProto {
			err = proto.Unmarshal(body, n)
		} else {
			n, err = ParseNotification(body)
		}
		if err != nil {
			d.Kind, d.Err = KindUndecodable, err
			return d
		}
		d.Kind, d.Notification = KindNotification, n
		return d
	}
	switch {
	case isProto:
		d.Kind = KindProtobuf
	case (isJSON || mt == "") && json.Valid(body):
		var s string
		if n, err := ParseNotification(body); err == nil {
			d.Kind, d.Notification = KindNotification, n
		} else if bytes.HasPrefix(bytes.TrimSpace(body), []byte(`"`)) && json.Unmarshal(body, &s) == nil {
			d.Kind, d.Text = KindText, s
		} else {
			d.Kind = KindJSON
		}
	case (mt == "" || strings.HasPrefix(mt, "text/")) && utf8.Valid(body):
		d.Kind, d.Text = KindText, string(body)
	default:
		d.Kind = KindOther
	}
	return d
}

// ErrNotNotification is returned (wrapped) by ParseNotification for JSON
// that is not a Notification.
var ErrNotNotification = errors.New("not a notification")

// ParseNotification reads a Notification written as JSON: the proto3 JSON
// mapping (snake_case or camelCase names), with the severity by name in
// any case ("warning") or number. It is one when every field is one of
// Notification's and it has a title or a text; otherwise the error wraps
// ErrNotNotification and says why.
func ParseNotification(data []byte) (*Notification, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrNotNotification)
	}
	if raw, ok := m["severity"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			upper := strings.ToUpper(strings.TrimSpace(s))
			if _, known := Notification_Severity_value[upper]; !known {
				return nil, fmt.Errorf("%w: severity %q: want info, ok, warning, error or critical", ErrNotNotification, s)
			}
			m["severity"], _ = json.Marshal(upper)
			data, _ = json.Marshal(m)
		}
	}
	n := &Notification{}
	if err := protojson.Unmarshal(data, n); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotNotification, err)
	}
	if n.GetTitle() == "" && n.GetText() == "" {
		return nil, fmt.Errorf("%w: it has no title and no text", ErrNotNotification)
	}
	return n, nil
}

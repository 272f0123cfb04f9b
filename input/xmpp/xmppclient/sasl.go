package xmppclient

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xdg-go/scram"
)

// SASL mechanisms, in the order the client prefers them.
const (
	MechSCRAMSHA256 = "SCRAM-SHA-256"
	MechSCRAMSHA1   = "SCRAM-SHA-1"
	MechPlain       = "PLAIN"
)

// DefaultMechanisms returns the mechanisms a client uses unless told
// otherwise, strongest first, in a new slice. PLAIN is only ever used over
// TLS unless AllowPlain.
func DefaultMechanisms() []string { return []string{MechSCRAMSHA256, MechSCRAMSHA1, MechPlain} }

// ErrAuth is wrapped by every *AuthError: the server refused the
// credentials, or no mechanism both sides accept exists. Retrying with the
// same configuration cannot succeed.
var ErrAuth = errors.New("authentication failed")

// AuthError reports a failed SASL authentication.
type AuthError struct {
	// JID is the account that tried to log in.
	JID string
	// Mechanism is the SASL mechanism used, if any.
	Mechanism string
	// Condition is the server's SASL failure condition (RFC 6120 §6.5),
	// such as "not-authorized", or a description of a local failure.
	Condition string
	// Text is the server's optional explanation.
	Text string
}

// Error implements error; it never contains the password.
func (e *AuthError) Error() string {
	s := "xmpp: authentication failed for " + e.JID + ": " + e.Condition
	if e.Text != "" {
		s += " (" + e.Text + ")"
	}
	if e.Mechanism != "" {
		s += " [" + e.Mechanism + "]"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrAuth) true.
func (e *AuthError) Unwrap() error { return ErrAuth }

// mechanism is one side of a SASL exchange.
type mechanism interface {
	// start returns the initial response.
	start() ([]byte, error)
	// next answers a challenge, or checks the server's final data (on
	// success, with final set).
	next(challenge []byte, final bool) ([]byte, error)
	// verified reports whether the exchange authenticated the server too
	// (SCRAM checks the server's signature; PLAIN cannot).
	verified() bool
}

// chooseMechanism picks the first of prefs the server offers, refusing
// PLAIN without TLS unless allowPlain.
func chooseMechanism(prefs, offered []string, tls, allowPlain bool) (string, error) {
	for _, m := range prefs {
		if !slices.Contains(offered, m) {
			continue
		}
		if m == MechPlain && !tls && !allowPlain {
			continue
		}
		return m, nil
	}
	why := fmt.Sprintf("no usable SASL mechanism (server offers %v, client accepts %v", offered, prefs)
	if slices.Contains(offered, MechPlain) && !tls && !allowPlain {
		why += "; PLAIN refused without TLS"
	}
	return "", errors.New(why + ")")
}

func newMechanism(name, user, password string) (mechanism, error) {
	switch name {
	case MechPlain:
		return &plain{user: user, password: password}, nil
	case MechSCRAMSHA1, MechSCRAMSHA256:
		gen := scram.SHA1
		if name == MechSCRAMSHA256 {
			gen = scram.SHA256
		}
		c, err := gen.NewClient(user, password, "")
		if err != nil {
			return nil, fmt.Errorf("preparing %s credentials: %w", name, err)
		}
		return &scramMech{conv: c.NewConversation()}, nil
	}
	return nil, fmt.Errorf("unsupported SASL mechanism %q", name)
}

type plain struct{ user, password string }

func (p *plain) start() ([]byte, error) {
	return []byte("\x00" + p.user + "\x00" + p.password), nil
}

func (p *plain) next(challenge []byte, final bool) ([]byte, error) {
	if final && len(challenge) == 0 {
		return nil, nil
	}
	return nil, errors.New("unexpected PLAIN challenge")
}

func (p *plain) verified() bool { return true }

type scramMech struct{ conv *scram.ClientConversation }

func (s *scramMech) start() ([]byte, error) {
	r, err := s.conv.Step("")
	return []byte(r), err
}

func (s *scramMech) next(challenge []byte, final bool) ([]byte, error) {
	if final && s.conv.Done() {
		return nil, nil
	}
	r, err := s.conv.Step(string(challenge))
	return []byte(r), err
}

func (s *scramMech) verified() bool { return s.conv.Done() && s.conv.Valid() }

type saslAuth struct {
	XMLName   xml.Name `xml:"urn:ietf:params:xml:ns:xmpp-sasl auth"`
	Mechanism string   `xml:"mechanism,attr"`
	Data      string   `xml:",chardata"`
}

type saslResponse struct {
	XMLName xml.Name `xml:"urn:ietf:params:xml:ns:xmpp-sasl response"`
	Data    string   `xml:",chardata"`
}

// saslData encodes SASL bytes for the wire; "=" stands for empty data.
func saslData(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

func saslDecode(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "=" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// authenticate runs the SASL exchange on an open stream.
func (c *Client) authenticate(ctx context.Context, offered []string) error {
	name, err := chooseMechanism(c.cfg.mechanisms, offered, c.tls, c.cfg.allowPlain)
	if err != nil {
		return &AuthError{JID: c.user.String(), Condition: err.Error()}
	}
	fail := func(cond, text string) error {
		return &AuthError{JID: c.user.String(), Mechanism: name, Condition: cond, Text: text}
	}
	mech, err := newMechanism(name, c.user.Local, c.password)
	if err != nil {
		return fail(err.Error(), "")
	}
	first, err := mech.start()
	if err != nil {
		return fail(err.Error(), "")
	}
	if err := c.w.encode(ctx, saslAuth{Mechanism: name, Data: saslData(first)}); err != nil {
		return err
	}
	for {
		el, err := c.r.next()
		if err != nil {
			return err
		}
		if el.Name.Space != NSSASL {
			return fmt.Errorf("xmpp: unexpected <%s xmlns=%q> during authentication", el.Name.Local, el.Name.Space)
		}
		var raw Element
		if err := el.decode(&raw); err != nil {
			return fmt.Errorf("xmpp: malformed SASL %s: %w", el.Name.Local, err)
		}
		switch el.Name.Local {
		case "challenge":
			ch, err := saslDecode(raw.Text)
			if err != nil {
				return fail("malformed challenge", err.Error())
			}
			resp, err := mech.next(ch, false)
			if err != nil {
				return fail("rejected server challenge", err.Error())
			}
			if err := c.w.encode(ctx, saslResponse{Data: saslData(resp)}); err != nil {
				return err
			}
		case "success":
			data, err := saslDecode(raw.Text)
			if err != nil {
				return fail("malformed success data", err.Error())
			}
			if _, err := mech.next(data, true); err != nil {
				return fail("server signature invalid", err.Error())
			}
			if !mech.verified() {
				return fail("server did not prove it knows the credentials", "")
			}
			c.mech = name
			return nil
		case "failure":
			cond, text := condition(&raw, NSSASL)
			return fail(cond, text)
		default:
			return fmt.Errorf("xmpp: unexpected SASL element <%s>", el.Name.Local)
		}
	}
}

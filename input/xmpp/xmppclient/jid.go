package xmppclient

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// JID is an XMPP address (RFC 7622): local@domain/resource. The zero JID is
// empty and invalid.
type JID struct {
	// Local is the localpart: the account or room name ("bot" in
	// bot@example.org). It may be empty (a server or a service).
	Local string
	// Domain is the domainpart: the server or service ("example.org").
	Domain string
	// Resource is the resourcepart: a client connection of an account, or an
	// occupant's nick in a room. Empty in a bare JID.
	Resource string
}

// ErrInvalidJID is wrapped by ParseJID's errors.
var ErrInvalidJID = errors.New("invalid JID")

// maxPartLen is the largest size in bytes of each part of a JID (RFC 7622).
const maxPartLen = 1023

// ParseJID parses s into a JID. The localpart and domainpart are lower-cased
// (a simplified form of the PRECIS UsernameCaseMapped profile that gives the
// same result for the ASCII names servers hand out); the resource is kept as
// it is, since nicks are case-sensitive.
func ParseJID(s string) (JID, error) {
	if !utf8.ValidString(s) {
		return JID{}, fmt.Errorf("%w %q: not UTF-8", ErrInvalidJID, s)
	}
	var j JID
	rest := s
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		j.Resource = rest[i+1:]
		rest = rest[:i]
		if j.Resource == "" {
			return JID{}, fmt.Errorf("%w %q: empty resource after '/'", ErrInvalidJID, s)
		}
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		j.Local = rest[:i]
		rest = rest[i+1:]
		if j.Local == "" {
			return JID{}, fmt.Errorf("%w %q: empty localpart before '@'", ErrInvalidJID, s)
		}
	}
	j.Domain = strings.TrimSuffix(rest, ".")
	j.Local = strings.ToLower(j.Local)
	j.Domain = strings.ToLower(j.Domain)
	if err := j.validate(); err != nil {
		return JID{}, fmt.Errorf("%w %q: %v", ErrInvalidJID, s, err)
	}
	return j, nil
}

func (j JID) validate() error {
	switch {
	case j.Domain == "":
		return errors.New("empty domain")
	case len(j.Local) > maxPartLen, len(j.Domain) > maxPartLen, len(j.Resource) > maxPartLen:
		return fmt.Errorf("a part is longer than %d bytes", maxPartLen)
	case strings.ContainsAny(j.Local, "\"&'/:<>@"):
		return errors.New(`localpart contains one of "&'/:<>@`)
	case strings.ContainsAny(j.Domain, "@/"):
		return errors.New("domain contains '@' or '/'")
	}
	for _, part := range []string{j.Local, j.Domain} {
		for _, r := range part {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				return fmt.Errorf("space or control character %U", r)
			}
		}
	}
	for _, r := range j.Resource {
		if unicode.IsControl(r) {
			return fmt.Errorf("control character %U in resource", r)
		}
	}
	return nil
}

// Bare returns j without its resource.
func (j JID) Bare() JID { return JID{Local: j.Local, Domain: j.Domain} }

// WithResource returns j with its resource set to r.
func (j JID) WithResource(r string) JID { j.Resource = r; return j }

// IsZero reports whether j is the zero JID.
func (j JID) IsZero() bool { return j == JID{} }

// String formats j as local@domain/resource, leaving out empty parts.
func (j JID) String() string {
	var b strings.Builder
	b.Grow(len(j.Local) + len(j.Domain) + len(j.Resource) + 2)
	if j.Local != "" {
		b.WriteString(j.Local)
		b.WriteByte('@')
	}
	b.WriteString(j.Domain)
	if j.Resource != "" {
		b.WriteByte('/')
		b.WriteString(j.Resource)
	}
	return b.String()
}

package xmppclient

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// XML namespaces of the protocols this package speaks.
const (
	NSClient      = "jabber:client"
	NSStream      = "http://etherx.jabber.org/streams"
	NSStreams     = "urn:ietf:params:xml:ns:xmpp-streams"
	NSStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSTLS         = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL        = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind        = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession     = "urn:ietf:params:xml:ns:xmpp-session"
	NSPing        = "urn:xmpp:ping"                        // XEP-0199
	NSDelay       = "urn:xmpp:delay"                       // XEP-0203
	NSLegacyDelay = "jabber:x:delay"                       // XEP-0091, still sent by old rooms
	NSMUC         = "http://jabber.org/protocol/muc"       // XEP-0045
	NSMUCUser     = "http://jabber.org/protocol/muc#user"  // XEP-0045
	NSMUCOwner    = "http://jabber.org/protocol/muc#owner" // XEP-0045
	NSXData       = "jabber:x:data"                        // XEP-0004
)

// Stanza is one of *Message, *Presence and *IQ: the units of an XMPP stream.
//
// Every field of a stanza that is read from the network is a string (or a
// struct or slice of strings), so that no value a peer sends can make
// decoding fail half-way; parse what you need (ParseJID, strconv) afterwards.
// From and To are JIDs as text.
type Stanza interface {
	// Header returns the attributes every stanza has.
	Header() Header
}

// Header holds the attributes every stanza has: its ID (to match a
// response to its request), sender and recipient JIDs, type, and language.
type Header struct {
	ID, From, To, Type, Lang string
}

// Header implements Stanza.
func (m *Message) Header() Header { return Header{m.ID, m.From, m.To, m.Type, m.Lang} }

// Header implements Stanza.
func (p *Presence) Header() Header { return Header{p.ID, p.From, p.To, p.Type, p.Lang} }

// Header implements Stanza.
func (iq *IQ) Header() Header { return Header{iq.ID, iq.From, iq.To, iq.Type, iq.Lang} }

// Message types (RFC 6121 §5.2.2).
const (
	MessageChat      = "chat"
	MessageGroupchat = "groupchat"
	MessageNormal    = "normal"
	MessageHeadline  = "headline"
	MessageError     = "error"
)

// Message is a <message/> stanza.
type Message struct {
	XMLName xml.Name `xml:"jabber:client message"`
	ID      string   `xml:"id,attr,omitempty"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr,omitempty"`
	Type    string   `xml:"type,attr,omitempty"`
	Lang    string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Subject string   `xml:"subject,omitempty"`
	Body    string   `xml:"body,omitempty"`
	Thread  string   `xml:"thread,omitempty"`
	// Delay is set on a message the server stored and delivers late, such
	// as a room's history (XEP-0203).
	Delay *Delay `xml:"urn:xmpp:delay delay,omitempty"`
	// LegacyDelay is the older form of Delay (XEP-0091).
	LegacyDelay *Delay `xml:"jabber:x:delay x,omitempty"`
	// MUCUser is set on messages from rooms (XEP-0045), such as private
	// messages from an occupant and invitations.
	MUCUser *MUCUser     `xml:"http://jabber.org/protocol/muc#user x,omitempty"`
	Error   *StanzaError `xml:"error,omitempty"`
	// Extensions are the child elements this package does not model.
	Extensions []Element `xml:",any"`
}

// Delayed reports whether m is a late delivery (history or offline storage).
func (m *Message) Delayed() bool { return m.Delay != nil || m.LegacyDelay != nil }

// Presence types (RFC 6121 §4.7.1); the empty type means available.
const (
	PresenceAvailable    = ""
	PresenceUnavailable  = "unavailable"
	PresenceSubscribe    = "subscribe"
	PresenceSubscribed   = "subscribed"
	PresenceUnsubscribe  = "unsubscribe"
	PresenceUnsubscribed = "unsubscribed"
	PresenceProbe        = "probe"
	PresenceError        = "error"
)

// Presence is a <presence/> stanza.
type Presence struct {
	XMLName  xml.Name `xml:"jabber:client presence"`
	ID       string   `xml:"id,attr,omitempty"`
	From     string   `xml:"from,attr,omitempty"`
	To       string   `xml:"to,attr,omitempty"`
	Type     string   `xml:"type,attr,omitempty"`
	Lang     string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Show     string   `xml:"show,omitempty"`
	Status   string   `xml:"status,omitempty"`
	Priority string   `xml:"priority,omitempty"`
	// MUC is sent to join a room (XEP-0045 §7.2).
	MUC *MUC `xml:"http://jabber.org/protocol/muc x,omitempty"`
	// MUCUser is set on presence from a room's occupants (XEP-0045).
	MUCUser    *MUCUser     `xml:"http://jabber.org/protocol/muc#user x,omitempty"`
	Error      *StanzaError `xml:"error,omitempty"`
	Extensions []Element    `xml:",any"`
}

// IQ types (RFC 6120 §8.2.3).
const (
	IQGet    = "get"
	IQSet    = "set"
	IQResult = "result"
	IQError  = "error"
)

// IQ is an <iq/> stanza: a request (get, set) and its response (result,
// error), matched by ID.
type IQ struct {
	XMLName xml.Name `xml:"jabber:client iq"`
	ID      string   `xml:"id,attr,omitempty"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr,omitempty"`
	Type    string   `xml:"type,attr,omitempty"`
	Lang    string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	// Payload is the request or result's child element.
	Payload *Element     `xml:",any"`
	Error   *StanzaError `xml:"error,omitempty"`
}

// Delay is the XEP-0203 (or XEP-0091) delayed-delivery mark.
type Delay struct {
	From  string `xml:"from,attr,omitempty"`
	Stamp string `xml:"stamp,attr,omitempty"`
}

// MUC is the element of a presence that joins a room (XEP-0045 §7.2).
type MUC struct {
	History  *MUCHistory `xml:"history,omitempty"`
	Password string      `xml:"password,omitempty"`
}

// MUCHistory says how much of a room's history to send on joining; a
// MaxStanzas of "0" asks for none.
type MUCHistory struct {
	MaxChars   string `xml:"maxchars,attr,omitempty"`
	MaxStanzas string `xml:"maxstanzas,attr,omitempty"`
	Seconds    string `xml:"seconds,attr,omitempty"`
	Since      string `xml:"since,attr,omitempty"`
}

// MUCUser is the room information on an occupant's presence or a room's
// message (XEP-0045).
type MUCUser struct {
	Items    []MUCItem   `xml:"item"`
	Statuses []MUCStatus `xml:"status"`
}

// MUCItem describes an occupant. JID is its real JID, present only when the
// room reveals it to us (non-anonymous rooms, or we are a moderator).
type MUCItem struct {
	Affiliation string `xml:"affiliation,attr,omitempty"`
	Role        string `xml:"role,attr,omitempty"`
	JID         string `xml:"jid,attr,omitempty"`
	Nick        string `xml:"nick,attr,omitempty"`
	Reason      string `xml:"reason,omitempty"`
}

// MUCStatus is a room status code such as "110" (this presence is about
// you), "201" (room created) or "307" (kicked).
type MUCStatus struct {
	Code string `xml:"code,attr"`
}

// Room status codes (XEP-0045 §15.6) the bot reacts to.
const (
	StatusSelf        = "110"
	StatusCreated     = "201"
	StatusNickChanged = "210"
	StatusBanned      = "301"
	StatusNewNick     = "303"
	StatusKicked      = "307"
	// StatusAffiliation: removed because of an affiliation change.
	StatusAffiliation = "321"
	// StatusMembersOnly: removed because the room became members-only.
	StatusMembersOnly = "322"
)

// HasStatus reports whether u carries the status code.
func (u *MUCUser) HasStatus(code string) bool {
	if u == nil {
		return false
	}
	for _, s := range u.Statuses {
		if s.Code == code {
			return true
		}
	}
	return false
}

// Element is an XML element of any name, for payloads this package does not
// model. Its text is escaped when written like any other text: an Element
// can never inject markup.
type Element struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []Element  `xml:",any"`
	Text     string     `xml:",chardata"`
}

// Is reports whether e has the given namespace and local name.
func (e *Element) Is(space, local string) bool {
	return e != nil && e.XMLName.Space == space && e.XMLName.Local == local
}

// Child returns e's first child with the given name, or nil.
func (e *Element) Child(space, local string) *Element {
	if e == nil {
		return nil
	}
	for i := range e.Children {
		if e.Children[i].Is(space, local) {
			return &e.Children[i]
		}
	}
	return nil
}

// Attr returns the value of e's attribute local (without a namespace).
func (e *Element) Attr(local string) string {
	for _, a := range e.Attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Error types of a StanzaError (RFC 6120 §8.3.2).
const (
	ErrorAuth     = "auth"
	ErrorCancel   = "cancel"
	ErrorContinue = "continue"
	ErrorModify   = "modify"
	ErrorWait     = "wait"
)

// Stanza error conditions used by this package (RFC 6120 §8.3.3).
const (
	ConditionBadRequest         = "bad-request"
	ConditionConflict           = "conflict"
	ConditionServiceUnavailable = "service-unavailable"
	ConditionNotAllowed         = "not-allowed"
	ConditionForbidden          = "forbidden"
)

// StanzaError is the <error/> of a stanza of type "error". It is also the
// error SendIQ returns for an error response.
type StanzaError struct {
	// Type is one of auth, cancel, continue, modify, wait.
	Type string
	// By is the entity that reported the error, if it said.
	By string
	// Condition is the defined condition, such as "service-unavailable".
	Condition string
	// Text is an optional human-readable description.
	Text string
}

// Error implements error.
func (e *StanzaError) Error() string {
	s := "xmpp stanza error: " + e.Condition
	if e.Type != "" {
		s += " (" + e.Type + ")"
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// MarshalXML writes e as an RFC 6120 <error/> element.
func (e *StanzaError) MarshalXML(enc *xml.Encoder, start xml.StartElement) error {
	start.Name = xml.Name{Local: "error"}
	start.Attr = []xml.Attr{{Name: xml.Name{Local: "type"}, Value: e.Type}}
	if e.By != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "by"}, Value: e.By})
	}
	v := struct {
		Cond Element
		Text *Element
	}{Cond: Element{XMLName: xml.Name{Space: NSStanzas, Local: e.Condition}}}
	if e.Text != "" {
		v.Text = &Element{XMLName: xml.Name{Space: NSStanzas, Local: "text"}, Text: e.Text}
	}
	return enc.EncodeElement(v, start)
}

// UnmarshalXML reads an RFC 6120 <error/> element.
func (e *StanzaError) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var raw Element
	if err := d.DecodeElement(&raw, &start); err != nil {
		return err
	}
	e.Type = raw.Attr("type")
	e.By = raw.Attr("by")
	e.Condition, e.Text = condition(&raw, NSStanzas)
	return nil
}

// condition finds the defined condition and text among el's children in
// namespace ns, as stanza, stream and SASL errors carry them.
func condition(el *Element, ns string) (cond, text string) {
	for _, c := range el.Children {
		switch {
		case c.XMLName.Local == "text" && (c.XMLName.Space == ns || c.XMLName.Space == NSSASL):
			text = strings.TrimSpace(c.Text)
		case cond == "" && c.XMLName.Space == ns:
			cond = c.XMLName.Local
		}
	}
	if cond == "" {
		cond = "undefined-condition"
	}
	return cond, text
}

// ErrorReply builds the error response to req (its addresses swapped, same
// ID) with the given type and condition.
func ErrorReply(req Stanza, typ, cond string) Stanza {
	h := req.Header()
	se := &StanzaError{Type: typ, Condition: cond}
	switch req.(type) {
	case *Message:
		return &Message{ID: h.ID, From: h.To, To: h.From, Type: MessageError, Error: se}
	case *Presence:
		return &Presence{ID: h.ID, From: h.To, To: h.From, Type: PresenceError, Error: se}
	default:
		return &IQ{ID: h.ID, From: h.To, To: h.From, Type: IQError, Error: se}
	}
}

// describe summarises a stanza for logs (never with its body).
func describe(s Stanza) string {
	h := s.Header()
	kind := fmt.Sprintf("%T", s)
	return fmt.Sprintf("%s type=%q from=%q id=%q", strings.TrimPrefix(kind, "*xmppclient."), h.Type, h.From, h.ID)
}

// Package xmppclient is a small XMPP client (RFC 6120, RFC 6121) built on
// encoding/xml and crypto/tls, with SASL SCRAM from github.com/xdg-go/scram.
// It is what the bot's XMPP input speaks; it is kept apart from the input so
// that it can be read, tested and reused on its own.
//
// [Dial] connects (an SRV lookup of _xmpp-client._tcp, or a given
// host:port), secures the stream with STARTTLS or direct TLS (certificates
// verified), authenticates with SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN (PLAIN
// only over TLS unless explicitly allowed) and binds a resource. The
// resulting [Client] hands messages and presences to [Client.Recv], sends
// any [Stanza] with [Client.Send], tracks IQ requests with
// [Client.SendIQ], answers pings (XEP-0199) and every IQ request it does not
// understand (with service-unavailable) by itself, and pings the server when
// the stream is idle so that a dead connection is noticed within the
// keepalive interval plus timeout.
//
// Hostile input is bounded: each incoming stanza is limited in bytes,
// nesting depth and token count; DTDs, entity declarations, comments and
// processing instructions end the stream (XMPP's restricted XML); only the
// predefined entities exist, so entity expansion attacks are syntax errors.
// Every network operation has a deadline. Outgoing stanzas are written with
// the XML encoder, so user text is always escaped.
//
// A Client does not reconnect; its owner dials again (the bot's XMPP input
// does, with capped exponential backoff).
package xmppclient

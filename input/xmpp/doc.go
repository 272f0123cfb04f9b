// Package xmpp is the bot's XMPP input (--inputs=xmpp, and --inputs=hipchat
// with the account given the HipChat way): the bot logs in to an XMPP
// account, joins rooms (XEP-0045) and answers direct messages and, in rooms,
// the messages addressed to it ("microbot: list services", "microbot list
// services", "@microbot …", case-insensitive).
//
// It speaks XMPP through its own small client, package
// [github.com/microbot/microbot/input/xmpp/xmppclient].
//
// # Events
//
// A direct message (type chat or normal), and a private message from a room
// occupant, is always for the bot: Direct and Addressed are true, a leading
// nick is stripped, and the reply goes to the sender (type chat). UserID is
// the sender's bare JID.
//
// A room message (groupchat) is delivered with Addressed true, and the nick
// stripped from Text, when it starts with the bot's nick; otherwise it is
// delivered with Addressed false, and the bot ignores it. Room is the room's
// bare JID, and the reply goes to the room. UserID is the occupant's real
// bare JID when the room reveals it (a non-anonymous room, or the bot is a
// moderator), else the occupant's address in the room (room@service/nick).
// Nicks change hands, so access control by immutable user id needs
// non-anonymous rooms.
//
// Dropped: the bot's own messages reflected by rooms, room history and other
// late deliveries (XEP-0203 delay: the bot never runs a command someone
// typed while it was away), errors, headlines, empty bodies, and rooms it is
// not in.
//
// # Connection
//
// Rooms are joined with no history; when the nick is taken, the bot retries
// as nick_2, nick_3, …. Stream connects once and returns; from then on the
// connection reconnects by itself when the stream breaks or goes silent
// (keepalive pings), with capped exponential backoff and jitter, and joins
// every room again; Send waits for the connection meanwhile. So Recv only
// fails after Close or on an error retrying cannot fix (bad credentials, an
// untrusted certificate), which wraps [ErrPermanent] and has a method
// Permanent() bool returning true. Connected reports whether the input is
// connected right now.
//
// # Replies
//
// Replies are plain text (user text is always XML-escaped). A Code reply is
// wrapped in an XEP-0393 preformatted block (```), which clients that style
// messages show in monospace. Long replies are split at line boundaries into
// messages of at most [MaxBodySize] bytes.
//
// Posts (notifications, [Input.Post]) are plain text with a severity
// marker ("[WARNING] title", the text, a line per field, the link, the
// source), to a room of the input's or to a person, split the same way.
package xmpp

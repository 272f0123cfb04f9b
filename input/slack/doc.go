// Package slack is the Slack input of microbot: it listens over Socket Mode
// (an outbound WebSocket, so the bot needs no public URL) and answers with the
// Web API.
//
// It is the input "slack" (--inputs=slack). [New] takes a [Config]: the
// app-level xapp-… token that opens the socket, the xoxb-… bot token for the
// Web API, and the API URL (cmd/microbot fills it from --slack_app_token,
// --slack_bot_token and --slack_api_url).
//
// What reaches the bot: mentions of the app in channels (app_mention), every
// message of a direct conversation with the app (message events of
// channel_type im) and a slash command (its text). Messages of bots, the
// app's own messages, edits, deletions and other message subtypes are
// ignored. A Socket Mode envelope is acknowledged when its message is
// handed to the bot (Recv returns it), and one with nothing for the bot as
// soon as it arrives; so a message that arrives after the bot stopped
// reading (it is shutting down) is left unacknowledged and Slack delivers
// it again to the next connection instead of it being lost. A delivery
// Slack repeats (same event_id, or the same message) reaches the bot once. The text reaches the bot as the person typed it: the leading
// mention of the bot is removed and Slack's escapes, links and user or
// channel references are undone.
//
// Replies go to the thread of the message that asked (a channel mention
// starts one; a direct message is answered in the conversation, in a thread
// only when it was asked in one). A slash command is answered through its
// response_url as an "in_channel" response, so the channel sees the command
// and its answer, and the bot needs no membership of the channel; if the
// response_url fails (it expires after 30 minutes) the reply goes to the
// channel with chat.postMessage. Long replies are split at line boundaries
// with code fences kept balanced in every part, and a reply past 40 KB (or
// more parts than fit: 12, or 5 for a slash command) is uploaded as a text
// file instead. Rate limits (HTTP 429) are waited out as Slack asks, up to a
// bound; replies to one channel are delivered in the order Send was called.
//
// Posts (notifications, [Input.Post]) go to a channel on their own, as a
// message with an attachment: the severity as its colour, the fields side
// by side, the title linked; in the thread given, or at the top of the
// channel, where the message's ts can start a thread for the next posts.
// Their text is split like a reply's, and rate limits are waited out the
// same way, in the same order as the replies to the channel.
//
// Reconnection: a Conn is one Socket Mode connection. When it ends (Slack
// sends a "disconnect" envelope, the socket drops, or Slack stops pinging)
// Recv returns an error after the events already received, and the bot calls
// Stream again with its own backoff: that is the only backoff, socketmode's
// internal reconnect loop is stopped at its first attempt so two loops never
// stack up. Input.Connected reports whether the socket is up right now.
//
// Tokens are never logged nor put into errors. Every network call has a
// timeout.
package slack

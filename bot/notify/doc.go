// Package notify is the other half of chat-ops: systems telling people.
// Rooms watch broker topics, and the bot posts in them what services,
// scripts and alerting systems publish there.
//
// # Watches
//
// `watch [topic]` typed in a room (or a direct conversation) makes the
// room watch the topic; `unwatch [topic]` stops it; `watching` lists the
// room's topics and the state of their subscriptions. The access policy
// decides who may run them (package bot/access: by default watch, unwatch
// and publish are for admins, watching for everyone), as events can carry
// data a room should not see.
//
// Watches are kept in the registry's KV store ([Store], under [KeyPrefix]):
// next to the local registry's directory on one host, in Consul's KV
// store with --registry=consul. So they survive a restart of the bot, and
// every bot using the registry sees the same set: a [Notifier] follows the
// store with blocking reads and puts a change made by any of them in
// effect. Static routes (topic → rooms of named inputs) can also come
// from a file ([Routes], --notify_routes), read again by [Notifier.Reload]
// (SIGHUP in microbot); a file that does not load leaves the routes in
// effect, and says why in the log.
//
// # Subscriptions
//
// The notifier makes one broker subscription per topic, shared by every
// room that watches it (or that the routes send it to), and ends it when
// no room wants the topic any more. A subscription that fails (the broker
// is down) is tried again every few seconds. With [WithQueueGroup], the
// subscriptions of bots sharing the group name form a queue group: each
// event reaches one of the bots, which posts it in every room of its topic
// (bots that see the same watches: each event is posted once per room; for
// the notifications of one thread key to share a thread, they also share a
// [Threads] store, WithThreads). Instances of one bot run side by side for
// high availability (--ha) use [WithClaimer] instead: each receives every
// event and they claim each post, so one that dies loses none, and one
// standing by for an XMPP account keeps its rooms' events for a takeover.
//
// # Rendering
//
// An event is shown by what it is (proto/bot's Decode reads it; the
// progress of commands is read by the same), never failing:
//
//   - a proto/bot Notification, by its type (the message header
//     Micro-Message-Type: go.micro.bot.Notification, or the Content-Type
//     parameter proto=go.micro.bot.Notification), as protobuf or JSON; and
//     JSON whose fields are all Notification's with a title or a text
//     (proto/bot's ParseNotification): title, text, severity, fields, link,
//     source and time, each input rendering it its way (input.Poster); its
//     thread_key maps to a thread where the input has threads (Slack: the
//     ts of the first post with the key, remembered for the last
//     DefaultMaxThreads keys);
//   - a JSON string, as its text; any other JSON, indented and cut short;
//   - protobuf without a known type: its size and topic;
//   - text, cut short; anything else: its size, topic and content type.
//
// # Storms
//
// Each room gets at most one post per interval (WithInterval, 1s by
// default). At most a few events wait for their turn per room
// (WithRoomQueue); the ones arriving while the queue is full are folded: a
// summary "+N more on TOPIC" is posted once the queue is empty, or after
// every few posts while the storm lasts. Each broker subscription queues a
// bounded number of events (WithTopicQueue) and the broker drops and
// counts the rest; Slack's rate limits are waited out by the input as for
// replies, and events fold meanwhile. Every event is counted (WithHook):
// received, and in each room posted, folded, dropped or (WithClaimer)
// posted elsewhere. Nothing grows
// without bound: the queues, the folded counts (per room, per topic), the
// thread keys and the watches per room (MaxWatchesPerRoom) are bounded.
//
// # Publishing
//
// [Publish] (the bot's publish command, and `microbot publish TOPIC JSON`
// for scripts) publishes a JSON object on a topic: a Notification with the
// header that names it, any other JSON as it is.
package notify

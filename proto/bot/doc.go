// Package bot holds the contract of command services, generated from
// bot.proto: the messages (bot.pb.go, by protoc-gen-go) and the typed
// client and handler of service Command (bot.micro.go, by this
// repository's cmd/protoc-gen-micro); and the message systems publish to
// tell people something, [Notification] (notification.proto), which the
// bot posts in the rooms that watch the topic it is published on.
//
// A service registered under the bot's namespace, go.micro.bot.<name>,
// that serves Command becomes the chat command <name>. To write one,
// implement CommandHandler and serve it with RegisterCommandHandler; to call
// one, use NewCommandService. Calls are encoded as application/protobuf by
// default.
//
// The generated files are committed; `go generate ./proto/...` regenerates
// them (it needs protoc, see .ci/setup.d/protoc.sh), and the tests of
// cmd/protoc-gen-micro fail if they are stale.
package bot

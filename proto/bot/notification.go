package bot

// How a published message says its body is a [Notification]: the header
// HeaderMessageType set to NotificationType, or the Content-Type parameter
// proto=NotificationType ("application/protobuf; proto=go.micro.bot.Notification").
const (
	// HeaderMessageType is the message header naming the protobuf type of
	// a published message's body (its full name, as in the .proto).
	HeaderMessageType = "Micro-Message-Type"
	// NotificationType is the full name of Notification.
	NotificationType = "go.micro.bot.Notification"
)

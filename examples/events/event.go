// Package events is the event the example publisher and subscriber
// exchange (see their commands).
package events

// Topic is the example's default topic.
const Topic = "examples.events"

// Event is one published event, in JSON.
type Event struct {
	Seq  int    `json:"seq"`
	Text string `json:"text"`
	From string `json:"from"`
}

package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/client"
)

// Claimer records, for every instance of a bot, that something was done,
// once: Claim reports whether this was the first claim of any of keys.
// cmd/microbot implements it with Consul (--ha).
type Claimer interface {
	Claim(ctx context.Context, keys []string) (bool, error)
}

// Standby is implemented by posters that one instance of the bot at a time
// may post through (an XMPP account under --ha): Active reports whether
// this instance can post through it now.
type Standby interface {
	Active() bool
}

// Defaults of the posting of instances side by side (WithClaimer).
const (
	// DefaultHold is how long a room of an input this instance stands by
	// for keeps the events it received: if it takes the input over within
	// that time, it posts those the instance that had it did not.
	DefaultHold = time.Minute
	// DefaultHoldQueue is how many events such a room keeps at most (the
	// latest).
	DefaultHoldQueue = 100
	// holdPoll is how often a room held for an input stood by for looks
	// whether this instance took it over.
	holdPoll = 250 * time.Millisecond
)

// OutcomeElsewhere is the outcome of an event another instance of the bot
// posted in the room (WithClaimer), or was there to post while this one
// stood by for the room's input.
const OutcomeElsewhere = "elsewhere"

// WithClaimer makes the notifier one of several instances of a bot that
// each receive every event (no queue group) and post each once per room
// between them: before it posts an event in a room, an instance claims it
// (by the event's id, Micro-Id, or a digest of the event, and the room)
// and posts it only if it was the first; the other instances count it
// OutcomeElsewhere. As every instance has every event, one that dies with
// events waiting loses none: the others post them. Each instance keeps
// its own pace; after an event another instance claimed, it waits as if
// it had posted it, so a room gets about one post per interval in all.
// The summaries of folded events are claimed too (by the first event
// folded).
//
// For a poster that is a Standby and not Active, each room keeps the
// events it gets instead (at most DefaultHoldQueue, for DefaultHold:
// WithHoldQueue, WithHold); once it is Active, those not posted elsewhere
// are posted, one per interval, not folded. So a takeover (an XMPP
// account taken over after its instance died) loses none of the events
// received meanwhile, within those bounds.
func WithClaimer(c Claimer) Option { return func(o *options) { o.claimer = c } }

// WithHold sets how long a room of an input this instance stands by for
// keeps its events (default DefaultHold).
func WithHold(d time.Duration) Option { return func(o *options) { o.hold = d } }

// WithHoldQueue sets how many events such a room keeps at most (default
// DefaultHoldQueue).
func WithHoldQueue(n int) Option { return func(o *options) { o.holdQueue = n } }

// eventKeys identifies the events a notifier receives, the same way in
// every instance that receives them: by the publisher's message id
// (Micro-Id, which framework/client and go-micro's clients set), or else
// by a digest of the topic, headers and body and how many times this
// instance saw it within the digest's window (so two identical events are
// two keys, and the instances, receiving the same events in the same
// order, count alike).
type eventKeys struct {
	mu     sync.Mutex
	window int64          // unix 10-minute window of seen
	seen   map[string]int // digest -> times seen in the window
}

// maxSeen bounds the digests eventKeys remembers within a window.
const maxSeen = 100000

// key returns the key of e.
func (k *eventKeys) key(e *broker.Event) string {
	for name, v := range e.Header {
		if v != "" && (name == client.HeaderID || len(name) == len(client.HeaderID) && equalFold(name, client.HeaderID)) {
			return "id:" + e.Topic + ":" + v
		}
	}
	h := sha256.New()
	h.Write([]byte(e.Topic))
	h.Write([]byte{0})
	names := make([]string, 0, len(e.Header))
	for name := range e.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		h.Write([]byte(name + "\x00" + e.Header[name] + "\x00"))
	}
	h.Write(e.Body)
	digest := hex.EncodeToString(h.Sum(nil)[:16])
	window := time.Now().Unix() / 600
	k.mu.Lock()
	defer k.mu.Unlock()
	if window != k.window || len(k.seen) >= maxSeen {
		k.window, k.seen = window, map[string]int{}
	}
	k.seen[digest]++
	return "sum:" + digest + ":" + strconv.FormatInt(window, 10) + "." + strconv.Itoa(k.seen[digest])
}

// equalFold compares ASCII header names without case.
func equalFold(a, b string) bool {
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// standing reports whether this instance stands by for place's input (its
// poster is a Standby, not Active now).
func (n *Notifier) standing(place Place) bool {
	s, ok := n.posters[place.Input].(Standby)
	return ok && !s.Active()
}

// claim claims the post of key in place among the instances: true if this
// instance is to post it (it claimed it first, or there is no claimer, or
// the claimer failed: a post twice is better than none). A claim under
// way when the notifier stops is finished (and its post made), as a post
// under way is: cut short, it could be made in Consul and not known here,
// and then nobody would post.
func (n *Notifier) claim(ctx context.Context, place Place, key string) bool {
	if n.o.claimer == nil || key == "" {
		return true
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	ok, err := n.o.claimer.Claim(ctx, []string{"notify:" + place.String() + ":" + key})
	if err != nil {
		n.logs.warn(n.o.log, "claim", "claiming a post among the instances failed; posting here (another instance may too)", "room", place.String(), "err", err)
		return true
	}
	return ok
}

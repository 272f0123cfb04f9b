package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/registry"
)

// KeyPrefix is where the watches are kept in the registry's KV store, one
// key per watch: KeyPrefix + topic + "/" + input + "/" + room, each part
// path-escaped (a room may hold a '/'), the value the Watch as JSON. It
// is under the prefix "microbot/" that docs/consul.md grants microbot's
// ACL token.
const KeyPrefix = "microbot/watches/"

// MaxWatchesPerRoom bounds the topics one room may watch.
const MaxWatchesPerRoom = 50

// ErrTooMany is returned (wrapped) by Store.Add when the room already
// watches MaxWatchesPerRoom topics.
var ErrTooMany = errors.New("too many watches")

// Place is a room of an input: where posts go.
type Place struct {
	// Input is the input's name as its events say it ("slack", "xmpp",
	// "shell").
	Input string `json:"input"`
	// Room is the room as the input's events name it (Event.Room).
	Room string `json:"room"`
}

// String writes the place as policies and routes files do: "slack:C0123".
func (p Place) String() string { return p.Input + ":" + p.Room }

// ParsePlace reads "input:room".
func ParsePlace(s string) (Place, error) {
	in, room, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || in == "" || room == "" {
		return Place{}, fmt.Errorf("room %q: want input:room, such as slack:C0123ABCD, xmpp:ops@conference.example.org or shell:console", s)
	}
	return Place{Input: strings.ToLower(in), Room: room}, nil
}

// Watch is a room's watch of a topic.
type Watch struct {
	Topic string `json:"topic"`
	Place
	// By is who asked for it, "input:user-id".
	By string `json:"by,omitempty"`
	// Since is when.
	Since time.Time `json:"since"`
}

// key is the watch's key in the KV store.
func key(topic string, p Place) string {
	return KeyPrefix + url.PathEscape(topic) + "/" + url.PathEscape(p.Input) + "/" + url.PathEscape(p.Room)
}

// Store keeps the watches in a registry's KV store (see KeyPrefix), so
// they survive a restart and every bot using the registry sees the same
// set.
type Store struct {
	kv  registry.KV
	log *slog.Logger
}

// NewStore returns the store of the watches in kv; log gets the warnings
// about entries that do not decode (nil: slog.Default()).
func NewStore(kv registry.KV, log *slog.Logger) *Store {
	if log == nil {
		log = slog.Default()
	}
	return &Store{kv: kv, log: log}
}

// List returns every watch and the index of what it read; given an
// earlier index, it first waits for a change (see registry.KV.List).
// Entries that do not decode are logged and left out.
func (s *Store) List(ctx context.Context, index uint64) ([]Watch, uint64, error) {
	pairs, idx, err := s.kv.List(ctx, KeyPrefix, index)
	if err != nil {
		return nil, 0, fmt.Errorf("listing the watches: %w", err)
	}
	out := make([]Watch, 0, len(pairs))
	for _, p := range pairs {
		var w Watch
		if err := json.Unmarshal(p.Value, &w); err != nil || w.Topic == "" || w.Input == "" || w.Room == "" || key(w.Topic, w.Place) != p.Key {
			s.log.Warn("a stored watch does not decode; ignored", "key", p.Key, "err", err)
			continue
		}
		out = append(out, w)
	}
	return out, idx, nil
}

// Of returns the watches of place.
func (s *Store) Of(ctx context.Context, place Place) ([]Watch, error) {
	all, _, err := s.List(ctx, 0)
	if err != nil {
		return nil, err
	}
	var out []Watch
	for _, w := range all {
		if w.Place == place {
			out = append(out, w)
		}
	}
	return out, nil
}

// Add stores w, unless its room watches the topic already (added false)
// or MaxWatchesPerRoom topics (an error wrapping ErrTooMany). The topic
// must be valid (broker.ValidateTopic).
func (s *Store) Add(ctx context.Context, w Watch) (added bool, err error) {
	if err := broker.ValidateTopic(w.Topic); err != nil {
		return false, err
	}
	if w.Input == "" || w.Room == "" {
		return false, fmt.Errorf("watch of %s: no room", w.Topic)
	}
	have, err := s.Of(ctx, w.Place)
	if err != nil {
		return false, err
	}
	for _, h := range have {
		if h.Topic == w.Topic {
			return false, nil
		}
	}
	if len(have) >= MaxWatchesPerRoom {
		return false, fmt.Errorf("%w: this room watches %d topics already, the most it may", ErrTooMany, len(have))
	}
	b, err := json.Marshal(w)
	if err != nil {
		return false, err
	}
	if err := s.kv.Put(ctx, key(w.Topic, w.Place), b); err != nil {
		return false, fmt.Errorf("storing the watch of %s: %w", w.Topic, err)
	}
	return true, nil
}

// Remove deletes place's watch of topic; removed is false if there was
// none.
func (s *Store) Remove(ctx context.Context, topic string, place Place) (removed bool, err error) {
	have, err := s.Of(ctx, place)
	if err != nil {
		return false, err
	}
	for _, h := range have {
		if h.Topic == topic {
			if err := s.kv.Delete(ctx, key(topic, place)); err != nil {
				return false, fmt.Errorf("removing the watch of %s: %w", topic, err)
			}
			return true, nil
		}
	}
	return false, nil
}

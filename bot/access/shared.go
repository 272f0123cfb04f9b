package access

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/microbot/microbot/command"
	"github.com/microbot/microbot/input"
)

// SharedStore is where the instances of a bot that run side by side keep
// the commands waiting for a confirmation, so that a code one instance gave
// can be confirmed on another: a small key-value store with versions for
// compare-and-delete. cmd/microbot gives one on Consul's KV store.
type SharedStore interface {
	// Create stores value under key if there is no such key; false if
	// there is.
	Create(ctx context.Context, key string, value []byte) (bool, error)
	// Get returns the value under key and its version, or nil and 0 if
	// there is none.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Range calls f with every key, value and version until f returns
	// false.
	Range(ctx context.Context, f func(key string, value []byte, version uint64) bool) error
	// Delete removes key if its version is still version; false if it
	// changed or is gone.
	Delete(ctx context.Context, key string, version uint64) (bool, error)
}

// WithSharedStore keeps the confirmations waiting in s, shared by the
// instances of the bot, instead of in this process's memory. The bounds
// are the same (16 waiting per person, 10,000 in all, expired codes
// remembered 10 minutes), enforced by whichever instance adds a code.
func WithSharedStore(s SharedStore) Option { return func(g *Guard) { g.pend = &sharedStore{s: s} } }

// sharedStore keeps confirmations in a SharedStore, one JSON value per code.
type sharedStore struct{ s SharedStore }

// stored is a pending confirmation as a SharedStore keeps it.
type stored struct {
	Event     *input.Event `json:"event"`
	Command   string       `json:"command"`
	Service   string       `json:"service,omitempty"` // the command's service, for a command service
	Args      string       `json:"args,omitempty"`
	Requester Caller       `json:"requester"`
	UserName  string       `json:"user_name,omitempty"`
	Mode      ConfirmMode  `json:"mode"`
	Target    string       `json:"target,omitempty"`
	Rule      string       `json:"rule,omitempty"`
	Created   time.Time    `json:"created"`
	Expires   time.Time    `json:"expires"`
}

func encodePending(p *pending) ([]byte, error) {
	st := stored{Event: p.req.Event, Args: p.args, Requester: p.requester, UserName: p.userName, Mode: p.mode,
		Target: p.decision.Target, Rule: p.decision.Rule, Created: p.created, Expires: p.expires}
	if c := p.req.Command; c != nil {
		st.Command, st.Service = c.Name, c.Metadata[command.MetaService]
	}
	return json.Marshal(st)
}

// decodePending is a pending confirmation read back: its request holds the
// event and a command naming the one matched (the guard matches the text
// again when it is confirmed).
func decodePending(code string, data []byte) (*pending, error) {
	var st stored
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("confirmation %s: %w", code, err)
	}
	if st.Event == nil || st.Command == "" {
		return nil, fmt.Errorf("confirmation %s: no event or command", code)
	}
	cmd := &command.Command{Name: st.Command}
	if st.Service != "" {
		cmd.Metadata = map[string]string{command.MetaService: st.Service}
	}
	return &pending{code: code, req: &command.Request{Event: st.Event, Command: cmd, Text: st.Event.Text}, args: st.Args,
		requester: st.Requester, userName: st.UserName, mode: st.Mode,
		decision: Decision{Target: st.Target, Rule: st.Rule, Confirm: st.Mode}, created: st.Created, expires: st.Expires}, nil
}

// entry is a stored confirmation with what sweeping needs.
type entry struct {
	code      string
	version   uint64
	requester string
	created   time.Time
	expires   time.Time
}

// add forgets what expired long ago, keeps the bounds (dropping the
// oldest), then stores p under a new code.
func (ss *sharedStore) add(ctx context.Context, p *pending) (string, error) {
	value, err := encodePending(p)
	if err != nil {
		return "", err
	}
	var all []entry
	var bad []entry
	err = ss.s.Range(ctx, func(code string, data []byte, version uint64) bool {
		q, err := decodePending(code, data)
		if err != nil {
			bad = append(bad, entry{code: code, version: version})
			return true
		}
		all = append(all, entry{code: code, version: version, requester: q.requester.ID(), created: q.created, expires: q.expires})
		return true
	})
	if err != nil {
		return "", err
	}
	drop := bad
	all = slices.DeleteFunc(all, func(e entry) bool {
		if p.created.After(e.expires.Add(expiredKept)) {
			drop = append(drop, e)
			return true
		}
		return false
	})
	slices.SortFunc(all, func(a, b entry) int { return a.created.Compare(b.created) })
	var mine []entry
	for _, e := range all {
		if e.requester == p.requester.ID() {
			mine = append(mine, e)
		}
	}
	for len(mine) >= maxPendingPerUser {
		drop = append(drop, mine[0])
		all = slices.DeleteFunc(all, func(e entry) bool { return e.code == mine[0].code })
		mine = mine[1:]
	}
	for len(all) >= maxPending {
		drop = append(drop, all[0])
		all = all[1:]
	}
	for _, e := range drop {
		// Another instance may have taken or dropped it meanwhile: the
		// version check makes that harmless.
		if _, err := ss.s.Delete(ctx, e.code, e.version); err != nil {
			return "", err
		}
	}
	for range 10 {
		code, err := newCode()
		if err != nil {
			return "", err
		}
		ok, err := ss.s.Create(ctx, code, value)
		if err != nil {
			return "", err
		}
		if ok {
			p.code = code
			return code, nil
		}
	}
	return "", fmt.Errorf("no free confirmation code") // 10 collisions in a row: never
}

// take reads code, applies the verdict, and forgets a code taken or
// expired; of two instances taking one code at once, one wins (the other
// finds it unknown).
func (ss *sharedStore) take(ctx context.Context, code string, who Caller, now time.Time, judge judgeFunc) (*pending, confirmResult, error) {
	code = normalCode(code)
	if len(code) != CodeLen || !isCode(code) {
		return nil, confirmUnknown, nil // never a key of the store
	}
	data, version, err := ss.s.Get(ctx, code)
	if err != nil {
		return nil, confirmUnknown, err
	}
	if data == nil {
		return nil, confirmUnknown, nil
	}
	p, err := decodePending(code, data)
	if err != nil {
		return nil, confirmUnknown, err
	}
	if p.requester.place() != who.place() {
		return nil, confirmUnknown, nil
	}
	if now.After(p.expires.Add(expiredKept)) {
		_, _ = ss.s.Delete(ctx, code, version)
		return nil, confirmUnknown, nil
	}
	res := verdict(p, who, now, judge)
	if res == confirmOK || res == confirmExpired {
		ok, err := ss.s.Delete(ctx, code, version)
		if err != nil {
			return nil, confirmUnknown, err
		}
		if !ok {
			return nil, confirmUnknown, nil // taken meanwhile, elsewhere
		}
	}
	return p, res, nil
}

// isCode reports whether s is made of the code alphabet only.
func isCode(s string) bool {
	for _, r := range s {
		if r > 127 || !slices.Contains([]byte(codeAlphabet), byte(r)) {
			return false
		}
	}
	return true
}

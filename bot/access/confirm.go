package access

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/microbot/microbot/command"
)

// Confirmation codes: CodeLen characters from an alphabet without the look-
// alikes (0/o, 1/l/i), drawn with crypto/rand: 31^6, about 887 million.
const (
	CodeLen      = 6
	codeAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"
)

// Bounds on the confirmations waiting, so nobody can fill the memory.
const (
	maxPendingPerUser = 16
	maxPending        = 10000
	// expiredKept is how long an expired code is remembered after it
	// expired, so a late "confirm" hears "expired" rather than "unknown".
	expiredKept = 10 * time.Minute
)

// pending is a command waiting for its confirmation.
type pending struct {
	code      string
	req       *command.Request
	args      string // the text after the command's words, for the audit log
	requester Caller
	userName  string
	mode      ConfirmMode
	decision  Decision
	created   time.Time
	expires   time.Time
}

// judgeFunc says what confirmation a command waiting needs now (the policy
// or the command may have changed since it was asked for) and whether who
// confirms may run it.
type judgeFunc func(*pending) (mode ConfirmMode, whoMay bool)

// confirmStore keeps the commands waiting for a confirmation: in memory
// (confirmations), or shared by the instances of the bot (sharedStore).
type confirmStore interface {
	// add stores p under a new code and returns the code.
	add(ctx context.Context, p *pending) (string, error)
	// take looks up code for who, at now: see confirmations.take.
	take(ctx context.Context, code string, who Caller, now time.Time, judge judgeFunc) (*pending, confirmResult, error)
}

// verdict says what a "confirm" by who does to p at now: codes are
// single-use (a confirmation taken or expired is forgotten, by the caller);
// a refused one stays for its rightful confirmer, so nobody can burn
// someone else's code. The strongest of the confirmation asked for and
// the one judge says the command needs now applies.
func verdict(p *pending, who Caller, now time.Time, judge judgeFunc) confirmResult {
	if now.After(p.expires) {
		return confirmExpired
	}
	mode, whoMay := judge(p)
	mode = max(p.mode, mode)
	self := p.requester.ID() != "" && p.requester.ID() == who.ID()
	switch {
	case mode == ConfirmTwoPerson && self:
		return confirmNotSelf
	case mode != ConfirmTwoPerson && !self:
		return confirmNotYours
	case !self && !whoMay:
		return confirmNotAllowed
	}
	return confirmOK
}

// confirmResult says what became of a "confirm CODE".
type confirmResult int

const (
	confirmOK         confirmResult = iota // taken: run it
	confirmUnknown                         // no such code here
	confirmExpired                         // too late (now forgotten)
	confirmNotYours                        // only the requester may confirm
	confirmNotSelf                         // two-person: the requester may not
	confirmNotAllowed                      // two-person: who may not run it here
)

// confirmations holds the commands waiting for a confirmation.
type confirmations struct {
	mu     sync.Mutex
	byCode map[string]*pending
}

func newConfirmations() *confirmations {
	return &confirmations{byCode: map[string]*pending{}}
}

// add stores p under a new code and returns the code.
func (cs *confirmations) add(_ context.Context, p *pending) (string, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.sweep(p.created)
	// Bound the codes of one requester, then of everyone: drop the oldest.
	var mine []*pending
	for _, q := range cs.byCode {
		if q.requester.ID() == p.requester.ID() {
			mine = append(mine, q)
		}
	}
	for len(mine) >= maxPendingPerUser {
		cs.dropOldest(mine)
		mine = mine[1:]
	}
	for len(cs.byCode) >= maxPending {
		all := make([]*pending, 0, len(cs.byCode))
		for _, q := range cs.byCode {
			all = append(all, q)
		}
		cs.dropOldest(all)
	}
	for range 10 {
		code, err := newCode()
		if err != nil {
			return "", err
		}
		if _, taken := cs.byCode[code]; !taken {
			p.code = code
			cs.byCode[code] = p
			return code, nil
		}
	}
	return "", fmt.Errorf("no free confirmation code") // 10 collisions in a row: never
}

// dropOldest removes the oldest of ps from the store and sorts ps oldest
// first.
func (cs *confirmations) dropOldest(ps []*pending) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].created.Before(ps[j-1].created); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	if len(ps) > 0 {
		delete(cs.byCode, ps[0].code)
	}
}

// sweep forgets codes that expired more than expiredKept ago.
func (cs *confirmations) sweep(now time.Time) {
	for code, p := range cs.byCode {
		if now.After(p.expires.Add(expiredKept)) {
			delete(cs.byCode, code)
		}
	}
}

// take looks up code for who, in who's place, and applies the verdict:
// a confirmation taken (OK) or expired is forgotten. judge runs under the
// store's lock.
func (cs *confirmations) take(_ context.Context, code string, who Caller, now time.Time, judge judgeFunc) (*pending, confirmResult, error) {
	code = normalCode(code)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.sweep(now)
	p, ok := cs.byCode[code]
	if !ok || p.requester.place() != who.place() {
		// A code of another room is unknown here: nothing is told about it.
		return nil, confirmUnknown, nil
	}
	res := verdict(p, who, now, judge)
	if res == confirmOK || res == confirmExpired {
		delete(cs.byCode, code)
	}
	return p, res, nil
}

// normalCode is a code as typed, as stored.
func normalCode(code string) string { return strings.ToLower(strings.TrimSpace(code)) }

// len returns how many confirmations are stored.
func (cs *confirmations) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.byCode)
}

// newCode returns a random code.
func newCode() (string, error) {
	var b strings.Builder
	n := big.NewInt(int64(len(codeAlphabet)))
	for range CodeLen {
		i, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", fmt.Errorf("confirmation code: %w", err)
		}
		b.WriteByte(codeAlphabet[i.Int64()])
	}
	return b.String(), nil
}

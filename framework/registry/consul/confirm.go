package consul

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/internal/backoff"
)

// Confirming that a registration reached the catalog: see "Registrations
// the agent could not sync" in the package documentation. In Consul 1.20
// the agent's anti-entropy (agent/ae/ae.go, agent/local/state.go) tries to
// sync a registration once, right away; when that fails, only its next
// full sync (every 1-2 minutes, or 15-30 s after a failed full sync) tries
// again. Passing an unchanged TTL check triggers nothing; registering the
// service again triggers a sync at once.
const (
	// confirmMin and confirmMax bound the backoff between two checks of
	// the catalog (each one a blocking query waiting that long for the
	// instance to appear) and so between two registrations again.
	confirmMin = 500 * time.Millisecond
	confirmMax = 2 * time.Second
	// confirmFor bounds a confirmation: past it the instance is left to
	// the agent's anti-entropy and to the service's next registrations. It
	// covers an election (10-25 s) and the agent's retry after a failed
	// full sync (15-30 s).
	confirmFor = 2 * time.Minute
)

// confirmation is a running confirmation of one node's registration.
type confirmation struct {
	stop context.CancelFunc
	done chan struct{}
}

// confirm starts confirming that reg, just registered in full through the
// agent at idx, reached the catalog, replacing the node's confirmation
// under way if any. It returns at once.
func (r *Registry) confirm(reg *api.AgentServiceRegistration, idx int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev := r.confirms[reg.ID]; prev != nil {
		prev.stop()
	}
	if r.life.Err() != nil {
		delete(r.confirms, reg.ID)
		return
	}
	ctx, stop := context.WithTimeout(r.life, confirmFor)
	c := &confirmation{stop: stop, done: make(chan struct{})}
	r.confirms[reg.ID] = c
	r.loops.Go(func() {
		defer close(c.done)
		defer stop()
		r.confirmLoop(ctx, reg, r.agents[idx])
		r.mu.Lock()
		if r.confirms[reg.ID] == c {
			delete(r.confirms, reg.ID)
		}
		r.mu.Unlock()
	})
}

// stopConfirm stops the confirmation of the node id, if one runs, and waits
// until it has ended (a registration it was making included), or ctx ends.
func (r *Registry) stopConfirm(ctx context.Context, id string) {
	r.mu.Lock()
	c := r.confirms[id]
	delete(r.confirms, id)
	r.mu.Unlock()
	if c == nil {
		return
	}
	c.stop()
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

// confirmLoop checks the catalog through a until it holds reg's instance,
// passing, on a's node, and registers reg again through a each time it
// does not, with backoff, until ctx ends.
// The registrations again use the registry's life, not ctx: one under way
// when the confirmation is stopped finishes (within the timeout), so none
// reaches the agent after a Deregister that stopped the confirmation.
func (r *Registry) confirmLoop(ctx context.Context, reg *api.AgentServiceRegistration, a *agent) {
	log := r.log.With("service", reg.Name, "node", reg.ID, "agent", a.addr)
	start := time.Now()
	bo := backoff.Backoff{Min: confirmMin, Max: confirmMax}
	var node string  // the agent's Consul node, once known
	var index uint64 // the catalog's index at the last look
	again := 0       // registrations made again
	for ctx.Err() == nil {
		wait := bo.Next()
		if node == "" && reg.Check != nil {
			n, err := r.agentNode(ctx, a, reg.Check.CheckID)
			if err != nil {
				log.Debug("cannot read the agent's node yet", "err", err)
				backoff.Sleep(ctx, wait)
				continue
			}
			node = n
		}
		// The first look does not wait; the next ones wait for the
		// catalog to change (the agent syncing the instance, or a new
		// leader's first changes: making the instance on a dead agent's
		// node critical) or for wait.
		in, idx, err := r.inCatalog(ctx, a, reg, node, index, wait)
		switch {
		case errors.Is(err, errUnconfirmable):
			log.Debug("cannot confirm that the instance reached Consul's catalog", "err", err)
			return
		case err != nil:
			log.Debug("checking the catalog for the instance", "err", err)
			backoff.Sleep(ctx, wait)
			continue
		case in:
			if again > 0 {
				log.Info("instance in Consul's catalog after registering it again", "registered_again", again, "after", time.Since(start).Round(time.Millisecond))
			}
			return
		}
		first := index == 0
		index = max(idx, 1)
		if first || ctx.Err() != nil {
			continue // the agent may still be syncing it
		}
		if again == 0 {
			log.Info("instance registered but not in Consul's catalog (the agent could not sync it: no leader?); registering it again until it is")
		}
		again++
		rctx, cancel := context.WithTimeout(r.life, r.timeout)
		err = a.api.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(rctx))
		cancel()
		if err != nil {
			log.Debug("registering again", "err", aclError(err))
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		log.Warn("instance still not in Consul's catalog; leaving it to the agent's anti-entropy", "after", confirmFor, "registered_again", again)
	}
}

// errUnconfirmable says that the registry cannot tell whether the instance
// is in the catalog.
var errUnconfirmable = errors.New("cannot tell")

// agentNode returns the name of a's Consul node, read from the agent's copy
// of the check checkID (one the registry registered: a token that could
// register it may read it; the agent's own endpoint /v1/agent/self would
// need agent:read).
func (r *Registry) agentNode(ctx context.Context, a *agent, checkID string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	checks, err := a.api.Agent().ChecksWithFilterOpts(fmt.Sprintf("CheckID == %q", checkID), (&api.QueryOptions{}).WithContext(cctx))
	if err != nil {
		return "", aclError(err)
	}
	for _, c := range checks {
		if c.Node != "" {
			return c.Node, nil
		}
	}
	return "", fmt.Errorf("the agent has no check %q", checkID)
}

// inCatalog reports whether the catalog, read through a (a stale read, so
// it answers during an election), holds reg's instance passing on the Consul
// node named node (on any node when node is ""). With index > 0 it waits up
// to wait for a change first. It also returns the catalog's index.
//
// It reads Consul's health endpoint filtered to that one instance, which
// needs service:read on the service (given by the service:write the
// registration needed) and node:read on the node. A token without node:read
// sees the instance removed by the ACLs: Consul filters after the query's
// own filter and says it removed something (X-Consul-Results-Filtered-By-
// ACLs), which counts as the instance being there. Consul does not say so
// to requests without a token; without one, against a cluster whose
// default policy is deny, an empty answer cannot be told from a hidden one
// and inCatalog returns errUnconfirmable.
func (r *Registry) inCatalog(ctx context.Context, a *agent, reg *api.AgentServiceRegistration, node string, index uint64, wait time.Duration) (bool, uint64, error) {
	filter := fmt.Sprintf("Service.ID == %q", reg.ID)
	if node != "" {
		filter += fmt.Sprintf(" and Node.Node == %q", node)
	}
	q := &api.QueryOptions{AllowStale: true, Filter: filter}
	timeout := r.timeout
	if index > 0 {
		q.WaitIndex, q.WaitTime = index, wait
		timeout += wait + wait/16
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	entries, meta, err := a.api.Health().Service(reg.Name, "", true, q.WithContext(cctx))
	if err != nil {
		return false, 0, aclError(err)
	}
	if len(entries) > 0 || meta.ResultsFilteredByACLs {
		return true, meta.LastIndex, nil
	}
	if r.anonymous && meta.DefaultACLPolicy == "deny" {
		return false, 0, fmt.Errorf("%w: without a token Consul does not say what its ACLs hid", errUnconfirmable)
	}
	return false, meta.LastIndex, nil
}

package consultest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// ClusterTimeout bounds how long the Cluster methods wait for the cluster
// to reach a state: leader elections at Consul's default timing take 10-25
// s, and the test machines are small and busy.
const ClusterTimeout = 2 * time.Minute

// Cluster is a Consul cluster of server agents on loopback, started by
// StartCluster.
type Cluster struct {
	// Agents are the servers, in the order of Addrs.
	Agents []*Agent
}

// StartCluster starts n server agents (3 make a cluster that survives the
// loss of one) on free loopback ports, joined to each other, and waits
// until they have elected a leader and every node is alive in the catalog.
// Each keeps its state in a data directory, so one stopped or killed and
// restarted comes back with it. Consul runs with its default (production)
// timing. The agents are stopped when the test ends. If the binary is
// missing, StartCluster fails the test under CI=true and skips it otherwise.
func StartCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	agents := newAgents(tb, n, opts)
	for _, a := range agents {
		if err := a.proc.Launch(); err != nil {
			tb.Fatalf("consultest: %v", err)
		}
	}
	for _, a := range agents {
		if err := a.proc.WaitReady(); err != nil {
			tb.Fatalf("consultest: cluster: %v", err)
		}
	}
	return &Cluster{Agents: agents}
}

// Addrs returns the agents' HTTP API addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Agents))
	for i, a := range c.Agents {
		out[i] = a.Addr()
	}
	return out
}

// Leader returns the running agent the running agents name as leader, or
// an error if none names one that runs.
func (c *Cluster) Leader(ctx context.Context) (*Agent, error) {
	var errs []error
	for _, a := range c.Agents {
		if !a.Running() {
			continue
		}
		client, err := a.httpClient()
		if err != nil {
			return nil, err
		}
		var leader string
		err = a.getJSON(ctx, client, "/v1/status/leader", &leader)
		client.CloseIdleConnections()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.name, err))
			continue
		}
		for _, b := range c.Agents {
			if leader != "" && b.ServerAddr() == leader && b.Running() {
				return b, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: no running leader (%q)", a.name, leader))
	}
	return nil, fmt.Errorf("no leader: %w", errors.Join(errs...))
}

// WaitLeader waits until the cluster has a running leader and returns it.
func (c *Cluster) WaitLeader() (*Agent, error) {
	var leader *Agent
	err := c.wait("a leader", func(ctx context.Context) (err error) {
		leader, err = c.Leader(ctx)
		return err
	})
	return leader, err
}

// MoveLeadershipFrom makes a give up the cluster's leadership, if it leads,
// to another server (Consul's raft transfer-leader), and waits until another
// running agent leads.
func (c *Cluster) MoveLeadershipFrom(a *Agent) error {
	return c.moveLeadership(a, false)
}

// MoveLeadershipTo makes the running agent a the cluster's leader, if it
// does not lead (Consul's raft transfer-leader to a's raft id), and waits
// until it leads.
func (c *Cluster) MoveLeadershipTo(a *Agent) error {
	return c.moveLeadership(a, true)
}

// moveLeadership moves the leadership to a (to) or away from it, asking
// the leader again every 5 s until it is done.
func (c *Cluster) moveLeadership(a *Agent, to bool) error {
	what := "leadership away from " + a.name
	if to {
		what = "leadership to " + a.name
	}
	var asked time.Time
	return c.wait(what, func(ctx context.Context) error {
		leader, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		if (leader == a) == to {
			return nil
		}
		notYet := fmt.Errorf("%s leads", leader.name)
		if time.Since(asked) < 5*time.Second {
			return notYet
		}
		asked = time.Now()
		client, err := leader.API()
		if err != nil {
			return err
		}
		q := (&api.QueryOptions{}).WithContext(ctx)
		id := "" // away from a: any other server
		if to {
			cfg, err := client.Operator().RaftGetConfiguration(q)
			if err != nil {
				return fmt.Errorf("raft configuration: %w", err)
			}
			for _, s := range cfg.Servers {
				if s.Address == a.ServerAddr() {
					id = s.ID
				}
			}
			if id == "" {
				return fmt.Errorf("%s is not in the raft configuration %+v", a.name, cfg.Servers)
			}
		}
		if _, err := client.Operator().RaftLeaderTransfer(id, q); err != nil {
			return fmt.Errorf("transfer leadership: %w", err)
		}
		return notYet
	})
}

// WaitHealthy waits until Consul's autopilot reports the cluster healthy
// with every agent running, alive and a voter: the cluster is back in full
// shape after agents were stopped and restarted.
func (c *Cluster) WaitHealthy() error {
	return c.wait("a healthy cluster of every agent", func(ctx context.Context) error {
		leader, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		client, err := leader.httpClient()
		if err != nil {
			return err
		}
		defer client.CloseIdleConnections()
		var health struct {
			Healthy bool
			Servers []struct {
				Name, SerfStatus string
				Healthy, Voter   bool
			}
		}
		if err := leader.getJSON(ctx, client, "/v1/operator/autopilot/health", &health); err != nil {
			return err
		}
		if !health.Healthy || len(health.Servers) != len(c.Agents) {
			return fmt.Errorf("autopilot: %+v", health)
		}
		for _, s := range health.Servers {
			if !s.Healthy || !s.Voter || s.SerfStatus != "alive" {
				return fmt.Errorf("autopilot: %+v", health)
			}
		}
		return nil
	})
}

// wait polls cond until it returns nil, for up to ClusterTimeout.
func (c *Cluster) wait(what string, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), ClusterTimeout)
	defer cancel()
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: timed out after %v: %w", what, ClusterTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

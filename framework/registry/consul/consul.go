package consul

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
)

// Defaults used when the options leave them zero.
const (
	// DefaultAddress is the agent's address when neither WithAddrs nor
	// CONSUL_HTTP_ADDR gives one.
	DefaultAddress = "127.0.0.1:8500"
	// DefaultTimeout bounds each HTTP call to Consul (a blocking query gets
	// its wait time on top).
	DefaultTimeout = 5 * time.Second
	// WaitTime is how long one blocking query of a watch waits for a change
	// before it is asked again.
	WaitTime = 30 * time.Second
)

// agent is one Consul HTTP address the registry can talk to.
type agent struct {
	addr string
	api  *api.Client
	http *http.Client // api's, for Close
}

// Registry is the Consul registry. Build it with New. It is safe for
// concurrent use.
type Registry struct {
	agents     []*agent
	current    atomic.Int32 // index in agents of the one that answered last
	timeout    time.Duration
	maxStale   time.Duration
	consistent bool
	anonymous  bool // no ACL token configured: Consul uses its anonymous token
	log        *slog.Logger

	reads readState // stale-read bookkeeping (see read.go)
	acl   aclState  // ACL warnings (see acl.go)

	// life ends with Close; loops are the goroutines confirming
	// registrations (see confirm.go).
	life     context.Context
	stopLife context.CancelFunc
	loops    sync.WaitGroup

	mu         sync.Mutex
	registered map[string]registered    // by node id
	confirms   map[string]*confirmation // by node id
	warned     map[string]bool          // see warnOnce
}

// registered remembers what Register last sent for a node and where, so the
// next Register of the same definition only passes the TTL check.
type registered struct {
	sum   string // hash of the registration
	agent int    // index in agents
}

// Options configure a Registry.
type Options struct {
	// Addrs are the agents' HTTP addresses, in failover order.
	Addrs []string
	// Timeout bounds every HTTP call to Consul (default DefaultTimeout).
	Timeout time.Duration
	// MaxStale bounds how long the server answering a discovery read may
	// have been out of touch with its leader (Consul's LastContact) before
	// the registry asks again with a consistent read (default
	// DefaultMaxStale). See the package documentation.
	MaxStale time.Duration
	// Consistent makes every discovery read go through the cluster's
	// leader (Consul's default consistency mode) instead of reading from
	// any server; reads then fail while the cluster elects a leader.
	Consistent bool
	// Logger receives the registry's warnings (default slog.Default()).
	Logger *slog.Logger
}

// Option sets an Options field.
type Option func(*Options)

// WithAddrs sets the agents' HTTP addresses (host:port, or http://,
// https://, unix:// URLs; an entry may also be a comma-separated list).
func WithAddrs(addrs ...string) Option { return func(o *Options) { o.Addrs = addrs } }

// WithTimeout bounds every HTTP call to Consul.
func WithTimeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// WithMaxStale bounds how stale a discovery read may be: how long the
// server answering it may have been out of touch with its leader.
func WithMaxStale(d time.Duration) Option { return func(o *Options) { o.MaxStale = d } }

// WithConsistentReads makes every discovery read go through the cluster's
// leader (Consul's default consistency) instead of any server: no stale
// answer, but no answer either while the servers elect a leader.
func WithConsistentReads() Option { return func(o *Options) { o.Consistent = true } }

// WithLogger sets the logger of the registry's warnings.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// New returns a Consul registry. WithAddrs lists the agents' HTTP
// addresses (host:port, or http://, https://, unix:// URLs; entries may also
// be comma-separated lists); calls go to the first that answers and fail over
// to the next when one is unreachable. Without addresses it uses
// CONSUL_HTTP_ADDR, else 127.0.0.1:8500. Token and TLS settings come from the
// usual Consul environment variables (CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL,
// CONSUL_CACERT, CONSUL_CLIENT_CERT, ...), read by the Consul API package.
// Discovery reads are stale reads bounded by WithMaxStale (see the package
// documentation).
func New(opts ...Option) (*Registry, error) {
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	var addrs []string
	for _, a := range o.Addrs {
		for _, part := range strings.Split(a, ",") {
			if part = strings.TrimSpace(part); part != "" {
				addrs = append(addrs, part)
			}
		}
	}
	if len(addrs) == 0 {
		addrs = []string{DefaultAddress}
		if env := os.Getenv(api.HTTPAddrEnvName); env != "" {
			addrs = []string{env}
		}
	}
	if o.Timeout < 0 || o.MaxStale < 0 {
		return nil, fmt.Errorf("consul registry: %w: negative timeout %v or max stale %v", registry.ErrInvalid, o.Timeout, o.MaxStale)
	}
	r := &Registry{
		timeout:    cmp.Or(o.Timeout, DefaultTimeout),
		maxStale:   cmp.Or(o.MaxStale, DefaultMaxStale),
		consistent: o.Consistent,
		log:        cmp.Or(o.Logger, slog.Default()).With("registry", "consul"),
		registered: map[string]registered{},
		confirms:   map[string]*confirmation{},
		warned:     map[string]bool{},
	}
	r.life, r.stopLife = context.WithCancel(context.Background())
	r.reads.pause = fallbackPause
	for _, addr := range addrs {
		cfg := api.DefaultConfig()
		cfg.Address = addr
		// HTTP/1.1, as Consul's API client means to (its NewHttpClient);
		// over HTTP/2 (which go-cleanhttp forces) a TLS handshake the agent
		// refuses (no client certificate) fails the next calls with "http2:
		// client conn could not be established" instead of the reason.
		cfg.Transport.ForceAttemptHTTP2 = false
		r.anonymous = cfg.Token == "" && cfg.TokenFile == ""
		c, err := api.NewClient(cfg)
		if err != nil {
			return nil, fmt.Errorf("consul registry: address %q: %w", addr, err)
		}
		r.agents = append(r.agents, &agent{addr: addr, api: c, http: cfg.HttpClient})
	}
	return r, nil
}

// Close stops the registry's confirmations that registered nodes reached
// the catalog (see Register) and waits for them, then closes its idle
// keep-alive connections to its agents, which would otherwise stay open
// until the HTTP client's idle timeout: a program (or framework.Service,
// for the registry it built) calls it when done with the registry. Calls
// in progress and watches go on (stop the watchers first), and a later
// call opens a new connection.
func (r *Registry) Close() error {
	r.stopLife()
	r.loops.Wait()
	for _, a := range r.agents {
		a.http.CloseIdleConnections()
	}
	return nil
}

// String returns "consul".
func (r *Registry) String() string { return "consul" }

// Addrs returns the agent addresses the registry uses, in failover order.
func (r *Registry) Addrs() []string {
	out := make([]string, len(r.agents))
	for i, a := range r.agents {
		out[i] = a.addr
	}
	return out
}

// call runs f against the agents, starting with prefer (or the one that
// answered last when prefer < 0), each attempt bounded by timeout, and moves
// on to the next agent when one is unreachable or fails with a server error.
// The error names every address tried.
func (r *Registry) call(ctx context.Context, what string, prefer int, timeout time.Duration, f func(ctx context.Context, a *agent) error) (int, error) {
	n := len(r.agents)
	start := prefer
	if start < 0 || start >= n {
		start = int(r.current.Load())
	}
	var errs []error
	for i := range n {
		idx := (start + i) % n
		a := r.agents[idx]
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := f(actx, a)
		cancel()
		if err == nil {
			r.current.Store(int32(idx))
			return idx, nil
		}
		errs = append(errs, fmt.Errorf("consul at %s: %w", a.addr, aclError(err)))
		if ctx.Err() != nil || !failOver(err) {
			break
		}
	}
	return -1, fmt.Errorf("%s: %w", what, errors.Join(errs...))
}

// failOver reports whether err means another agent might do better: no
// answer at all, or a server-side error (such as "No cluster leader").
func failOver(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	return true
}

func isStatus(err error, code int) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == code
}

// checkIDs rejects what Consul's HTTP API cannot address: a '/' in a
// service name or node id would be read as a path separator.
func checkIDs(s *registry.Service) error {
	if strings.Contains(s.Name, "/") {
		return fmt.Errorf("%w: service name %q contains '/', which Consul's HTTP API cannot address", registry.ErrInvalid, s.Name)
	}
	for _, n := range s.Nodes {
		if strings.Contains(n.ID, "/") {
			return fmt.Errorf("%w: service %q: node id %q contains '/', which Consul's HTTP API cannot address", registry.ErrInvalid, s.Name, n.ID)
		}
	}
	return nil
}

// Register registers every node of s as a Consul service instance with a TTL
// check (registry.WithTTL; with none the node has no check and stays
// until deregistered), or, when the node was already registered with the
// same definition through this Registry, just passes its TTL check. If the
// agent no longer knows the node (it restarted, or the node expired), the
// node is registered again. Invalid input is refused with an error wrapping
// registry.ErrInvalid, a definition too large with one wrapping ErrTooLarge;
// either way nothing is registered. After a node is registered in full the
// registry confirms, in the background, that it reached Consul's catalog,
// and registers it again while it has not (see the package documentation).
func (r *Registry) Register(ctx context.Context, s *registry.Service, opts ...registry.RegisterOption) error {
	if err := registry.ValidateRegister(s); err != nil {
		return fmt.Errorf("consul register: %w", err)
	}
	if err := checkIDs(s); err != nil {
		return fmt.Errorf("consul register: %w", err)
	}
	var o registry.RegisterOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.TTL < 0 {
		return fmt.Errorf("consul register %q: %w: negative TTL %v", s.Name, registry.ErrInvalid, o.TTL)
	}
	// Encode every node first, so a node too large changes nothing.
	regs := make([]*api.AgentServiceRegistration, len(s.Nodes))
	omitted := make([]string, len(s.Nodes))
	for i, n := range s.Nodes {
		reg, om, err := registration(s, n, o.TTL)
		if err != nil {
			return fmt.Errorf("consul register %q node %q: %w", s.Name, n.ID, err)
		}
		regs[i], omitted[i] = reg, om
	}
	for i, reg := range regs {
		if err := r.registerNode(ctx, reg, omitted[i]); err != nil {
			return err
		}
	}
	return nil
}

// registerNode registers reg, or only passes its TTL check when this
// Registry registered it unchanged before. omitted is what its go-micro
// tags left out, logged when the node is registered in full.
func (r *Registry) registerNode(ctx context.Context, reg *api.AgentServiceRegistration, omitted string) error {
	sum := registrationSum(reg)
	r.mu.Lock()
	prev, known := r.registered[reg.ID]
	r.mu.Unlock()
	prefer := -1
	if known {
		prefer = prev.agent
	}
	full := false
	idx, err := r.call(ctx, fmt.Sprintf("consul register %q node %q", reg.Name, reg.ID), prefer, r.timeout, func(ctx context.Context, a *agent) error {
		if known && prev.sum == sum && a == r.agents[prev.agent] && reg.Check != nil {
			err := a.api.Agent().UpdateTTLOpts(reg.Check.CheckID, "", api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
			var se api.StatusError
			if err == nil || !errors.As(err, &se) || se.Code >= 500 {
				return err
			}
			// The agent answered that it does not know the check: it
			// lost the node (restart, expiry); register it again.
		}
		full = true
		return a.api.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
	})
	r.mu.Lock()
	if err != nil {
		delete(r.registered, reg.ID)
		r.mu.Unlock()
		return err
	}
	r.registered[reg.ID] = registered{sum: sum, agent: idx}
	r.mu.Unlock()
	if full {
		r.confirm(reg, idx)
		if omitted != "" {
			r.log.Info("go-micro tags of the node left out what is over their budget; microbot's meta holds it all",
				"service", reg.Name, "node", reg.ID, "left_out", omitted, "max_tags", maxTags, "max_tag_bytes", maxTagBytes)
		}
	}
	return nil
}

// registrationSum identifies a registration's content.
func registrationSum(reg *api.AgentServiceRegistration) string {
	keys := make([]string, 0, len(reg.Meta))
	for k := range reg.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %q %q %d", reg.ID, reg.Name, reg.Tags, reg.Address, reg.Port)
	if reg.Check != nil {
		fmt.Fprintf(&b, " ttl=%q/%q", reg.Check.TTL, reg.Check.DeregisterCriticalServiceAfter)
	}
	for _, k := range keys {
		fmt.Fprintf(&b, " %q=%q", k, reg.Meta[k])
	}
	return b.String()
}

// Deregister removes every node of s from Consul at once, having first
// stopped confirming its registration (see Register). A node Consul does
// not know is not an error: it is gone either way.
func (r *Registry) Deregister(ctx context.Context, s *registry.Service) error {
	if err := registry.ValidateDeregister(s); err != nil {
		return fmt.Errorf("consul deregister: %w", err)
	}
	if err := checkIDs(s); err != nil {
		return fmt.Errorf("consul deregister: %w", err)
	}
	var errs []error
	for _, n := range s.Nodes {
		r.stopConfirm(ctx, n.ID)
		r.mu.Lock()
		prev, known := r.registered[n.ID]
		delete(r.registered, n.ID)
		r.mu.Unlock()
		prefer := -1
		if known {
			prefer = prev.agent
		}
		_, err := r.call(ctx, fmt.Sprintf("consul deregister %q node %q", s.Name, n.ID), prefer, r.timeout, func(ctx context.Context, a *agent) error {
			err := a.api.Agent().ServiceDeregisterOpts(n.ID, (&api.QueryOptions{}).WithContext(ctx))
			if isStatus(err, 404) {
				return nil
			}
			return err
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// GetService returns the named service's nodes whose every check passes,
// one entry per version, sorted by version, nodes sorted by id. It returns
// an error wrapping registry.ErrNotFound when there is none, and one wrapping
// ErrPermissionDenied when Consul's ACLs hid the service's instances from
// the registry's token.
func (r *Registry) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("consul get service %q: invalid name", name)
	}
	entries, meta, err := r.health(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		err := r.hiddenByACL(meta, false, instancesNeed(name))
		if err == nil && r.anonymous && meta.DefaultACLPolicy == "deny" {
			// Without a token Consul does not say whether it hid
			// anything; it did if it hides even the catalog's names.
			if _, _, lerr := r.serviceNames(ctx, 0); errors.Is(lerr, ErrPermissionDenied) {
				err = r.hiddenByACL(meta, true, instancesNeed(name))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("consul get service %q: %w", name, err)
		}
	}
	svcs := registry.Merge(r.decodeEntries(entries))
	if len(svcs) == 0 {
		return nil, fmt.Errorf("consul get service %q: %w", name, registry.ErrNotFound)
	}
	return svcs, nil
}

// health runs a (blocking, if index > 0) read of the passing instances of
// the named service, microbot's and every other's. If Consul's ACLs left
// some out while others remain, it logs a warning (once).
func (r *Registry) health(ctx context.Context, name string, index uint64) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	entries, meta, err := read(ctx, r, fmt.Sprintf("consul get service %q", name), index,
		func(a *agent, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
			return a.api.Health().Service(name, "", true, q)
		})
	if err != nil {
		return nil, nil, err
	}
	if len(entries) > 0 && meta.ResultsFilteredByACLs {
		r.partlyHidden(instancesNeed(name))
	}
	return entries, meta, nil
}

// decodeEntries decodes the instances, each a Service holding one node, one
// per node id. An instance that does not decode whole is kept with what
// could be read, and a warning is logged (once per instance and change).
func (r *Registry) decodeEntries(entries []*api.ServiceEntry) []*registry.Service {
	seen := map[string]bool{}
	var out []*registry.Service
	for _, e := range entries {
		if e.Service == nil || seen[e.Service.ID] {
			continue
		}
		nodeAddr := ""
		if e.Node != nil {
			nodeAddr = e.Node.Address
		}
		svc, err := decodeEntry(e.Service, nodeAddr)
		if err != nil {
			r.warnOnce(e.Service.ID+"@"+strconv.FormatUint(e.Service.ModifyIndex, 10),
				"instance partly undecodable; showing what could be read", "err", err)
		}
		seen[e.Service.ID] = true
		out = append(out, svc)
	}
	return out
}

// maxWarned bounds the memory of warnOnce; past it, it starts over.
const maxWarned = 4096

// warnOnce logs a warning the first time it is given key (until more than
// maxWarned keys were seen): reads repeat every few seconds, the logs
// should not.
func (r *Registry) warnOnce(key, msg string, args ...any) {
	r.mu.Lock()
	if r.warned[key] {
		r.mu.Unlock()
		return
	}
	if len(r.warned) >= maxWarned {
		r.warned = map[string]bool{}
	}
	r.warned[key] = true
	r.mu.Unlock()
	r.log.Warn(msg, args...)
}

// ListServices returns every service in the catalog with at least one live
// instance (all its checks and its Consul node's checks passing), microbot's
// and every other's, one entry per name and version, sorted by name then
// version, without nodes or endpoints. It asks the catalog for the names,
// then each service for its passing instances' version tags (microbot's
// and go-micro's), a few at a time.
func (r *Registry) ListServices(ctx context.Context) ([]*registry.Service, error) {
	names, _, err := r.serviceNames(ctx, 0)
	if err != nil {
		return nil, err
	}
	versions := make([][]string, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			entries, meta, err := r.health(ctx, name, 0)
			if err != nil {
				errs[i] = err
				return
			}
			if len(entries) == 0 {
				// Listed by the catalog but no instance visible: either
				// none passes, or the ACLs hid them.
				if err := r.hiddenByACL(meta, false, instancesNeed(name)); err != nil {
					errs[i] = fmt.Errorf("service %q: %w", name, err)
					return
				}
			}
			for _, e := range entries {
				if e.Service == nil {
					continue
				}
				v, ok := tagVersion(e.Service.Tags)
				if _, ours := e.Service.Meta[metaFormat]; !ok && ours {
					v = e.Service.Meta[metaVersion]
				}
				if !slices.Contains(versions[i], v) {
					versions[i] = append(versions[i], v)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("consul list services: %w", err)
	}
	var out []*registry.Service
	for i, name := range names { // names are sorted
		slices.Sort(versions[i])
		for _, v := range versions[i] {
			out = append(out, &registry.Service{Name: name, Version: v})
		}
	}
	return out, nil
}

// Package local is the default service registry of microbot: a directory
// shared by the processes of one host (--registry=local). It needs no server
// and sends nothing over the network.
//
// # Layout
//
// Every registered node is one file, named from the service name and the
// node ID (escaped so any name is safe, hashed when very long), holding the
// JSON of the service with that one node and the time the node expires:
//
//	<dir>/go.micro.srv.greeter@go.micro.srv.greeter-1f3c.json
//	{"format":1,"expires":"2026-05-01T10:00:30Z","pid":4242,"service":{...}}
//
// A file is written to a temporary file in the same directory and renamed
// into place, so a reader sees the old file or the new one, never a part.
// Writers (Register, Deregister, and the removal of expired files) also hold
// an advisory lock on <dir>/.lock while they change the directory, so the
// removal of a file that has just expired can never undo a refresh racing
// with it. Readers take no lock. The directory is made 0700 and the files
// 0600.
//
// # Expiry
//
// A node registered with a TTL expires when the TTL passes without another
// Register: readers ignore it from then on, so a process killed with SIGKILL
// disappears within its TTL. Expired files, and files that cannot be read
// (truncated, garbage, left by a crash), are removed by whichever process
// comes across them; a bad file is ignored with a logged warning. A TTL of
// zero means the node never expires (until Deregister).
//
// # Watch
//
// Watchers of one Registry share one watch of the directory: fsnotify
// events, a poll every PollInterval (the fallback when change notification
// fails or is not available, e.g. on network file systems), and a timer at
// the next expiry. A change notification (or a change made through the
// Registry itself) names the node files that changed: those are read again
// and the services they belong to compared with the last snapshot
// (registry.Diff). A poll, a notification that events were lost, and the
// expiry timer read the whole directory again and compare everything. So
// the events are exact whichever process made the change, a node refreshing
// its registration costs one file read, and expiry produces Delete or Update
// events within about the TTL.
//
// # Memory
//
// Files are read again only when they change (inode, size, modification
// time), and the directory's list of names only when the directory does.
// A refresh that changes only the expiry keeps the decoded service. The
// metadata and endpoint schemas that files have in common (a thousand
// command services registered by the same framework) are decoded once and
// shared; the watch's snapshot shares the cache's entries. Callers always
// get deep copies.
//
// # The KV store
//
// [Registry.KV] keeps a small key/value store in the subdirectory .kv, one
// file per key, for the state programs on this host share (the bot's
// watches of event topics).
//
// # Where
//
// The directory is the one given with WithDir (--registry_address), else
// DefaultDir: per user, in $XDG_RUNTIME_DIR/microbot/registry, else the
// user cache directory (os.UserCacheDir)/microbot/registry, else
// os.TempDir()/microbot-<uid>/registry. Processes that are to find each
// other must use the same directory.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microbot/microbot/framework/registry"
)

// Defaults of the options.
const (
	DefaultPollInterval = 2 * time.Second
	DefaultLockTimeout  = 10 * time.Second
)

// Options configure a local Registry.
type Options struct {
	// Dir is the registry directory; empty means DefaultDir.
	Dir string
	// PollInterval is how often a watch reads the directory again even
	// without a change notification.
	PollInterval time.Duration
	// Notify enables fsnotify change notification for watches; without it
	// they poll only.
	Notify bool
	// LockTimeout bounds the wait for the directory lock.
	LockTimeout time.Duration
	// Shared trusts a directory other users own or may write to, and the
	// node files they write in it (several users' services sharing one
	// host's registry). Without it such a directory is refused, and files
	// of other users are ignored.
	Shared bool
	// Logger receives the warnings (bad files, fallbacks).
	Logger *slog.Logger
}

// Option sets an Options field.
type Option func(*Options)

// WithDir sets the registry directory.
func WithDir(dir string) Option { return func(o *Options) { o.Dir = dir } }

// WithPollInterval sets how often a watch reads the directory again without a
// change notification.
func WithPollInterval(d time.Duration) Option { return func(o *Options) { o.PollInterval = d } }

// WithPolling makes watches poll only, without fsnotify: for file systems whose
// change notification does not work (network file systems).
func WithPolling() Option { return func(o *Options) { o.Notify = false } }

// WithLockTimeout bounds the wait for the directory lock.
func WithLockTimeout(d time.Duration) Option { return func(o *Options) { o.LockTimeout = d } }

// WithShared trusts a registry directory shared with other users: one they
// own or may write to, and the services they register in it
// (--registry_shared_dir). Anyone who may write in the directory can
// register a service, and so a command of a bot reading it.
func WithShared() Option { return func(o *Options) { o.Shared = true } }

// WithLogger sets where warnings go (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Registry is a registry kept in a directory. It is safe for concurrent use,
// and any number of Registries, in one process or many, may share a
// directory.
type Registry struct {
	opts Options
	sem  chan struct{} // the in-process half of the directory lock

	mu      sync.Mutex
	listing *listing           // the directory's names as last read
	cache   map[string]*cached // file name -> what it held when last read
	shared  sharedParts        // what the cached services have in common
	warned  map[string]fileKey // file name -> the version it was warned about

	gcBusy atomic.Bool
	gcLast atomic.Int64 // unix nanos of the last collection
	bgMu   sync.Mutex   // orders closed with bg.Add
	bg     sync.WaitGroup
	closed bool // by Close: no more background work
	// collecting, when set (tests), is called first by each collection's
	// goroutine.
	collecting func()

	kv *kvStore // the KV store (see KV)

	hubMu sync.Mutex
	hub   *hub // the shared watch; nil without watchers
}

var _ registry.Registry = (*Registry)(nil)

// New returns a Registry on the directory of the options, creating it (mode
// 0700) if needed.
func New(opts ...Option) (*Registry, error) {
	o := Options{PollInterval: DefaultPollInterval, Notify: true, LockTimeout: DefaultLockTimeout}
	for _, f := range opts {
		f(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		o.Dir = d
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("local registry: directory %q: %w", o.Dir, err)
	}
	o.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local registry: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("local registry: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("local registry: %s is not a directory", dir)
	}
	if !o.Shared {
		if err := checkTrusted(dir); err != nil {
			return nil, fmt.Errorf("local registry: %w: other users could register services (and so commands) in it; "+
				"use a directory of your own (mode 0700), or pass --registry_shared_dir (local.WithShared) if it is shared on purpose", err)
		}
	}
	return &Registry{
		opts:   o,
		sem:    make(chan struct{}, 1),
		cache:  map[string]*cached{},
		shared: newSharedParts(),
		warned: map[string]fileKey{},
		kv:     newKVStore(filepath.Join(dir, kvDir), o.PollInterval),
	}, nil
}

// Close stops the background work of the registry (the removal of expired
// and bad files, which runs on a goroutine of its own after a read came
// across them) and waits for what is under way: from then on this
// Registry changes the directory only when called (Register, Deregister),
// so a program or a test can remove the directory. Reads, Register,
// Deregister and watches still work; the files they come across are left
// for another Registry to remove.
func (r *Registry) Close() error {
	r.bgMu.Lock()
	r.closed = true
	r.bgMu.Unlock()
	r.bg.Wait()
	return nil
}

// String returns "local".
func (r *Registry) String() string { return "local" }

// Dir returns the registry directory.
func (r *Registry) Dir() string { return r.opts.Dir }

// Register writes a file for every node of s. The nodes expire after the TTL
// of registry.WithTTL (never if zero). A node registered again, even
// under another version, replaces its file: a node is keyed by service name
// and node ID.
func (r *Registry) Register(ctx context.Context, s *registry.Service, opts ...registry.RegisterOption) error {
	if err := registry.ValidateRegister(s); err != nil {
		return err
	}
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	if o.TTL < 0 {
		return fmt.Errorf("%w: service %q: negative TTL %v", registry.ErrInvalid, s.Name, o.TTL)
	}
	files := make(map[string][]byte, len(s.Nodes))
	for _, n := range s.Nodes {
		rec := record{
			Format: format,
			Pid:    os.Getpid(),
			Service: &registry.Service{
				Name: s.Name, Version: s.Version, Metadata: s.Metadata, Endpoints: s.Endpoints,
				Nodes: []*registry.Node{n},
			},
		}
		if o.TTL > 0 {
			rec.Expires = time.Now().Add(o.TTL).UTC()
		}
		data, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("local registry: register %q: %w", s.Name, err)
		}
		files[fileName(s.Name, n.ID)] = data
	}
	err := r.locked(ctx, func() error {
		for name, data := range files {
			if err := r.writeFile(name, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("local registry: register %q: %w", s.Name, err)
	}
	r.poke(slices.Collect(maps.Keys(files))...)
	return nil
}

// Deregister removes the files of the nodes of s (matched by service name
// and node ID). Nodes that are not registered are ignored.
func (r *Registry) Deregister(ctx context.Context, s *registry.Service) error {
	if err := registry.ValidateDeregister(s); err != nil {
		return err
	}
	names := make([]string, len(s.Nodes))
	for i, n := range s.Nodes {
		names[i] = fileName(s.Name, n.ID)
	}
	err := r.locked(ctx, func() error {
		for _, name := range names {
			err := os.Remove(filepath.Join(r.opts.Dir, name))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("local registry: deregister %q: %w", s.Name, err)
	}
	r.poke(names...)
	return nil
}

// GetService returns the live nodes of the service, one Service per
// version. It reads only the files of that service.
func (r *Registry) GetService(ctx context.Context, name string) ([]*registry.Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get service %q: %w", name, err)
	}
	parts, _, err := r.services(servicePrefix(name))
	if err != nil {
		return nil, fmt.Errorf("local registry: get service %q: %w", name, err)
	}
	svcs := registry.Merge(parts)
	if len(svcs) == 0 {
		return nil, fmt.Errorf("service %q: %w", name, registry.ErrNotFound)
	}
	return svcs, nil
}

// ListServices returns every service with a live node, one entry per name
// and version, sorted by name then version. The entries hold the name,
// version and metadata only.
func (r *Registry) ListServices(ctx context.Context) ([]*registry.Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	parts, _, err := r.services("")
	if err != nil {
		return nil, fmt.Errorf("local registry: list services: %w", err)
	}
	svcs := registry.MergeView(parts) // not to be changed: see cached
	for i, s := range svcs {
		svcs[i] = &registry.Service{Name: s.Name, Version: s.Version, Metadata: maps.Clone(s.Metadata)}
	}
	return svcs, nil // MergeView sorted them
}

// locked runs fn holding the directory lock: the in-process semaphore, then
// the advisory lock of the .lock file, waiting at most LockTimeout.
func (r *Registry) locked(ctx context.Context, fn func() error) error {
	return r.lockedIn(ctx, true, fn)
}

// lockedIn is locked; mkdir says whether to make the directory again if it
// is gone (a writer needs it; the collector has nothing to do then).
func (r *Registry) lockedIn(ctx context.Context, mkdir bool, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.LockTimeout)
	defer cancel()
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the lock of %s: %w", r.opts.Dir, ctx.Err())
	}
	defer func() { <-r.sem }()
	if !mkdir {
		if _, err := os.Lstat(r.opts.Dir); err != nil {
			return err
		}
	} else if err := os.MkdirAll(r.opts.Dir, 0o700); err != nil { // removed under us?
		return err
	}
	// Never through a link: one planted there would make us create or
	// lock its target.
	f, err := os.OpenFile(filepath.Join(r.opts.Dir, lockName), os.O_RDWR|os.O_CREATE|openNoFollow, 0o600)
	if isLoop(err) {
		return fmt.Errorf("%s is a symbolic link, which the registry does not follow (remove it)", filepath.Join(r.opts.Dir, lockName))
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		err := tryLock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errLocked) {
			return fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s is held by another process: %w", f.Name(), ctx.Err())
		}
	}
	defer unlock(f)
	return fn()
}

// writeFile atomically replaces the file name with data: temporary file in
// the same directory, fsync, rename.
func (r *Registry) writeFile(name string, data []byte) error {
	return writeFileIn(r.opts.Dir, name, data)
}

// writeFileIn atomically replaces the file name of dir with data.
func writeFileIn(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*") // mode 0600
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

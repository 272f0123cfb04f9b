package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/microbot/microbot/framework/registry"
)

const (
	format    = 1           // the version of the file format written
	ext       = ".json"     // the suffix of node files
	sep       = "@"         // between the service and node parts of a file name
	tmpPrefix = ".tmp-"     // temporary files, renamed into place when complete
	lockName  = ".lock"     // the lock file
	maxFile   = 4 << 20     // larger files are garbage
	maxPart   = 100         // longer escaped names are hashed
	hashMark  = "="         // starts a hashed part; never produced by escape
	grace     = time.Minute // age after which bad and temporary files are removed
	gcEvery   = time.Second // the least time between two collections
)

// record is the content of a node file.
type record struct {
	Format  int               `json:"format"`
	Expires time.Time         `json:"expires,omitzero"` // zero: never
	Pid     int               `json:"pid,omitempty"`    // of the writer, for people reading the files
	Service *registry.Service `json:"service"`          // with exactly one node
}

// fileName is the name of the file of node id of service name.
func fileName(name, id string) string { return part(name) + sep + part(id) + ext }

// servicePrefix is the start of the file names of service name.
func servicePrefix(name string) string { return part(name) + sep }

// part escapes s for a file name: lower-case ASCII letters, digits, '-',
// '_' and (not first) '.' stay; every other byte becomes %XX, so names that
// differ only in case stay apart on case-insensitive file systems and no
// name can hold a path separator, "..", or the separator '@'. An escaped
// part longer than maxPart becomes hashMark and a hash of s.
func part(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() > maxPart {
		sum := sha256.Sum256([]byte(s))
		return hashMark + hex.EncodeToString(sum[:16])
	}
	return b.String()
}

// cached is what a file held when it was last read. It is never changed
// once made, and its svc is shared: by every scan that finds the file
// unchanged, by a new version of the file whose service is the same (a
// refresh changes only the expiry), and by the watch's snapshot. The
// metadata and endpoints of svc are shared too, with every file whose text
// of them is the same (see sharedParts). So nothing that comes out of the
// cache may be changed: callers get copies (registry.Merge, CopyService).
type cached struct {
	key     fileKey
	expires time.Time         // zero: never
	svc     *registry.Service // with its one node; nil if the file is bad
	sum     [sha256.Size]byte // of the service's JSON text
	shared  [3]sharedKey      // of svc's metadata, endpoints and node metadata
	err     error             // why the file is bad
}

func (c *cached) expired(now time.Time) bool { return expired(c.expires, now) }

func expired(expires, now time.Time) bool {
	return !expires.IsZero() && !now.Before(expires)
}

// fileKey identifies a version of a file. A file is never written in place
// (always renamed over), so a new version has a new inode and mtime.
type fileKey struct {
	ino   uint64
	size  int64
	mtime int64 // unix nanoseconds
}

func keyOf(fi fs.FileInfo) fileKey {
	return fileKey{ino: inode(fi), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

// errNewer marks a file written by a newer format: ignored, left alone.
var errNewer = errors.New("written in a newer format")

// file is a node file as read, with the service's parts that many files
// have in common (metadata, endpoints) still as JSON text.
type file struct {
	expires time.Time
	sum     [sha256.Size]byte // of the service's JSON text
	svc     *fileService
}

// envelope, fileService and fileNode read what record wrote.
type envelope struct {
	Format  int             `json:"format"`
	Expires time.Time       `json:"expires"`
	Service json.RawMessage `json:"service"`
}

type fileService struct {
	Name      string          `json:"name"`
	Version   string          `json:"version"`
	Metadata  json.RawMessage `json:"metadata"`
	Endpoints json.RawMessage `json:"endpoints"`
	Nodes     []*fileNode     `json:"nodes"`
}

type fileNode struct {
	ID       string          `json:"id"`
	Address  string          `json:"address"`
	Metadata json.RawMessage `json:"metadata"`
}

// parse reads and checks the content of the file called name.
func parse(name string, data []byte) (*file, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, err
	}
	switch {
	case env.Format > format:
		return nil, fmt.Errorf("%w %d (this program reads %d)", errNewer, env.Format, format)
	case env.Format != format:
		return nil, fmt.Errorf("format %d, want %d", env.Format, format)
	}
	var s *fileService
	if len(env.Service) > 0 {
		if err := json.Unmarshal(env.Service, &s); err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
	}
	switch {
	case s == nil:
		return nil, errors.New("no service")
	case s.Name == "":
		return nil, errors.New("no service name")
	case len(s.Nodes) != 1 || s.Nodes[0] == nil || s.Nodes[0].ID == "":
		return nil, fmt.Errorf("%d nodes, want one with an id", len(s.Nodes))
	}
	if want := fileName(s.Name, s.Nodes[0].ID); want != name {
		return nil, fmt.Errorf("holds node %q of %q, whose file is %s", s.Nodes[0].ID, s.Name, want)
	}
	return &file{expires: env.Expires, sum: sha256.Sum256(env.Service), svc: s}, nil
}

// sharedKey identifies a JSON text shared by files (its SHA-256); zero for
// none.
type sharedKey [sha256.Size]byte

// sharedParts holds one decoded value per distinct JSON text of the parts
// of services that many files have in common: service and node metadata,
// endpoints with their schemas. A thousand services registered by the same
// framework share one copy of their endpoints. Guarded by Registry.mu.
type sharedParts struct {
	maps      map[sharedKey]map[string]string
	endpoints map[sharedKey][]*registry.Endpoint
	kept      int // entries after the last sweep
}

// share returns the value decoded from raw, decoding it only if no file
// seen before had the same text.
func share[V any](m map[sharedKey]V, raw json.RawMessage) (V, sharedKey, error) {
	var v V
	if len(raw) == 0 || string(raw) == "null" {
		return v, sharedKey{}, nil
	}
	k := sharedKey(sha256.Sum256(raw))
	if v, ok := m[k]; ok {
		return v, k, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, sharedKey{}, err
	}
	m[k] = v
	return v, k, nil
}

func newSharedParts() sharedParts {
	return sharedParts{maps: map[sharedKey]map[string]string{}, endpoints: map[sharedKey][]*registry.Endpoint{}}
}

// build makes the service of f, sharing its common parts, or tells why they
// are bad.
func (sp *sharedParts) build(f *fileService) (*registry.Service, [3]sharedKey, error) {
	var keys [3]sharedKey
	var err error
	s := &registry.Service{Name: f.Name, Version: f.Version}
	n := &registry.Node{ID: f.Nodes[0].ID, Address: f.Nodes[0].Address}
	if s.Metadata, keys[0], err = share(sp.maps, f.Metadata); err != nil {
		return nil, keys, fmt.Errorf("service metadata: %w", err)
	}
	if s.Endpoints, keys[1], err = share(sp.endpoints, f.Endpoints); err != nil {
		return nil, keys, fmt.Errorf("endpoints: %w", err)
	}
	if n.Metadata, keys[2], err = share(sp.maps, f.Nodes[0].Metadata); err != nil {
		return nil, keys, fmt.Errorf("node metadata: %w", err)
	}
	s.Nodes = []*registry.Node{n}
	return s, keys, nil
}

// store puts what the version key of the file name holds in the cache and
// returns the entry. f is the file as parsed, or nil and the error that
// makes it bad. Runs under r.mu.
func (r *Registry) store(name string, key fileKey, f *file, err error) *cached {
	old := r.cache[name]
	if old != nil && old.key == key {
		return old // read by another scan meanwhile
	}
	c := &cached{key: key, err: err}
	switch {
	case err != nil:
	case old != nil && old.svc != nil && old.sum == f.sum:
		// A refresh: only the expiry changed.
		c.expires, c.sum, c.svc, c.shared = f.expires, f.sum, old.svc, old.shared
	default:
		c.expires, c.sum = f.expires, f.sum
		c.svc, c.shared, c.err = r.shared.build(f.svc)
	}
	r.cache[name] = c
	r.sweep()
	return c
}

// sweep forgets the shared parts no cached file holds any more, once there
// are many more of them than after the last sweep. Runs under r.mu.
func (r *Registry) sweep() {
	sp := &r.shared
	if len(sp.maps)+len(sp.endpoints) <= 2*sp.kept+64 {
		return
	}
	used := map[sharedKey]bool{}
	for _, c := range r.cache {
		for _, k := range c.shared {
			used[k] = true
		}
	}
	maps.DeleteFunc(sp.maps, func(k sharedKey, _ map[string]string) bool { return !used[k] })
	maps.DeleteFunc(sp.endpoints, func(k sharedKey, _ []*registry.Endpoint) bool { return !used[k] })
	sp.kept = len(sp.maps) + len(sp.endpoints)
}

// scan reads the live nodes of the files whose names start with prefix (all
// if empty) and calls f with each file's name and cache entry (not to be
// changed), in file name order (so the nodes of a service come one after
// the other). It returns the earliest expiry among them (zero if none
// expires). Files that are bad, expired or left over are removed in the
// background.
func (r *Registry) scan(prefix string, f func(name string, c *cached)) (next time.Time, err error) {
	names, err := r.names()
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil // nothing registered yet
	}
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	var garbage []string
	from := 0
	if prefix != "" { // names are sorted: the service's files are together
		from, _ = slices.BinarySearch(names, prefix)
	}
	for _, name := range names[from:] {
		if prefix != "" && !strings.HasPrefix(name, prefix) {
			break
		}
		if strings.HasPrefix(name, tmpPrefix) {
			if prefix == "" {
				if fi, err := os.Lstat(filepath.Join(r.opts.Dir, name)); err == nil && now.Sub(fi.ModTime()) > grace {
					garbage = append(garbage, name)
				}
			}
			continue
		}
		if !ours(name) {
			continue
		}
		c, bad := r.live(name, now)
		if bad {
			garbage = append(garbage, name)
		}
		if c == nil {
			continue
		}
		f(name, c)
		if !c.expires.IsZero() && (next.IsZero() || c.expires.Before(next)) {
			next = c.expires
		}
	}
	r.prune(names)
	if len(garbage) > 0 {
		r.collect(garbage)
	}
	return next, nil
}

// services returns the services of the cache entries scan finds.
func (r *Registry) services(prefix string) (parts []*registry.Service, next time.Time, err error) {
	next, err = r.scan(prefix, func(_ string, c *cached) { parts = append(parts, c.svc) })
	return parts, next, err
}

// ours reports whether name is the name of a node file (not a temporary
// file, the lock, or anything else).
func ours(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ext) && strings.Contains(name, sep)
}

// live returns the cache entry of the node file name if it is live: not
// gone, bad or expired. garbage reports whether the file is to be removed:
// expired, or bad for longer than the grace period.
func (r *Registry) live(name string, now time.Time) (c *cached, garbage bool) {
	c, old := r.load(name, now)
	switch {
	case c == nil:
		return nil, old
	case c.expired(now):
		return nil, true
	}
	return c, false
}

// racy is how long after the directory last changed its list of names is
// read again on every scan, however unchanged its stamp: a change made in
// the same tick of the file system's clock as the one before it leaves the
// modification time as it was. File systems whose times are in whole
// seconds (or two, FAT) get 2 s more.
const racy = 100 * time.Millisecond

// trusted reports whether l is the list of names of a directory whose stamp
// is st.
func (l *listing) trusted(st dirStamp) bool {
	window := racy
	if st.mtime%int64(time.Second) == 0 {
		window += 2 * time.Second
	}
	return l != nil && l.stamp == st && st.mtime < l.at.Add(-window).UnixNano()
}

// listing is the directory's list of names as last read.
type listing struct {
	stamp dirStamp
	at    time.Time // when the reading started
	names []string  // sorted; never changed once made
}

// names returns the names in the directory, sorted. The caller must not
// change the slice. The list is read again only if the directory has
// changed (its stamp) since the last time, or changed just before it
// (racy), or if the registry polls only (a network file system, whose
// stamps may lag).
func (r *Registry) names() ([]string, error) {
	fi, err := os.Stat(r.opts.Dir)
	if err != nil {
		return nil, err
	}
	st, ok := stamp(fi)
	ok = ok && r.opts.Notify
	start := time.Now()
	if ok {
		r.mu.Lock()
		l := r.listing
		r.mu.Unlock()
		if l.trusted(st) {
			return l.names, nil
		}
	}
	f, err := os.Open(r.opts.Dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	if ok {
		// The stamp was taken before the reading: a change in between
		// makes the next stamp differ, and the list is read again.
		r.mu.Lock()
		r.listing = &listing{stamp: st, at: start, names: names}
		r.mu.Unlock()
	}
	return names, nil
}

// load returns the cache entry of the file name, read again if the file
// has changed, or nil if the file is gone or bad. For a bad file, old
// reports whether it is older than the grace period.
func (r *Registry) load(name string, now time.Time) (c *cached, old bool) {
	path := filepath.Join(r.opts.Dir, name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false // removed since it was listed, or not a file (a link)
	}
	key := keyOf(fi)
	if !r.opts.Shared {
		if uid, ok := owner(fi); ok && uid != os.Getuid() {
			r.warn(name, key, fmt.Errorf("owned by uid %d, not this user (%d): another user's registration is not trusted without --registry_shared_dir", uid, os.Getuid()))
			return nil, false
		}
	}
	r.mu.Lock()
	c = r.cache[name]
	r.mu.Unlock()
	if c == nil || c.key != key {
		var f *file
		var data []byte
		if fi.Size() > maxFile {
			err = fmt.Errorf("%d bytes, more than %d", fi.Size(), maxFile)
		} else if data, err = readFile(path, fi); errors.Is(err, fs.ErrNotExist) {
			return nil, false
		} else if err == nil {
			f, err = parse(name, data)
		}
		r.mu.Lock()
		c = r.store(name, key, f, err)
		r.mu.Unlock()
	}
	if c.err != nil {
		r.warn(name, key, c.err)
		return nil, !errors.Is(c.err, errNewer) && now.Sub(fi.ModTime()) > grace
	}
	return c, false
}

// readFile reads the node file at path, which Lstat said is fi: not
// through a symbolic link, and only if it is still that file (a file
// replaced in between is as if removed: the next scan reads it).
func readFile(path string, fi fs.FileInfo) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNoFollow, 0)
	if isLoop(err) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	now, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(now, fi) {
		return nil, fs.ErrNotExist
	}
	return io.ReadAll(io.LimitReader(f, maxFile+1))
}

// warn logs a bad file once per version of the file.
func (r *Registry) warn(name string, key fileKey, err error) {
	r.mu.Lock()
	done := r.warned[name] == key
	r.warned[name] = key
	r.mu.Unlock()
	if !done {
		r.opts.Logger.Warn("local registry: ignoring a bad file", "file", filepath.Join(r.opts.Dir, name), "err", err)
	}
}

// prune forgets the files that are no longer in the directory, once the
// cache holds many more of them than the directory.
func (r *Registry) prune(names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache)+len(r.warned) <= 2*len(names)+64 {
		return
	}
	present := make(map[string]bool, len(names))
	for _, name := range names {
		present[name] = true
	}
	for name := range r.cache {
		if !present[name] {
			delete(r.cache, name)
		}
	}
	for name := range r.warned {
		if !present[name] {
			delete(r.warned, name)
		}
	}
}

// collect removes, in the background, the files among names that are still
// expired, bad or left over when looked at again under the directory lock
// (a refresh may have come in between). At most one collection runs at a
// time, and at most one starts per gcEvery.
// Once the Registry is closed, none starts.
func (r *Registry) collect(names []string) {
	if time.Since(time.Unix(0, r.gcLast.Load())) < gcEvery || !r.gcBusy.CompareAndSwap(false, true) {
		return
	}
	r.bgMu.Lock()
	if r.closed {
		r.bgMu.Unlock()
		r.gcBusy.Store(false)
		return
	}
	r.bg.Add(1)
	r.bgMu.Unlock()
	r.gcLast.Store(time.Now().UnixNano())
	go func() {
		defer r.bg.Done()
		defer r.gcBusy.Store(false)
		if r.collecting != nil {
			r.collecting()
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.LockTimeout)
		defer cancel()
		removed := 0
		err := r.lockedIn(ctx, false, func() error {
			now := time.Now()
			for _, name := range names {
				if r.isGarbage(name, now) {
					if err := os.Remove(filepath.Join(r.opts.Dir, name)); err == nil {
						removed++
					}
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // the directory gone: nothing to remove
			r.opts.Logger.Warn("local registry: removing expired files", "dir", r.opts.Dir, "err", err)
		}
		if removed > 0 {
			r.opts.Logger.Debug("local registry: removed expired or bad files", "dir", r.opts.Dir, "count", removed)
			r.poke(names...)
		}
	}()
}

// isGarbage reads the file name afresh and reports whether it is expired,
// bad for longer than the grace period, or a temporary file left over.
func (r *Registry) isGarbage(name string, now time.Time) bool {
	path := filepath.Join(r.opts.Dir, name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	old := now.Sub(fi.ModTime()) > grace
	if strings.HasPrefix(name, tmpPrefix) {
		return old
	}
	if fi.Size() > maxFile {
		return old
	}
	data, err := readFile(path, fi)
	if err != nil {
		return false
	}
	f, err := parse(name, data)
	if err == nil {
		sp := newSharedParts()
		_, _, err = sp.build(f.svc)
	}
	if err != nil {
		return old && !errors.Is(err, errNewer)
	}
	return expired(f.expires, now)
}

package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

func (r *record) expired(now time.Time) bool {
	return !r.Expires.IsZero() && !now.Before(r.Expires)
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

// cached is what a file held when it was last read.
type cached struct {
	key string  // identifies the file's version: inode, size, mtime
	rec *record // nil if the file was bad
	err error   // why it was bad
}

// fileKey identifies a version of a file. A file is never written in place
// (always renamed over), so a new version has a new inode and mtime.
func fileKey(fi fs.FileInfo) string {
	return fmt.Sprintf("%d/%d/%d", inode(fi), fi.Size(), fi.ModTime().UnixNano())
}

// errNewer marks a file written by a newer format: ignored, left alone.
var errNewer = errors.New("written in a newer format")

// decode parses and checks the content of the file called name.
func decode(name string, data []byte) (*record, error) {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, err
	}
	switch {
	case rec.Format > format:
		return nil, fmt.Errorf("%w %d (this program reads %d)", errNewer, rec.Format, format)
	case rec.Format != format:
		return nil, fmt.Errorf("format %d, want %d", rec.Format, format)
	case rec.Service == nil:
		return nil, errors.New("no service")
	case rec.Service.Name == "":
		return nil, errors.New("no service name")
	case len(rec.Service.Nodes) != 1 || rec.Service.Nodes[0] == nil || rec.Service.Nodes[0].ID == "":
		return nil, fmt.Errorf("%d nodes, want one with an id", len(rec.Service.Nodes))
	}
	if want := fileName(rec.Service.Name, rec.Service.Nodes[0].ID); want != name {
		return nil, fmt.Errorf("holds node %q of %q, whose file is %s", rec.Service.Nodes[0].ID, rec.Service.Name, want)
	}
	return &rec, nil
}

// scan reads the live nodes of the files whose names start with prefix (all
// if empty). It returns one Service per node and the earliest expiry among
// them (zero if none expires). Files that are bad, expired or left over are
// removed in the background.
func (r *Registry) scan(prefix string) (parts []*registry.Service, next time.Time, err error) {
	names, err := r.names()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, nil // nothing registered yet
	}
	if err != nil {
		return nil, time.Time{}, err
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
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ext) || !strings.Contains(name, sep) {
			continue // not ours
		}
		rec, old := r.load(name, now)
		switch {
		case rec == nil:
			if old {
				garbage = append(garbage, name)
			}
		case rec.expired(now):
			garbage = append(garbage, name)
		default:
			parts = append(parts, rec.Service)
			if !rec.Expires.IsZero() && (next.IsZero() || rec.Expires.Before(next)) {
				next = rec.Expires
			}
		}
	}
	r.prune(names)
	if len(garbage) > 0 {
		r.collect(garbage)
	}
	return parts, next, nil
}

// racy is how long after the directory last changed its list of names is
// read again on every scan, however unchanged its stamp: a change made in
// the same tick of the file system's clock as the one before it leaves the
// modification time as it was.
const racy = 100 * time.Millisecond

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
		if l != nil && l.stamp == st && st.mtime < l.at.Add(-racy).UnixNano() {
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

// load returns the record of the file name, from the cache if the file has
// not changed, or nil if the file is gone or bad. For a bad file, old
// reports whether it is older than the grace period.
func (r *Registry) load(name string, now time.Time) (rec *record, old bool) {
	path := filepath.Join(r.opts.Dir, name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false // removed since it was listed, or not a file
	}
	key := fileKey(fi)
	r.mu.Lock()
	c, ok := r.cache[name]
	r.mu.Unlock()
	if !ok || c.key != key {
		c = cached{key: key}
		var data []byte
		if fi.Size() > maxFile {
			c.err = fmt.Errorf("%d bytes, more than %d", fi.Size(), maxFile)
		} else if data, err = os.ReadFile(path); errors.Is(err, fs.ErrNotExist) {
			return nil, false
		} else if err != nil {
			c.err = err
		} else {
			c.rec, c.err = decode(name, data)
		}
		r.mu.Lock()
		r.cache[name] = c
		r.mu.Unlock()
	}
	if c.err != nil {
		r.warn(name, key, c.err)
		return nil, !errors.Is(c.err, errNewer) && now.Sub(fi.ModTime()) > grace
	}
	return c.rec, false
}

// warn logs a bad file once per version of the file.
func (r *Registry) warn(name, key string, err error) {
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
func (r *Registry) collect(names []string) {
	if time.Since(time.Unix(0, r.gcLast.Load())) < gcEvery || !r.gcBusy.CompareAndSwap(false, true) {
		return
	}
	r.gcLast.Store(time.Now().UnixNano())
	go func() {
		defer r.gcBusy.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.LockTimeout)
		defer cancel()
		removed := 0
		err := r.locked(ctx, func() error {
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
		if err != nil {
			r.opts.Logger.Warn("local registry: removing expired files", "dir", r.opts.Dir, "err", err)
		}
		if removed > 0 {
			r.opts.Logger.Debug("local registry: removed expired or bad files", "dir", r.opts.Dir, "count", removed)
			r.poke()
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
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	rec, err := decode(name, data)
	if err != nil {
		return old && !errors.Is(err, errNewer)
	}
	return rec.expired(now)
}

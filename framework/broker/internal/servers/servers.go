// Package servers checks the server addresses of the nats and mqtt brokers
// and shows them in messages without their passwords.
package servers

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/microbot/microbot/framework/broker"
)

// URLs returns addrs as URLs, with scheme def where an address has none
// ("host:port"). An address that is not host:port with one of schemes is
// refused with an error wrapping broker.ErrInvalid, which names the broker
// (kind) and the address, its password hidden. The caller's slice is left
// alone.
func URLs(kind string, addrs []string, def string, schemes ...string) ([]string, error) {
	out := make([]string, len(addrs))
	for i, addr := range addrs {
		a := strings.TrimSpace(addr)
		if !strings.Contains(a, "://") {
			a = def + "://" + a
		}
		u, err := url.Parse(a)
		if err != nil || u.Host == "" || u.Port() == "" || u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("%s broker: %w address %q: want host:port or %s://host:port", kind, broker.ErrInvalid, Redact(addr), def)
		}
		if !slices.Contains(schemes, u.Scheme) {
			return nil, fmt.Errorf("%s broker: %w address %q: scheme %q (want %s)", kind, broker.ErrInvalid, Redact(addr), u.Scheme, strings.Join(schemes, ", "))
		}
		out[i] = u.String()
	}
	return out, nil
}

// Redact hides the password or token of an address.
func Redact(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return addr
}

// List returns addrs, redacted, comma-separated.
func List(addrs []string) string {
	r := make([]string, len(addrs))
	for i, a := range addrs {
		r[i] = Redact(a)
	}
	return strings.Join(r, ",")
}

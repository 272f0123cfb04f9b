package servers

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/microbot/microbot/framework/broker"
)

func TestURLs(t *testing.T) {
	in := []string{"127.0.0.1:4222", " nats://h:1 ", "tls://u:secret@h:2"}
	got, err := URLs("nats", in, "nats", "nats", "tls")
	if err != nil || !slices.Equal(got, []string{"nats://127.0.0.1:4222", "nats://h:1", "tls://u:secret@h:2"}) {
		t.Fatalf("URLs = %q, %v", got, err)
	}
	if in[1] != " nats://h:1 " {
		t.Error("the caller's slice was changed")
	}
	if l := List(got); strings.Contains(l, "secret") || !strings.Contains(l, "REDACTED") {
		t.Errorf("List shows the password: %s", l)
	}
	for _, bad := range []string{"h", "h:", "nats:///", "http://h:1", "nats://h:1/path", "tls://u:secret@h"} {
		_, err := URLs("nats", []string{bad}, "nats", "nats", "tls")
		if !errors.Is(err, broker.ErrInvalid) || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "nats broker") {
			t.Errorf("URLs(%q) = %v, want ErrInvalid naming the broker, without the password", bad, err)
		}
	}
}

package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/microbot/microbot/framework/broker"
)

func TestValidateTopic(t *testing.T) {
	tests := []struct {
		topic string
		want  string // "" when valid, else part of the error
	}{
		{"alerts", ""},
		{"go.micro.srv.message", ""},
		{"a-b_c.D9", ""},
		{strings.Repeat("a", broker.MaxNameLen), ""},
		{"", "empty"},
		{strings.Repeat("a", broker.MaxNameLen+1), "at most 255"},
		{"a..b", "empty part at byte 2"},
		{".a", "empty part at byte 0"},
		{"a.", "empty part at byte 2"},
		{"a b", `character ' ' at byte 1`},
		{"a/b", `character '/'`},
		{"a.*", "wildcard '*'"},
		{"a.>", "wildcard '>'"},
		{"a/+", `character '/'`},
		{"sensors.#", "wildcard '#'"},
		{"$SYS.x", `character '$'`},
		{"température", `character 'é'`},
	}
	for _, tt := range tests {
		err := broker.ValidateTopic(tt.topic)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateTopic(%.20q) = %v", tt.topic, err)
		case tt.want != "" && (!errors.Is(err, broker.ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateTopic(%.20q) = %v, want ErrInvalid saying %q", tt.topic, err, tt.want)
		}
	}
	if err := broker.ValidateQueue(broker.BroadcastVersion); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("ValidateQueue(%q) = %v", broker.BroadcastVersion, err)
	}
}

func TestValidateHeader(t *testing.T) {
	tests := []struct {
		h    map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"Content-Type": "application/json", "Micro-Id": "x", "a!#$%&'*+-.^_`|~": "any value, even ü"}, ""},
		{map[string]string{"": "x"}, "empty name"},
		{map[string]string{"Bad Name": "x"}, `character ' '`},
		{map[string]string{":topic": "x"}, `character ':'`},
		{map[string]string{"X": "a\r\nInjected: yes"}, `holds '\r'`},
		{map[string]string{"X": "a\x00"}, `holds '\x00'`},
		{map[string]string{"X": strings.Repeat("v", broker.MaxHeaderBytes)}, "over 65536 bytes"},
	}
	for _, tt := range tests {
		err := broker.ValidateHeader(tt.h)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateHeader(%.40v) = %v", tt.h, err)
		case tt.want != "" && (!errors.Is(err, broker.ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateHeader(%.40v) = %v, want ErrInvalid saying %q", tt.h, err, tt.want)
		}
	}
}

func BenchmarkValidateHeader(b *testing.B) {
	h := map[string]string{"Content-Type": "application/protobuf", "Micro-Id": "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50", "Micro-Topic": "go.micro.srv.alerts"}
	for b.Loop() {
		if err := broker.ValidateHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTopicOfService(t *testing.T) {
	for _, tt := range []struct {
		name, topic string
		ok          bool
	}{
		{"topic:alerts", "alerts", true},
		{"topic:go.micro.bot.progress.ab", "go.micro.bot.progress.ab", true},
		{"go.micro.srv.greeter", "", false},
		{"Topic:alerts", "", false}, // go-micro writes it in lower case
	} {
		if topic, ok := broker.TopicOfService(tt.name); topic != tt.topic || ok != tt.ok {
			t.Errorf("TopicOfService(%q) = %q, %v; want %q, %v", tt.name, topic, ok, tt.topic, tt.ok)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	h := map[string]string{"Content-Type": "a", "micro-progress-run": "b"}
	for name, want := range map[string]string{"Content-Type": "a", "content-type": "a", "Micro-Progress-Run": "b", "Micro-Id": ""} {
		if got := broker.HeaderValue(h, name); got != want {
			t.Errorf("HeaderValue(%q) = %q, want %q", name, got, want)
		}
	}
}

package memory_test

import (
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/registry/registrytest"
)

func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry { return memory.New() }, registrytest.TTL(time.Second))
}

func TestPlugin(t *testing.T) {
	r, err := registry.New("memory")
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != "memory" {
		t.Fatalf("String() = %q, want memory", r.String())
	}
}

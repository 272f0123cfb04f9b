package memory_test

import (
	"testing"
	"time"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/memory"
	"github.com/microbot/microbot/framework/registry/registrytest"
)

func TestConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry { return memory.New() }, registrytest.WithTTL(time.Second))
}

func TestKVConformance(t *testing.T) {
	registrytest.RunKV(t, func(t *testing.T) (registry.KV, registry.KV) {
		kv, ok := registry.KVOf(memory.New())
		if !ok {
			t.Fatal("the memory registry has no KV store")
		}
		return kv, kv
	})
}

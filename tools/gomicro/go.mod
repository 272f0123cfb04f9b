module github.com/microbot/microbot/tools/gomicro

go 1.12

require (
	github.com/golang/protobuf v1.3.2
	github.com/micro/cli v0.2.0
	github.com/micro/go-micro v1.8.0
)

// No multicast from the tests: go-micro v1.8.0 builds network/router's
// DefaultRouter when its packages are initialised (go-micro's cmd imports
// client/selector/router, which imports network/router), before main can
// pick a registry, and that router lists and watches registry.DefaultRegistry,
// the mDNS registry: every program sent mDNS queries to 224.0.0.251 and
// ff02::fb and joined those groups on every interface, although the tests
// start it with --registry=consul and use loopback only. ./nomdns has the API
// of the mDNS library go-micro's mDNS registry uses and opens no socket;
// nothing else changes (the Consul registry, http transport and broker,
// client, server and codecs are go-micro's own). gomicrotest fails a test
// whose binaries were built without it, or whose programs hold a UDP socket.
replace github.com/micro/mdns => ./nomdns

// go-micro v1.16.0 with go-plugins v1.5.1's MQTT broker (paho v1.2.0), for
// microbot's tests of its mqtt broker against the real go-plugins one
// (internal/gomicrotest, framework/events_gomicro_test.go): a publisher and
// a subscriber, the shape of ../cmd/publisher and ../cmd/subscriber; and
// with go-plugins v1.5.1's Consul registry (go-micro v1.16.0 has none of its
// own), for microbot's RPC and registry tests: a greeter, a command service
// and a client, the shape of ../cmd/greeter, command and client. Its own
// module because go-plugins v1.5.1 requires go-micro v1.16.0, and ../go.mod
// stays on go-micro v1.8.0. Built by .ci/setup.d/gomicro.sh into
// ../bin/plugins/.
module github.com/microbot/microbot/tools/gomicro/plugins

go 1.12

require (
	github.com/golang/protobuf v1.3.2
	github.com/micro/cli v0.2.0
	github.com/micro/go-micro v1.16.0
	github.com/micro/go-plugins v1.5.1
)

// No multicast from the tests, as in ../go.mod: go-micro v1.16.0's default
// registry is mDNS, and its mDNS library is replaced by ../nomdns, which
// opens no socket (the programs run with --registry=memory all the same).
replace github.com/micro/mdns => ../nomdns

// go-micro v1.16.0's config/cmd links its QUIC transport into every
// program, and quic-go v0.12.1 panics in init() on Go 1.26 ("qtls.
// ConnectionState not compatible with tls.ConnectionState"): ../noquic has
// the API go-micro's transport/quic uses and speaks no QUIC. The tests use
// the http transport.
replace github.com/lucas-clemente/quic-go => ../noquic

// go-plugins v1.5.1 is one module for every plugin and requires go-bson
// (for codec/bsonrpc) at a version whose go.mod the module proxy refuses
// (403); ./nobson is an empty module of that name. Nothing here imports it.
replace github.com/asim/go-bson v0.0.0-20160318195205-84522947cabd => ./nobson

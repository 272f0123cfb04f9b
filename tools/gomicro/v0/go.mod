module github.com/microbot/microbot/tools/gomicro/v0

go 1.12

require (
	github.com/golang/protobuf v1.2.0
	github.com/hashicorp/consul v1.4.2
	github.com/micro/cli v0.1.0
	github.com/micro/go-log v0.1.0
	github.com/micro/go-micro v0.23.0
	github.com/micro/go-rcache v0.1.0
	github.com/micro/mdns v0.1.0
	github.com/micro/util v0.1.0
	github.com/mitchellh/hashstructure v1.0.0
	github.com/pborman/uuid v1.2.0
	github.com/pkg/errors v0.8.1
	golang.org/x/net v0.0.0-20190125091013-d26f9f9a57f3
)

// go-rcache v0.1.0 requires go-micro v0.23.0, which the module graph would
// otherwise pick; this module is about go-micro v0.10.0 (July 2018), the
// last line of go-micro before v0.22 wrote protocol=mucp and moved to the
// current framing.
replace github.com/micro/go-micro => github.com/micro/go-micro v0.10.0

// No multicast from the tests, as in ../go.mod: go-micro v0.10.0 only
// speaks mDNS when its registry is mDNS (the tests give --registry=consul),
// but its mDNS library is replaced all the same by ../nomdns, which opens no
// socket, so that no start of these programs can send it.
replace github.com/micro/mdns => ../nomdns

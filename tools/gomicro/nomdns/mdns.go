// Package mdns stands in for github.com/micro/mdns, the multicast DNS
// library of go-micro's default (mDNS) registry, in the go-micro programs
// microbot's tests run (tools/gomicro, go-micro v1.8.0; tools/gomicro/v0,
// go-micro v0.10.0; tools/gomicro/plugins, go-micro v1.16.0), through a
// replace in their go.mod.
//
// Why: go-micro v1.8.0 builds network/router's DefaultRouter when the
// package is initialised, before main can pick a registry, and that router
// lists and watches registry.DefaultRegistry, the mDNS one: every program
// sent mDNS queries for _services.local. to 224.0.0.251 and ff02::fb and
// joined those groups on every interface, although the tests start it with
// --registry=consul. The tests use loopback only.
//
// This package has the API go-micro's mDNS registry uses (Query, Listen,
// Lookup, NewServer, NewMDNSService, DNSSDService and their types) and
// opens no socket, looks no name up and starts no goroutine: a query finds
// nothing after waiting its time as the real one does, a server answers
// nothing, a listener waits until it is told to stop. The methods that speak
// DNS messages (Zone's Records, Server.SendMulticast) are left out, so this
// module needs no dependency; nothing in go-micro calls them.
package mdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// ServiceEntry is a service found by a query; none is ever found.
type ServiceEntry struct {
	Name       string
	Host       string
	AddrV4     net.IP
	AddrV6     net.IP
	Port       int
	Info       string
	InfoFields []string
	TTL        int

	Addr net.IP // Deprecated: AddrV4 or AddrV6.
}

// QueryParam is what a query looks for and how long it waits.
type QueryParam struct {
	Service             string               // service to look up
	Domain              string               // lookup domain, default "local"
	Context             context.Context      // ends the query; else Timeout
	Timeout             time.Duration        // how long the query waits, default 1 s; ignored if Context is set
	Interface           *net.Interface       // multicast interface (unused)
	Entries             chan<- *ServiceEntry // where found entries would go
	WantUnicastResponse bool                 // unused
}

// DefaultParams returns the parameters of a query for service, as the real
// library's: domain "local", 1 s.
func DefaultParams(service string) *QueryParam {
	return &QueryParam{
		Service: service,
		Domain:  "local",
		Timeout: time.Second,
		Entries: make(chan *ServiceEntry),
	}
}

// Query waits as long as a real query would wait for answers (until
// params.Context is done, or params.Timeout, 1 s if zero, has passed),
// sends nothing on the network and no entry on params.Entries, and returns
// nil.
func Query(params *QueryParam) error {
	if params.Domain == "" {
		params.Domain = "local"
	}
	ctx := params.Context
	if ctx == nil {
		timeout := params.Timeout
		if timeout == 0 {
			timeout = time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
		defer cancel()
	}
	<-ctx.Done()
	return nil
}

// Lookup is Query with the default parameters, its entries going to
// entries.
func Lookup(service string, entries chan<- *ServiceEntry) error {
	params := DefaultParams(service)
	params.Entries = entries
	return Query(params)
}

// Listen waits until exit is closed, without listening to anything, and
// returns nil; nothing is sent on entries.
func Listen(entries chan<- *ServiceEntry, exit chan struct{}) error {
	<-exit
	return nil
}

// Zone is what a Server would answer for: in the real library, an
// interface answering DNS questions; a Server here answers none, so any
// value (an *MDNSService, a *DNSSDService) is a Zone.
type Zone interface{}

// Config configures a Server.
type Config struct {
	// Zone is what the server would answer for.
	Zone Zone
	// Iface is the interface it would listen on (unused).
	Iface *net.Interface
}

// Server is an mDNS server that never listens nor answers.
type Server struct{}

// NewServer returns a Server for config; it opens nothing.
func NewServer(config *Config) (*Server, error) {
	if config == nil {
		return nil, errors.New("mdns: no config")
	}
	return &Server{}, nil
}

// Shutdown stops the server (there is nothing to stop); it can be called
// more than once.
func (s *Server) Shutdown() error { return nil }

// MDNSService describes a service a Server would announce.
type MDNSService struct {
	Instance string   // instance name (e.g. "hostService name")
	Service  string   // service name (e.g. "_http._tcp.")
	Domain   string   // "local." if blank
	HostName string   // host's DNS name (e.g. "mymachine.net.")
	Port     int      // service port
	IPs      []net.IP // addresses of the service's host
	TXT      []string // TXT records
	TTL      uint32
}

// defaultTTL is the TTL of a new MDNSService's records, in seconds, as the
// real library's.
const defaultTTL = 120

// NewMDNSService checks its arguments as the real library does and returns
// the service they describe. Unlike the real library it looks no address
// up: with no ips, the service has none.
func NewMDNSService(instance, service, domain, hostName string, port int, ips []net.IP, txt []string) (*MDNSService, error) {
	if instance == "" {
		return nil, errors.New("missing service instance name")
	}
	if service == "" {
		return nil, errors.New("missing service name")
	}
	if port == 0 {
		return nil, errors.New("missing service port")
	}
	if domain == "" {
		domain = "local."
	}
	if !strings.HasSuffix(domain, ".") {
		return nil, fmt.Errorf("domain %q is not a fully-qualified domain name: FQDN must end in period", domain)
	}
	if hostName == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("could not determine host: %v", err)
		}
		hostName = h + "."
	}
	if !strings.HasSuffix(hostName, ".") {
		return nil, fmt.Errorf("hostName %q is not a fully-qualified domain name: FQDN must end in period", hostName)
	}
	for _, ip := range ips {
		if ip.To4() == nil && ip.To16() == nil {
			return nil, fmt.Errorf("invalid IP address in IPs list: %v", ip)
		}
	}
	return &MDNSService{
		Instance: instance,
		Service:  service,
		Domain:   domain,
		HostName: hostName,
		Port:     port,
		IPs:      ips,
		TXT:      txt,
		TTL:      defaultTTL,
	}, nil
}

// DNSSDService is an MDNSService announced for DNS-SD browsing as well.
type DNSSDService struct {
	MDNSService *MDNSService
}

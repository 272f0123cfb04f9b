package consul_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/registry/consul"
	"github.com/microbot/microbot/framework/registry/consul/consultest"
	"github.com/microbot/microbot/internal/testenv"
)

// setTLSEnv sets Consul's TLS environment variables for the test; an empty
// value unsets one.
func setTLSEnv(t *testing.T, ssl, ca, cert, key string) {
	t.Helper()
	for k, v := range map[string]string{
		api.HTTPSSLEnvName:       ssl,
		api.HTTPCAFile:           ca,
		api.HTTPCAPath:           "",
		api.HTTPClientCert:       cert,
		api.HTTPClientKey:        key,
		api.HTTPTLSServerName:    "",
		api.HTTPSSLVerifyEnvName: "",
		api.HTTPTokenEnvName:     "",
		api.HTTPTokenFileEnvName: "",
	} {
		t.Setenv(k, v)
	}
}

// TestTLS runs an agent serving its HTTP API over HTTPS only, with a
// certificate from a test CA, requiring client certificates. With Consul's
// TLS environment variables (CONSUL_HTTP_SSL, CONSUL_CACERT,
// CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY) the registry, a greeter process
// and a watcher work; without the CA, without the client certificate, or
// speaking plain HTTP, every call fails by itself with an error naming the
// agent and the TLS failure.
func TestTLS(t *testing.T) {
	agent := consultest.Start(t, consultest.WithTLS())
	files := agent.TLS()
	ctx := ctxT(t)
	bin := testenv.Build(t, "github.com/microbot/microbot/examples/greeter")

	setTLSEnv(t, "true", files.CAFile, files.CertFile, files.KeyFile)
	r := newRegistry(t, consul.WithAddrs(agent.Addr()))
	w, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ws := follow(t, w)
	startGreeter(t, bin, "greeter-tls", agent.Addr(), agent.Env()...)
	expectNodes(t, r, greeterName, "greeter-tls")
	ws.expect(t, "greeter-tls")
	c, err := client.New(client.WithRegistry(r))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := hello(ctx, c, "TLS"); err != nil {
		t.Fatal(err)
	}
	// An https:// address needs no CONSUL_HTTP_SSL.
	setTLSEnv(t, "", files.CAFile, files.CertFile, files.KeyFile)
	expectNodes(t, newRegistry(t, consul.WithAddrs(agent.URL())), greeterName, "greeter-tls")

	tests := []struct {
		name               string
		ssl, ca, cert, key string
		want               string
	}{
		{"no CA", "true", "", files.CertFile, files.KeyFile, "certificate signed by unknown authority"},
		{"no client certificate", "true", files.CAFile, "", "", "certificate required"},
		{"plain HTTP", "", files.CAFile, files.CertFile, files.KeyFile, "HTTP request to an HTTPS server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setTLSEnv(t, tt.ssl, tt.ca, tt.cert, tt.key)
			r := newRegistry(t, consul.WithAddrs(agent.Addr()), consul.WithTimeout(10*time.Second))
			calls := map[string]func() error{
				"GetService":   func() error { _, err := r.GetService(ctx, greeterName); return err },
				"ListServices": func() error { _, err := r.ListServices(ctx); return err },
				"Register":     func() error { return r.Register(ctx, greeter("tls.other", "1", "o-1")) },
				"Watch": func() error {
					w, err := r.Watch(ctx)
					if err != nil {
						return err
					}
					w.Stop()
					return errors.New("watch started") // a watch without its agent retries; Watch itself does not fail
				},
			}
			for name, call := range calls {
				err := call()
				if name == "Watch" {
					continue // checked only for returning
				}
				if name == "GetService" {
					t.Logf("%s: %v", name, err)
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), agent.Addr()) {
					t.Errorf("%s = %v, want an error naming %s and %q", name, err, agent.Addr(), tt.want)
				}
				if errors.Is(err, registry.ErrNotFound) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s = %v: not found or a timeout, want the TLS failure", name, err)
				}
			}
		})
	}
	expectNodes(t, newRegistry(t, consul.WithAddrs(agent.URL())), "tls.other") // nothing was registered
}

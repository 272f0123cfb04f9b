// Command consul-agent is a real HashiCorp Consul agent built from the module
// proxy, used only by microbot's tests of the Consul registry.
//
// It runs the agent command of Consul, so every flag of `consul agent` works:
//
//	consul-agent -dev -client 127.0.0.1 -bind 127.0.0.1 -http-port 8500
//
// .ci/setup.d/consul.sh builds it to tools/consul/consul-agent, where the
// test helper framework/registry/consul/consultest looks for it.
package main

import (
	"os"

	"github.com/hashicorp/consul/command/agent"
	"github.com/hashicorp/consul/command/cli"
	mcli "github.com/mitchellh/cli"
)

func main() {
	ui := &cli.BasicUI{BasicUi: mcli.BasicUi{Reader: os.Stdin, Writer: os.Stdout, ErrorWriter: os.Stderr}}
	os.Exit(agent.New(ui).Run(os.Args[1:]))
}

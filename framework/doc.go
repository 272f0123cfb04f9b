// Package framework is the entry point of microbot's go-micro-like
// framework: a Service bundles a server for its handlers, a client for its
// calls and the registry both use, built once from options set in code and,
// with WithArgs, from flags (each with a MICRO_* environment variable) on the
// command line.
//
// A service in a few lines:
//
//	type Say struct{}
//
//	func (*Say) Hello(ctx context.Context, req *Request, rsp *Response) error {
//		rsp.Msg = "Hello " + req.Name
//		return nil
//	}
//
//	func main() {
//		svc, err := framework.NewService(
//			framework.WithName("go.micro.srv.greeter"),
//			framework.WithArgs(os.Args), // --registry, --registry_address, ...
//		)
//		if errors.Is(err, framework.ErrHelp) {
//			return
//		}
//		if err != nil {
//			log.Fatal(err)
//		}
//		if err := svc.Server().Handle(&Say{}); err != nil {
//			log.Fatal(err)
//		}
//		if err := svc.Run(context.Background()); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// Run starts the server, registers the node with its endpoints, registers
// it again every --register_interval (a failure is logged and retried, not
// fatal), and on SIGINT or SIGTERM deregisters it and drains in-flight
// requests.
//
// Calling a service:
//
//	err := svc.Client().Call(ctx, "go.micro.srv.greeter", "Say.Hello", &Request{Name: "John"}, &rsp)
//
// Events, published and subscribed through the service's broker:
//
//	// in the listening service, before Run (or while it runs)
//	_, err := svc.Server().Subscribe(ctx, "alerts", func(ctx context.Context, a *Alert) error {
//		...
//	}, broker.WithQueue("pager")) // one member of the group gets each message; omit for all
//
//	// anywhere
//	err := svc.Client().Publish(ctx, "alerts", &Alert{Name: "disk full"})
//
// The broker connects when the service first publishes or subscribes
// (within --broker_connect_timeout: a subscriber whose broker is down fails
// to start), reconnects by itself, and is disconnected, its queues
// drained, when the service stops. Package broker states the guarantees.
//
// Registries, selectors and brokers are plugins picked by name from the
// tables in plugins.go (the shape is package internal/plugin's): registries
// "local" (default: a directory shared by the services of one host),
// "memory" (one process) and "consul"; selectors "random" (default) and
// "roundrobin"; brokers "http" (default: subscribers serve an inbox found
// through the registry, as go-micro v1's), "nats", "mqtt" and "memory". See
// [Flags] for the command line, and [FlagOptions] for programs that parse
// their own.
//
// Layers below this package: registry and selector (discovery), broker
// (publish and subscribe), client and server, codec (application/json, application/protobuf), transport
// (HTTP/1.1 with keep-alive; its package documents the wire format) and
// rpcerr (the errors carried between them).
package framework

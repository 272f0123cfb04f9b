// Command protoc-gen-micro is a protoc plugin that generates, for every
// service of a .proto file, a typed client and a typed handler on top of
// microbot's framework/client and framework/server:
//
//	protoc --go_out=. --micro_out=. greeter.proto
//
// writes greeter.pb.go (messages, by protoc-gen-go) and greeter.micro.go
// holding, for "service Greeter":
//
//	type GreeterService interface { ... }            // the client API
//	func NewGreeterService(name string, c *client.Client) GreeterService
//	type GreeterHandler interface { ... }            // the server API
//	func RegisterGreeterHandler(s *server.Server, h GreeterHandler, opts ...server.HandlerOption) error
//
// Method M of service S is the endpoint "S.M" (Go names). Calls are encoded
// as application/protobuf unless the caller passes another content type.
// Only unary methods are supported: a streaming method is an error.
//
// The plugin takes protogen's standard parameters (paths=source_relative,
// module=..., M...=...), e.g. --micro_opt=paths=source_relative.
package main

import (
	"flag"
	"fmt"
	"os"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println("protoc-gen-micro", version)
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "protoc-gen-micro is a protoc plugin: run it through protoc --micro_out=DIR x.proto")
		os.Exit(2)
	}
	var flags flag.FlagSet // no plugin-specific parameters beyond protogen's own
	protogen.Options{ParamFunc: flags.Set}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		return generate(gen)
	})
}

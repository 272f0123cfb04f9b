// Package go_micro_srv_greeter is the protocol of the go-micro v1.8.0
// greeter the microbot tests run (go.micro.srv.greeter): the messages,
// generated from greeter.proto (greeter.pb.go), and the Say service's
// typed client and handler in the shape go-micro's protoc-gen-micro gave
// them (greeter.micro.go).
package go_micro_srv_greeter

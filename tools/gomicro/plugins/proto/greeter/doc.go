// Package go_micro_srv_greeter is the protocol of the go-micro v1.16.0
// greeter the microbot tests run (go.micro.srv.greeter): a copy of
// ../../../proto/greeter (the v1.8.0 greeter's), here because that package
// belongs to the go-micro v1.8.0 module and importing it would put both
// go-micro versions in one build. The generated code compiles unchanged
// against go-micro v1.16.0's client and server.
package go_micro_srv_greeter

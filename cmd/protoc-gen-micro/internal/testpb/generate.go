// Package testpb is generated from testpb.proto, a test of protoc-gen-micro:
// two services, several methods, a message from another package, a
// snake_case method, a deprecated method, methods with and without
// comments. It is committed so that `go vet ./...` compiles it; its tests
// check the API the plugin generates.
package testpb

//go:generate bash ../../gen.sh testpb.proto

module github.com/microbot/microbot/tools/gomicro

go 1.12

require (
	github.com/golang/protobuf v1.3.2
	github.com/micro/cli v0.2.0
	github.com/micro/go-micro v1.8.0
)

// A stand-in for github.com/micro/mdns that opens no socket, for the go-micro
// test programs of tools/gomicro, tools/gomicro/v0 and tools/gomicro/plugins
// (see the replace in their go.mod and mdns.go here). Its path is the module
// it replaces, as Go requires of a replacement.
module github.com/micro/mdns

go 1.12

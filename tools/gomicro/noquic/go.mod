// A stand-in for github.com/lucas-clemente/quic-go that speaks no QUIC, for
// the go-micro v1.16.0 test programs of tools/gomicro/plugins (see the
// replace in their go.mod and quic.go here). Its path is the module it
// replaces, as Go requires of a replacement.
module github.com/lucas-clemente/quic-go

go 1.12

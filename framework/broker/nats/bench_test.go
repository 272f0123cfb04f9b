package nats_test

import (
	"context"
	"testing"

	natsgo "github.com/nats-io/nats.go"

	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/nats"
	"github.com/microbot/microbot/framework/broker/nats/natstest"
)

// BenchmarkPublish is the publisher's side alone (no subscriber): our
// Publish, in both formats (ours: --broker_format=nats; ours-gomicro: the
// default, go-micro's message), against nats.go's, on one real
// nats-server, without and with the headers a framework client sends. The broker's own cost is what it adds
// to nats.go's (bench/cmd/brokerbench measures publish -> delivered).
func BenchmarkPublish(b *testing.B) {
	srv := natstest.Start(b)
	body := make([]byte, 128)
	header := map[string]string{"Content-Type": "application/protobuf", "Micro-Id": "1f0c2a4e-8c4b-4d43-9f3a-6b1d2c3e4f50"}
	for _, hdr := range []map[string]string{nil, header} {
		suffix := ""
		if hdr != nil {
			suffix = "+headers"
		}
		b.Run("nats.go"+suffix, func(b *testing.B) {
			nc, err := natsgo.Connect(srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			h := natsgo.Header{}
			for k, v := range hdr {
				h.Set(k, v)
			}
			b.ReportAllocs()
			for b.Loop() {
				if hdr == nil {
					err = nc.Publish("bench.x", body)
				} else {
					err = nc.PublishMsg(&natsgo.Msg{Subject: "bench.x", Header: h, Data: body})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, f := range []struct {
			name   string
			format nats.Format
		}{{"ours", nats.FormatNATS}, {"ours-gomicro", nats.FormatGoMicro}} {
			b.Run(f.name+suffix, func(b *testing.B) {
				br, err := nats.New(nats.WithAddrs(srv.Addr), nats.WithFormat(f.format))
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if err := br.Connect(ctx); err != nil {
					b.Fatal(err)
				}
				defer br.Disconnect(ctx) //nolint:errcheck
				m := &broker.Message{Header: hdr, Body: body}
				b.ReportAllocs()
				for b.Loop() {
					if err := br.Publish(ctx, "bench.x", m); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

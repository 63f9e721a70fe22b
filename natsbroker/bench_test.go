package natsbroker_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
)

// BenchmarkPublish measures the cost of one publication through the
// broker, one at a time and with 64 callers on one topic, beside what it is
// made of: a JetStream publish and its acknowledgement (history), a core
// NATS publish (live only).
//
//	go test -run - -bench Publish -benchmem ./natsbroker
func BenchmarkPublish(b *testing.B) {
	srv := natstest.Start(b, true)
	data := []byte(`{"price":101.25,"sym":"ACME","seq":12345678}`) // 45 bytes
	ctx := context.Background()
	br, err := natsbroker.Connect(srv.URL, natsbroker.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if err := br.Open(func(pubsub.Publication) {}); err != nil {
		b.Fatal(err)
	}
	b.Run("broker/history", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := br.Publish(ctx, "bench.h", data, pubsub.PublishOptions{HistorySize: 100}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("broker/history-64-callers", func(b *testing.B) {
		// 64 callers at once on one topic: what queues while a publish is
		// in flight goes in the next JetStream message.
		b.ReportAllocs()
		b.SetParallelism(32) // × GOMAXPROCS (2 here) goroutines
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := br.Publish(ctx, "bench.p", data, pubsub.PublishOptions{HistorySize: 100}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("broker/live", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := br.Publish(ctx, "bench.l", data, pubsub.PublishOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("jetstream/publish+ack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := js.Publish(ctx, "wsrpc.s.bench.raw", data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("core/publish", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := nc.Publish("wsrpc.p.bench.raw", data); err != nil {
				b.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	})
}

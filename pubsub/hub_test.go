package pubsub_test

import "testing"

func TestSubscribePublish(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnv(t)
			c := e.dial(codec)
			ctx := ctxT(t)
			exact, err := c.Subscribe(ctx, "news.eu")
			if err != nil {
				t.Fatal(err)
			}
			star, err := c.Subscribe(ctx, "news.*")
			if err != nil {
				t.Fatal(err)
			}
			rest, err := c.Subscribe(ctx, "news.>")
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if _, err := e.hub.Publish(ctx, "news.eu", i); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.hub.Publish(ctx, "news.eu.fr", 4); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if p := next(t, exact); dataInt(t, p) != i || p.Offset != uint64(i) || p.Topic != "news.eu" {
					t.Fatalf("exact: got %+v, want data %d offset %d", p, i, i)
				}
				if p := next(t, star); dataInt(t, p) != i {
					t.Fatalf("star: got %+v", p)
				}
			}
			for i := 1; i <= 4; i++ {
				if p := next(t, rest); dataInt(t, p) != i {
					t.Fatalf("rest: got %+v", p)
				}
			}
			none(t, star)
			if err := exact.Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := <-exact.C(); ok {
				t.Fatal("channel open after Unsubscribe")
			}
		})
	}
}

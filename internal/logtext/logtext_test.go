package logtext_test

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/internal/logtext"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClip(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"short", "short"},
		{strings.Repeat("a", logtext.MaxField), strings.Repeat("a", logtext.MaxField)},
		{strings.Repeat("a", 300), strings.Repeat("a", logtext.MaxField) + "…(300 bytes)"},
		// Not cut inside a character: 'é' is two bytes, the bound falls between them.
		{"a" + strings.Repeat("é", 200), "a" + strings.Repeat("é", 127) + "…(401 bytes)"},
	}
	for _, tt := range tests {
		if got := logtext.Clip(tt.give); got != tt.want {
			t.Errorf("Clip(%d bytes) = %q, want %q", len(tt.give), got, tt.want)
		}
	}
	if got := logtext.Clip(strings.Repeat("x", 512<<10)); len(got) > logtext.MaxField+32 {
		t.Errorf("Clip of 512 KiB kept %d bytes", len(got))
	}
}

func TestLimiter(t *testing.T) {
	var l logtext.Limiter
	now := time.Unix(1000, 0)
	for i := range logtext.Burst {
		if ok, _ := l.Allow(now); !ok {
			t.Fatalf("record %d of the burst refused", i)
		}
	}
	for range 5 {
		if ok, _ := l.Allow(now); ok {
			t.Fatal("record past the burst allowed")
		}
	}
	now = now.Add(logtext.Interval)
	ok, suppressed := l.Allow(now)
	if !ok || suppressed != 5 {
		t.Fatalf("after an interval: ok %v, suppressed %d; want true, 5", ok, suppressed)
	}
	if ok, _ := l.Allow(now); ok {
		t.Fatal("a second record in the same interval allowed")
	}
}

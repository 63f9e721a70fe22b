package boundednames

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestName(t *testing.T) {
	s := Set{Max: 2}
	tests := []struct{ give, want string }{{"a", "a"}, {"b", "b"}, {"c", Other}, {"a", "a"}, {"d", Other}, {"b", "b"}}
	for _, tt := range tests {
		if got := s.Name(tt.give); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	var zero Set
	if got := zero.Name("a"); got != Other {
		t.Errorf("zero Set: %q", got)
	}
}

func TestNameCut(t *testing.T) {
	s := Set{Max: 3}
	short := strings.Repeat("a", logtext.MaxField)
	if got := s.Name(short); got != short {
		t.Errorf("a name of %d bytes changed: %d bytes", len(short), len(got))
	}
	long := strings.Repeat("b", 1<<20)
	got := s.Name(long)
	if want := logtext.Clip(long); got != want {
		t.Errorf("a name of 1 MiB kept as %d bytes, want %d", len(got), len(want))
	}
	if again := s.Name(long); again != got {
		t.Errorf("the same long name labelled twice differently")
	}
}

func TestConcurrent(t *testing.T) {
	s := Set{Max: 10}
	var wg sync.WaitGroup
	var mu sync.Mutex
	kept := map[string]bool{}
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				if n := s.Name(strconv.Itoa(g*100 + i)); n != Other {
					mu.Lock()
					kept[n] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(kept) != 10 {
		t.Errorf("%d names kept, want 10", len(kept))
	}
}

func TestCodeLabel(t *testing.T) {
	tests := []struct {
		give rpc.Code
		want string
	}{
		{0, "ok"}, {rpc.CodeMethodNotFound, "method_not_found"}, {rpc.CodeDeadlineExceeded, "deadline_exceeded"},
		{rpc.CodeConnectionLost, "connection_lost"}, {-32050, "-32050"}, {7, "7"}, {handler.OtherCodes, "other"},
	}
	for _, tt := range tests {
		if got := CodeLabel(tt.give); got != tt.want {
			t.Errorf("CodeLabel(%d) = %q, want %q", tt.give, got, tt.want)
		}
	}
	if !KnownCode(rpc.CodeBusy) || KnownCode(-32050) {
		t.Error("KnownCode")
	}
}

func TestCodesBounded(t *testing.T) {
	var c Codes
	for i := range MaxCodes {
		if got := c.Label(rpc.Code(-31000 - i)); got != strconv.Itoa(-31000-i) {
			t.Fatalf("code %d: %q", -31000-i, got)
		}
	}
	if got := c.Label(-1); got != OtherCodes {
		t.Errorf("beyond the bound: %q", got)
	}
	if got := c.Label(-31000); got != "-31000" {
		t.Errorf("a code kept: %q", got)
	}
	if got := c.Label(rpc.CodeInternalError); got != "internal_error" {
		t.Errorf("a known code past the bound: %q", got)
	}
}

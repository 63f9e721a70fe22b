package authwire_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/internal/authwire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEncode(t *testing.T) {
	tests := []struct {
		give time.Duration
		has  bool
		want string
	}{
		{time.Hour, true, `{"expiresIn":3600000}`},
		{1500 * time.Microsecond, true, `{"expiresIn":1}`},
		{time.Microsecond, true, `{"expiresIn":1}`},
		{0, false, `{}`},
	}
	for _, tt := range tests {
		if got := string(authwire.Encode(tt.give, tt.has)); got != tt.want {
			t.Errorf("Encode(%v, %v) = %s, want %s", tt.give, tt.has, got, tt.want)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		give    string
		want    time.Duration
		wantHas bool
		wantErr error // nil: none; errAny: some error
	}{
		{give: `{"expiresIn":60000}`, want: time.Minute, wantHas: true},
		{give: ` {"expiresIn": 1.5, "other": [1]} `, want: 1500 * time.Microsecond, wantHas: true},
		{give: `{"expiresIn":1e300}`, want: authwire.MaxLifetime, wantHas: true},
		{give: `{}`},
		{give: `{"expiresIn":null}`},
		{give: `{"expiresin":5}`}, // names are compared exactly
		{give: `{"expiresIn":0}`, wantHas: true, wantErr: authwire.ErrExpired},
		{give: `{"expiresIn":-5}`, wantHas: true, wantErr: authwire.ErrExpired},
		{give: `{"expiresIn":0.0000001}`, wantHas: true, wantErr: authwire.ErrExpired},
		{give: `{"expiresIn":"60000"}`, wantErr: errAny},
		{give: `[60000]`, wantErr: errAny},
		{give: `null`, wantErr: errAny},
		{give: `true`, wantErr: errAny},
		{give: ``, wantErr: errAny},
		{give: `{"expiresIn":1`, wantErr: errAny},
	}
	for _, tt := range tests {
		d, has, err := authwire.Decode([]byte(tt.give))
		switch {
		case tt.wantErr == nil && err != nil:
			t.Errorf("Decode(%s): %v", tt.give, err)
		case tt.wantErr == errAny && err == nil:
			t.Errorf("Decode(%s) = %v, %v, want an error", tt.give, d, has)
		case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
			t.Errorf("Decode(%s): %v, want %v", tt.give, err, tt.wantErr)
		case err == nil && (d != tt.want || has != tt.wantHas):
			t.Errorf("Decode(%s) = %v, %v, want %v, %v", tt.give, d, has, tt.want, tt.wantHas)
		}
	}
}

var errAny = errors.New("any error")

// FuzzDecode checks that Decode never panics, and that what it accepts
// encodes to an object that decodes to the same lifetime in whole
// milliseconds.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"expiresIn":60000}`, `{}`, `{"expiresIn":null}`, `{"expiresIn":0}`, `{"expiresIn":1.5e3,"x":{}}`, `[]`, `"x"`, `{"expiresIn":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, has, err := authwire.Decode(b)
		if err != nil {
			return
		}
		if has && d <= 0 {
			t.Fatalf("Decode(%q) = %v with no error", b, d)
		}
		enc := authwire.Encode(d, has)
		d2, has2, err := authwire.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%v, %v) = %s): %v", d, has, enc, err)
		}
		want := max(d.Truncate(time.Millisecond), time.Millisecond)
		if !has {
			want = 0
		}
		if has2 != has || d2 != want {
			t.Fatalf("%q: decoded %v, %v; after a round trip %v, %v, want %v", b, d, has, d2, has2, want)
		}
	})
}

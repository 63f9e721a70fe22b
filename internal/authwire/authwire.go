// Package authwire encodes and decodes the lifetime object of
// authentication refresh (docs/PROTOCOL.md, section 15): the params of
// $/auth.expiry and the result of $/auth.refresh, {"expiresIn": ms} or {}
// for an authentication that does not expire. Only durations travel, so the
// two sides' clocks need not agree.
//
// The functions are safe for concurrent use.
package authwire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Member is the name of the lifetime's one member.
const Member = "expiresIn"

// MaxLifetime is the longest lifetime Decode returns: a longer one is
// clamped to it (about 292 years, the range of a time.Duration).
const MaxLifetime = time.Duration(math.MaxInt64)

// ErrExpired is returned by Decode for a lifetime that is not positive: an
// authentication that has already ended.
var ErrExpired = errors.New("wsrpc: the authentication has already expired (expiresIn is not positive)")

// Encode returns the lifetime object for an authentication that ends in d
// (in whole milliseconds, rounded down, and at least 1), or {} when has is
// false: it does not end.
func Encode(d time.Duration, has bool) []byte {
	if !has {
		return []byte("{}")
	}
	ms := max(d/time.Millisecond, 1)
	b := make([]byte, 0, 32)
	b = append(b, `{"`+Member+`":`...)
	b = strconv.AppendInt(b, int64(ms), 10)
	return append(b, '}')
}

// Decode parses a lifetime object. has is false for {} (and for a null or
// missing expiresIn): the authentication does not end. Members other than
// expiresIn are ignored, as later revisions may add some. A value that is
// not a JSON object, an expiresIn that is not a number, and (ErrExpired) one
// that is not positive are errors. Milliseconds may have a fraction; a
// lifetime beyond [MaxLifetime] is clamped to it.
func Decode(b []byte) (d time.Duration, has bool, err error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return 0, false, fmt.Errorf("wsrpc: the lifetime must be a JSON object such as {%q: 60000}", Member)
	}
	raw, ok := obj[Member]
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil {
		return 0, false, fmt.Errorf("wsrpc: %s must be a number of milliseconds, not %.40s", Member, raw)
	}
	ns := ms * float64(time.Millisecond)
	switch {
	case !(ns >= 1): // NaN cannot come from JSON, but stays refused
		return 0, true, ErrExpired
	case ns >= float64(MaxLifetime):
		return MaxLifetime, true, nil
	}
	return time.Duration(ns), true, nil
}

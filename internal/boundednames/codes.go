package boundednames

import (
	"strconv"
	"strings"
	"sync"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// OtherCodes is the label of the application codes beyond a Codes' bound,
// and of handler.OtherCodes.
const OtherCodes = "other"

// MaxCodes is how many distinct application codes a Codes labels apart.
const MaxCodes = 32

// CodeLabel is the label of an outcome code: "ok" for 0, the snake-case
// name of a code package rpc names ("method_not_found"), "other" for
// handler.OtherCodes, and the number for any other (an application's own
// code). It does not bound anything: see Codes.
func CodeLabel(c rpc.Code) string {
	if l, ok := known[c]; ok {
		return l
	}
	if c == handler.OtherCodes {
		return OtherCodes
	}
	return strconv.Itoa(int(c))
}

// KnownCode reports whether c is 0 or one of the codes package rpc names.
func KnownCode(c rpc.Code) bool {
	_, ok := known[c]
	return ok
}

var known = func() map[rpc.Code]string {
	m := map[rpc.Code]string{0: "ok"}
	for _, c := range []rpc.Code{rpc.CodeParseError, rpc.CodeInvalidRequest, rpc.CodeMethodNotFound, rpc.CodeInvalidParams,
		rpc.CodeInternalError, rpc.CodeUnavailable, rpc.CodeCanceled, rpc.CodeDeadlineExceeded,
		rpc.CodeBusy, rpc.CodeUnauthenticated, rpc.CodePermissionDenied, rpc.CodeConnectionLost} {
		m[c] = strings.ReplaceAll(c.String(), " ", "_")
	}
	return m
}()

// Codes labels outcome codes as CodeLabel does, within MaxCodes distinct
// application codes: later ones are labelled OtherCodes. (The codes of the
// calls a peer makes are the other side's to choose.) The zero value is
// ready; a Codes is safe for concurrent use.
type Codes struct {
	mu   sync.Mutex
	seen map[rpc.Code]string
}

// Label returns code's label.
func (s *Codes) Label(code rpc.Code) string {
	if l, ok := known[code]; ok {
		return l
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.seen[code]; ok {
		return l
	}
	if len(s.seen) >= MaxCodes {
		return OtherCodes
	}
	if s.seen == nil {
		s.seen = make(map[rpc.Code]string)
	}
	l := CodeLabel(code)
	s.seen[code] = l
	return l
}

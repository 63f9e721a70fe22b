package rpc

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

func TestCallCtx(t *testing.T) {
	base, cancelBase := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "from base"))
	defer cancelBase()
	req := &Request{Method: "m"}
	c := &callCtx{parent: base, req: req}

	if c.Value(ctxKey{}) != "from base" || RequestFromContext(c) != req {
		t.Fatal("values not visible")
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("deadline without a timeout")
	}
	child, cancelChild := context.WithCancel(c)
	defer cancelChild()
	grandchild, cancelGrandchild := context.WithTimeout(child, time.Hour)
	defer cancelGrandchild()
	if c.Err() != nil || child.Err() != nil {
		t.Fatal("cancelled too early")
	}
	c.cancel(context.Canceled)
	for _, ctx := range []context.Context{c, child, grandchild} {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("cancellation did not reach a derived context")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err = %v", ctx.Err())
		}
	}
	if got := context.Cause(c); !errors.Is(got, context.Canceled) {
		t.Fatalf("Cause = %v, want the context's own error (the base is not cancelled)", got)
	}
	c.cancel(context.DeadlineExceeded) // the first reason stays
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatal("second cancel replaced the error")
	}
}

func TestCallCtxDeadline(t *testing.T) {
	c := &callCtx{parent: context.Background()}
	c.start(20 * time.Millisecond)
	dl, ok := c.Deadline()
	if !ok || time.Until(dl) > 20*time.Millisecond {
		t.Fatalf("Deadline = %v, %v", dl, ok)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("deadline never fired")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestCallCtxParentDeadlineWins(t *testing.T) {
	base, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c := &callCtx{parent: base}
	c.start(time.Hour)
	defer c.cancel(context.Canceled)
	dl, _ := c.Deadline()
	if time.Until(dl) > time.Second {
		t.Fatalf("deadline %v ignores the base context's earlier one", dl)
	}
}

func TestCallCtxAfterFuncStop(t *testing.T) {
	c := &callCtx{parent: context.Background()}
	ran := make(chan struct{}, 1)
	stop := context.AfterFunc(c, func() { ran <- struct{}{} })
	if !stop() {
		t.Fatal("stop before cancel returned false")
	}
	c.cancel(context.Canceled)
	select {
	case <-ran:
		t.Fatal("stopped AfterFunc ran")
	case <-time.After(50 * time.Millisecond):
	}
}

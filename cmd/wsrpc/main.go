package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// main only wires the process to run, which does everything else, so that
// the whole command is tested in-process. SIGINT and SIGTERM cancel ctx.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

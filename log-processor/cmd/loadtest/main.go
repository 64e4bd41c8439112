// Command loadtest measures log pipeline throughput: the read-and-discard
// ceiling of a WebSocket flood, a running processor's rate and cost, or a
// full local benchmark suite. See --help.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/logpipeline/log-processing-service/log-processor/internal/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	if err := loadtest.Main(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(loadtest.ExitCode(err))
	}
}

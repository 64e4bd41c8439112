// Command log-processor reads JSON log messages from WebSocket sources,
// validates them, processes them in a bounded worker pool and serves stats
// over HTTP. See the README for flags and endpoints.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/logpipeline/log-processing-service/log-processor/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }() // a second Ctrl+C kills at once
	if err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "log-processor:", err)
		os.Exit(cli.ExitCode(err))
	}
}

// Command mock-log-generator serves JSON log messages over WebSocket at
// /ws/logs, for developing and testing the log-processor.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/logpipeline/log-processing-service/mock-log-generator/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }() // a second Ctrl+C kills at once
	if err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mock-log-generator:", err)
		os.Exit(cli.ExitCode(err))
	}
}

// Command log-processor reads JSON log messages from WebSocket sources and
// from pushers, validates them, processes them in a bounded worker pool
// and serves stats over HTTP. See the README for flags and endpoints.
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
	// The first Ctrl+C (or SIGTERM) drains; a second abandons the drain but
	// still reports what was lost; a third exits at once.
	ctx, stop := context.WithCancel(context.Background())
	abandon := make(chan struct{})
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		stop()
		<-sigs
		close(abandon)
		<-sigs
		os.Exit(130)
	}()
	if err := cli.RunUntil(ctx, abandon, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "log-processor:", err)
		os.Exit(cli.ExitCode(err))
	}
}

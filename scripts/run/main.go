// Command run is what `make run` runs: the generator and the processor
// together in one terminal, each line of their logs prefixed with its
// program. It starts the generator, waits until it listens, points the
// processor at it, waits until the API listens, and only then prints where
// to look. Ctrl+C (or SIGTERM) stops the processor first, which drains,
// then the generator; a second Ctrl+C abandons the processor's drain. If
// either program fails or exits on its own, the other is stopped and run
// exits with the failing program's status.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Signals are forwarded to the children by run, one per signal.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code, err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, sigs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "make run:", err)
	}
	os.Exit(code)
}

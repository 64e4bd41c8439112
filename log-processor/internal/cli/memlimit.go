package cli

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// memoryHeadroom is what the limit allows besides the bounded memories:
// the runtime, connections' buffers, parsing in progress, the API's
// answers.
const memoryHeadroom = 64 << 20

// memoryLimit is the soft memory limit the processor's bounds imply: the
// queue, the memory store, the in-flight budget of the push paths, the
// tail, two database batches, and headroom. With it the garbage collector
// runs often enough, when memory is near it (under a flood of pushes, say),
// that the heap stays near what is live rather than twice it.
func memoryLimit(cfg *config) int64 {
	n := cfg.pipeline.Pool.QueueBytes + cfg.tail.TotalBytes + 2*int64(cfg.batch.MaxBytes) + memoryHeadroom
	if cfg.storage == "memory" {
		n += cfg.memory.MaxBytes
	}
	if cfg.ingestAddr != "" || cfg.otlpGRPC != "" {
		n += cfg.gate.MaxInflightBytes
	}
	if cfg.bus.kind == "embedded" {
		n += embeddedMemory
	}
	return n
}

// applyMemoryLimit sets the runtime's soft memory limit to memoryLimit,
// unless GOMEMLIMIT is set (GOMEMLIMIT=off: none). It is the process's:
// only the binary's entry point applies it.
func applyMemoryLimit(cfg *config, logger *slog.Logger) {
	if v, set := os.LookupEnv("GOMEMLIMIT"); set {
		logger.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	n := memoryLimit(cfg)
	debug.SetMemoryLimit(n)
	logger.Info("memory limit", "MiB", n>>20, "why", "the sum of the memory bounds and 64 MiB; GOMEMLIMIT overrides it")
}

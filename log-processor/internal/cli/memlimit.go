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

// gcPercent is the garbage collector's target when GOGC is not set: the
// heap may grow to three times what is live between collections, not
// twice, which halves the collections a fast source causes. The soft
// memory limit still caps the heap near the bounds. Under the flood: 8%
// less CPU per message and 4-5% more messages a second, for about 11 MiB
// more resident (docs/performance.md).
const gcPercent = 200

// applyMemoryLimit sets the runtime's soft memory limit to memoryLimit,
// unless GOMEMLIMIT is set (GOMEMLIMIT=off: none), and the collector's
// target to gcPercent, unless GOGC is set. Both are the process's: only
// the binary's entry point applies them.
func applyMemoryLimit(cfg *config, logger *slog.Logger) {
	if v := os.Getenv("GOGC"); v != "" {
		logger.Info("garbage collector target from GOGC", "GOGC", v)
	} else {
		debug.SetGCPercent(gcPercent)
		logger.Info("garbage collector target", "GOGC", gcPercent, "why", "the memory limit bounds the heap; GOGC overrides it")
	}
	if v, set := os.LookupEnv("GOMEMLIMIT"); set {
		logger.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	n := memoryLimit(cfg)
	debug.SetMemoryLimit(n)
	logger.Info("memory limit", "MiB", n>>20, "why", "the sum of the memory bounds and 64 MiB; GOMEMLIMIT overrides it")
}

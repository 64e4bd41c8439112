// Command samplegen writes log lines with real Go logging libraries, for the
// processor's parser tests (log-processor/internal/parser/testdata/libs).
// It is its own module so that the processor's go.mod does not grow these
// dependencies. Run from this directory:
//
//	go run . ../../log-processor/internal/parser/testdata/libs
//
// Each library writes the same few lines (every level it has, a field or
// two, a named logger where it has one) into a file named after it and its
// version.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: samplegen DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	for name, write := range map[string]func(io.Writer){
		"log-slog":                   writeSlog,
		"go.uber.org-zap":            writeZap,
		"github.com-rs-zerolog":      writeZerolog,
		"github.com-sirupsen-logrus": writeLogrus,
	} {
		file := filepath.Join(dir, name+"@"+version(name)+".jsonl")
		f, err := os.Create(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		write(f)
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", file)
	}
}

// version is the module version the binary was built with, or the Go
// version for the standard library.
func version(name string) string {
	if name == "log-slog" {
		v := strings.TrimPrefix(strings.Fields(strings.TrimPrefix(debugGo(), "go"))[0], "go")
		return "go" + v
	}
	path := strings.NewReplacer("github.com-", "github.com/", "go.uber.org-", "go.uber.org/", "-", "/").Replace(name)
	bi, _ := debug.ReadBuildInfo()
	for _, m := range bi.Deps {
		if m.Path == path {
			return m.Version
		}
	}
	return "unknown"
}

func debugGo() string {
	bi, _ := debug.ReadBuildInfo()
	return bi.GoVersion
}

func writeSlog(w io.Writer) {
	l := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l.Debug("cache lookup", "key", "user:1007")
	l.Info("request completed", "method", "GET", "path", "/api/orders", "status", 200, "duration_ms", 12.5)
	l.Warn("slow query", "table", "orders", "ms", 812)
	l.Error("payment declined", "user_id", "u-1007", "trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
	l.Log(nil, slog.LevelInfo+2, "between info and warn")
	l.Log(nil, slog.LevelWarn-1, "just below warn")
	l.Log(nil, slog.LevelError+4, "beyond error")
	l.With("service", "checkout").Info("order placed", slog.Group("order", "id", "o-17", "total", 42.5))
}

func writeZap(w io.Writer) {
	cfg := zap.NewProductionEncoderConfig()
	core := zapcore.NewCore(zapcore.NewJSONEncoder(cfg), zapcore.AddSync(w), zapcore.DebugLevel)
	l := zap.New(core, zap.AddCaller())
	l.Debug("cache lookup", zap.String("key", "user:1007"))
	l.Info("request completed", zap.String("method", "GET"), zap.Int("status", 200))
	l.Warn("slow query", zap.Int("ms", 812))
	l.Error("payment declined", zap.String("user_id", "u-1007"))
	l.DPanic("inconsistent state", zap.String("order", "o-17"))
	l.Named("billing").Info("invoice sent", zap.String("invoice", "inv-9"))
	l.Named("billing").Named("tax").Warn("rate missing", zap.String("region", "eu"))
	_ = l.Sync()
}

func writeZerolog(w io.Writer) {
	l := zerolog.New(w).With().Timestamp().Logger()
	l.Trace().Msg("entering handler")
	l.Debug().Str("key", "user:1007").Msg("cache lookup")
	l.Info().Str("method", "GET").Int("status", 200).Msg("request completed")
	l.Warn().Int("ms", 812).Msg("slow query")
	l.Error().Str("user_id", "u-1007").Msg("payment declined")
	l.WithLevel(zerolog.FatalLevel).Msg("cannot continue")
	l.WithLevel(zerolog.PanicLevel).Msg("invariant broken")
	l.Info().Str("service", "checkout").Msg("order placed")
}

func writeLogrus(w io.Writer) {
	l := logrus.New()
	l.SetOutput(w)
	l.SetFormatter(&logrus.JSONFormatter{})
	l.SetLevel(logrus.TraceLevel)
	l.Trace("entering handler")
	l.WithField("key", "user:1007").Debug("cache lookup")
	l.WithFields(logrus.Fields{"method": "GET", "status": 200}).Info("request completed")
	l.WithField("ms", 812).Warn("slow query")
	l.WithField("user_id", "u-1007").Error("payment declined")
	l.WithField("app", "checkout").Info("order placed")
}

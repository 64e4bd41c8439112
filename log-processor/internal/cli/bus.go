package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/cluster"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
)

// busConfig is what the bus flags set.
type busConfig struct {
	kind      string // memory or jetstream
	role      string
	bus       bus.Config
	tokenFile string
	cluster   cluster.Config
}

// natsTokenEnv is the environment variable a NATS token may come from.
const natsTokenEnv = "LOGPROC_NATS_TOKEN"

// busFlags registers the message bus's flags.
func busFlags(fs *pflag.FlagSet, c *busConfig) {
	fs.StringVar(&c.kind, "bus", "memory", "the queue between reading and storing: memory (the in-process worker pool) or jetstream (NATS JetStream, shared by processors)")
	fs.StringVar(&c.role, "role", "all", "what this processor does: all, ingest (read sources, publish to the bus) or store (store what the bus delivers); ingest and store need --bus jetstream")
	fs.StringSliceVar(&c.bus.URLs, "nats-url", []string{bus.DefaultURL}, "NATS servers (comma-separated); user:password@ in a URL is sent as credentials")
	fs.StringVar(&c.tokenFile, "nats-token-file", "", "file holding a NATS token (its first line); also $"+natsTokenEnv)
	fs.StringVar(&c.bus.CredsFile, "nats-creds", "", "NATS credentials file (JWT and seed) for servers with decentralised auth")
	fs.StringVar(&c.bus.Stream, "bus-stream", bus.DefaultStream, "JetStream stream holding entries between processors; created when missing")
	fs.StringVar(&c.bus.Subject, "bus-subject", bus.DefaultSubject, "subject entries are published on")
	fs.StringVar(&c.bus.Consumer, "bus-consumer", bus.DefaultConsumer, "durable consumer every storing processor shares")
	fs.DurationVar(&c.bus.MaxAge, "bus-max-age", bus.DefaultMaxAge, "the stream drops entries not stored within this long")
	sizeVar(fs, &c.bus.MaxBytes, "bus-max-bytes", bus.DefaultMaxBytes, "bound on the stream's size; when full, publishers wait, then drop (counted as bus_unavailable)")
	fs.IntVar(&c.bus.Replicas, "bus-replicas", bus.DefaultReplicas, "copies of the stream kept by a NATS cluster")
	fs.IntVar(&c.bus.Batch, "bus-batch", bus.DefaultBatch, "most entries in one stream message")
	sizeVar(fs, &c.bus.BatchBytes, "bus-batch-bytes", bus.DefaultBatchBytes, "most bytes in one stream message (keep under the server's max_payload, 1 MiB by default)")
	fs.DurationVar(&c.bus.Linger, "bus-linger", bus.DefaultLinger, "longest an entry waits for its stream message to fill")
	fs.IntVar(&c.bus.MaxPending, "bus-max-pending", bus.DefaultMaxPending, "stream messages published and not yet acknowledged, at most")
	fs.BoolVar(&c.bus.Compress, "bus-compress", true, "compress each stream message's entries with S2 (readers take both)")
	fs.IntVar(&c.bus.Fetch, "bus-fetch", bus.DefaultFetch, "stream messages a storing processor fetches at a time")
	fs.StringVar(&c.cluster.Name, "cluster", "", "share the sources with the processors given the same NAME and source list: each source is read by one of them (needs --bus jetstream)")
	fs.DurationVar(&c.cluster.TTL, "lease-ttl", cluster.DefaultTTL, "a processor's sources pass to the others this long after it stops renewing them (--cluster)")
	fs.DurationVar(&c.bus.AckWait, "bus-ack-wait", bus.DefaultAckWait, "a message delivered and not acknowledged this long goes to another storing processor")
}

// busNeeds are the flags that mean something only with --bus jetstream.
var busNeeds = []string{"cluster", "lease-ttl", "nats-url", "nats-token-file", "nats-creds", "bus-stream", "bus-subject", "bus-consumer",
	"bus-max-age", "bus-max-bytes", "bus-replicas", "bus-batch", "bus-batch-bytes", "bus-linger", "bus-max-pending", "bus-compress", "bus-fetch", "bus-ack-wait"}

// setupBus validates the bus flags and sets the pipeline's role.
func setupBus(cfg *config, fs *pflag.FlagSet) error {
	c := &cfg.bus
	role, err := pipeline.ParseRole(c.role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	cfg.pipeline.Role = role
	switch c.kind {
	case "memory":
		for _, f := range busNeeds {
			if fs.Changed(f) {
				return fmt.Errorf("--%s is for --bus jetstream; it does nothing with --bus memory", f)
			}
		}
		if role != pipeline.RoleAll {
			return fmt.Errorf("--role %s needs --bus jetstream: with the in-process queue, one processor reads and stores", role)
		}
		return nil
	case "jetstream":
	default:
		return fmt.Errorf("--bus %q: want memory or jetstream", c.kind)
	}
	c.bus.URLs = trimAll(c.bus.URLs)
	if len(c.bus.URLs) == 0 {
		return errors.New("--nats-url: give at least one NATS server")
	}
	for _, p := range []struct {
		name string
		v    int64
	}{
		{"--bus-max-age", int64(c.bus.MaxAge)}, {"--bus-max-bytes", c.bus.MaxBytes}, {"--bus-replicas", int64(c.bus.Replicas)},
		{"--bus-batch", int64(c.bus.Batch)}, {"--bus-batch-bytes", int64(c.bus.BatchBytes)}, {"--bus-linger", int64(c.bus.Linger)},
		{"--bus-max-pending", int64(c.bus.MaxPending)}, {"--bus-fetch", int64(c.bus.Fetch)}, {"--bus-ack-wait", int64(c.bus.AckWait)},
	} {
		if p.v <= 0 {
			return fmt.Errorf("%s must be greater than zero", p.name)
		}
	}
	if c.bus.Batch > bus.MaxBatch {
		return fmt.Errorf("--bus-batch: at most %d entries in one message", bus.MaxBatch)
	}
	if c.bus.CredsFile != "" {
		if err := checkFile(c.bus.CredsFile, maxCredsFile); err != nil {
			return fmt.Errorf("--nats-creds: %w", err)
		}
	}
	if c.tokenFile != "" {
		tok, err := readFileValue(c.tokenFile)
		if err != nil {
			return fmt.Errorf("--nats-token-file: %w", err)
		}
		c.bus.Token = tok
	} else {
		c.bus.Token = strings.TrimSpace(os.Getenv(natsTokenEnv))
	}
	c.bus.Name = "log-processor " + cfg.instance
	if fs.Changed("lease-ttl") && c.cluster.Name == "" {
		return errors.New("--lease-ttl is for --cluster")
	}
	if c.cluster.Name != "" {
		if !cluster.ValidName(c.cluster.Name) {
			return fmt.Errorf("--cluster %q: use 1-64 letters, digits, '_' and '-'", c.cluster.Name)
		}
		if c.cluster.TTL < time.Second {
			return errors.New("--lease-ttl must be at least 1s")
		}
		if role == pipeline.RoleStore {
			return errors.New("--cluster shares sources; a --role store processor reads none")
		}
		c.cluster.Instance = cfg.instance
		cfg.pipeline.Cluster = &c.cluster
	}
	return nil
}

func trimAll(ss []string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

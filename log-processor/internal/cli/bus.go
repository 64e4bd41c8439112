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
	kind      string // memory, jetstream or embedded
	role      string
	bus       bus.Config
	tokenFile string
	cluster   cluster.Config
	// The embedded bus: where its files go, and how often they are synced.
	dataDir      string
	syncInterval time.Duration
}

// embeddedMemory is what the limit allows the embedded bus's server: its
// caches of the stream's files.
const embeddedMemory = 64 << 20

// natsTokenEnv is the environment variable a NATS token may come from.
const natsTokenEnv = "LOGPROC_NATS_TOKEN"

// busFlags registers the message bus's flags.
func busFlags(fs *pflag.FlagSet, c *busConfig) {
	fs.StringVar(&c.kind, "bus", "memory", "the queue between reading and storing: memory (the in-process worker pool), embedded (NATS JetStream inside the processor, on disk under --data-dir: survives kill -9 and restarts) or jetstream (an external NATS JetStream, shared by processors)")
	fs.StringVar(&c.dataDir, "data-dir", "", "directory of the processor's own files: the embedded bus's stream (--bus embedded)")
	fs.DurationVar(&c.syncInterval, "bus-sync-interval", 0, "--bus embedded: how often the stream's files are synced to disk; 0 syncs every write before it is acknowledged (survives power loss; an unsynced write survives kill -9 but not power loss)")
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

// busNeeds are the flags that mean something only with a bus (jetstream
// or embedded); externalNeeds only with an external one, embeddedNeeds
// only with the embedded one.
var (
	busNeeds = []string{"bus-stream", "bus-subject", "bus-consumer", "bus-max-age", "bus-max-bytes", "bus-batch", "bus-batch-bytes",
		"bus-linger", "bus-max-pending", "bus-compress", "bus-fetch", "bus-ack-wait"}
	externalNeeds = []string{"cluster", "lease-ttl", "nats-url", "nats-token-file", "nats-creds", "bus-replicas"}
	embeddedNeeds = []string{"data-dir", "bus-sync-interval"}
)

// setupBus validates the bus flags and sets the pipeline's role.
func setupBus(cfg *config, fs *pflag.FlagSet) error {
	c := &cfg.bus
	role, err := pipeline.ParseRole(c.role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	cfg.pipeline.Role = role
	refuse := func(flags []string, forWhat string) error {
		for _, f := range flags {
			if fs.Changed(f) {
				return fmt.Errorf("--%s is for %s; it does nothing with --bus %s", f, forWhat, c.kind)
			}
		}
		return nil
	}
	switch c.kind {
	case "memory":
		for _, f := range []struct {
			flags   []string
			forWhat string
		}{{busNeeds, "--bus jetstream or embedded"}, {externalNeeds, "--bus jetstream"}, {embeddedNeeds, "--bus embedded"}} {
			if err := refuse(f.flags, f.forWhat); err != nil {
				return err
			}
		}
		if role != pipeline.RoleAll {
			return fmt.Errorf("--role %s needs --bus jetstream: with the in-process queue, one processor reads and stores", role)
		}
		return nil
	case "embedded":
		if err := refuse(externalNeeds, "--bus jetstream (an external NATS)"); err != nil {
			return err
		}
		if role != pipeline.RoleAll {
			return fmt.Errorf("--role %s needs --bus jetstream: the embedded bus serves this processor only", role)
		}
		if strings.TrimSpace(c.dataDir) == "" {
			return errors.New("--bus embedded needs --data-dir: a directory for the stream's files, such as ./data")
		}
		if c.syncInterval < 0 {
			return errors.New("--bus-sync-interval must not be negative")
		}
	case "jetstream":
		if err := refuse(embeddedNeeds, "--bus embedded"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--bus %q: want memory, embedded or jetstream", c.kind)
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
	c.bus.Name = "log-processor " + cfg.instance
	if c.kind == "embedded" {
		return nil // no credentials, no cluster: the server is this process's
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

// Package cluster divides a fleet's sources between the processors that
// share them, through a JetStream key-value bucket with expiring keys.
//
// Every processor started with the same cluster name and source list
// heartbeats a member key, and holds a lease key for each source it reads.
// Keys expire TTL after their last write, so a killed processor's member
// and leases vanish within TTL. Each round (TTL/5), a processor lists the
// live members, computes who should read each source (the sources, sorted
// by key, dealt round-robin to the members sorted by ID: even, and the
// same on every processor that sees the same members), renews the leases
// it holds, hands over those it should no longer read (stop reading, then
// delete the lease), and takes free leases it should hold (create, which
// fails if anyone holds it, then start reading).
//
// A processor reads a source only while it holds the lease: when it cannot
// renew within SafeFor of its last renewal (NATS unreachable, say), it
// stops reading before the lease can have expired for anyone else.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultTTL is how long a lease outlives its holder's last renewal.
const DefaultTTL = 10 * time.Second

// Config describes one processor's membership. A zero TTL means DefaultTTL.
type Config struct {
	Name     string        // the cluster: processors with the same name share sources
	Instance string        // this processor's name, shown as sources' owner
	TTL      time.Duration // lease lifetime
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidName reports whether name can name a cluster (it names a bucket).
func ValidName(name string) bool { return validName.MatchString(name) }

// Hooks start and stop reading source i. Stop returns once the reading has
// stopped. Neither is called concurrently with itself or the other.
type Hooks struct {
	Start func(i int)
	Stop  func(i int)
}

// Cluster is one processor's membership. Run it once; Owners and Members
// are safe to call at any time.
type Cluster struct {
	cfg     Config
	kv      jetstream.KeyValue
	id      string          // member ID: instance plus a random suffix
	keys    []string        // lease key per source
	names   []string        // the sources' identities, for the logs
	digest  string          // of the sorted keys: members with another list are not dealt sources
	warned  map[string]bool // members already warned about, by ID
	order   []int           // sources by key
	hooks   Hooks
	log     *slog.Logger
	safeFor time.Duration

	// Written by Run's goroutine only; read under mu.
	mu      sync.Mutex
	held    []uint64    // lease revision per source; 0 = not held
	renewed []time.Time // last renewal per held source
	owners  []string    // last seen owner per source (an instance), "" = none
	members []string
}

// New joins cluster cfg.Name for the sources whose identities are given
// (names, or URLs for unnamed sources), creating the bucket if needed.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, sources []string, hooks Hooks, logger *slog.Logger) (*Cluster, error) {
	if !ValidName(cfg.Name) {
		return nil, fmt.Errorf("cluster name %q: use 1-64 letters, digits, '_' and '-'", cfg.Name)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      "logproc_" + cfg.Name,
		Description: "source leases of log processors in cluster " + cfg.Name,
		TTL:         cfg.TTL,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: bucket: %w", cfg.Name, err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	c := &Cluster{cfg: cfg, kv: kv, hooks: hooks, log: logger,
		id:      sanitize(cfg.Instance) + "-" + hex.EncodeToString(suffix[:]),
		keys:    make([]string, len(sources)),
		names:   slices.Clone(sources),
		held:    make([]uint64, len(sources)),
		renewed: make([]time.Time, len(sources)),
		owners:  make([]string, len(sources)),
		safeFor: cfg.TTL * 7 / 10,
	}
	for i, s := range sources {
		h := sha256.Sum256([]byte(s))
		c.keys[i] = "lease." + hex.EncodeToString(h[:12])
		c.order = append(c.order, i)
	}
	slices.SortFunc(c.order, func(a, b int) int { return strings.Compare(c.keys[a], c.keys[b]) })
	sorted := slices.Clone(c.keys)
	slices.Sort(sorted)
	d := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	c.digest, c.warned = hex.EncodeToString(d[:8]), map[string]bool{}
	return c, nil
}

// ID is this processor's member ID.
func (c *Cluster) ID() string { return c.id }

// Run takes part until ctx ends, then stops reading every source it holds
// and gives its leases up, so that the others take them at once.
func (c *Cluster) Run(ctx context.Context) {
	round := c.cfg.TTL / 5
	t := time.NewTicker(round)
	defer t.Stop()
	for {
		c.round(ctx)
		select {
		case <-ctx.Done():
			c.leave()
			return
		case <-t.C:
		}
	}
}

// opTimeout bounds one key-value operation.
const opTimeout = 2 * time.Second

func (c *Cluster) round(ctx context.Context) {
	now := time.Now()
	octx, cancel := context.WithTimeout(ctx, 4*opTimeout)
	defer cancel()
	// Safety first: a lease not renewed lately may be someone else's soon.
	for i := range c.keys {
		if c.held[i] != 0 && now.Sub(c.renewed[i]) > c.safeFor {
			c.log.Warn("lease not renewed in time; stopped reading the source", "source", c.names[i], "lease", c.keys[i], "last_renewed", c.renewed[i])
			c.drop(i)
		}
	}
	if _, err := c.kv.Put(octx, "member."+c.id, []byte(c.digest+" "+c.cfg.Instance)); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("cluster heartbeat failed", "err", err)
		}
		return
	}
	// Renew what is held, whatever the membership says.
	for i, key := range c.keys {
		if c.held[i] == 0 {
			continue
		}
		rev, err := c.kv.Update(octx, key, []byte(c.id), c.held[i])
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("lease lost; stopped reading the source", "source", c.names[i], "lease", key, "err", err)
			c.drop(i)
			continue
		}
		c.mu.Lock()
		c.held[i], c.renewed[i] = rev, time.Now()
		c.mu.Unlock()
	}
	members, err := c.liveMembers(octx)
	if err != nil {
		c.log.Warn("cluster members unknown; not rebalancing this round", "err", err)
	} else {
		want := c.assign(members)
		for i, key := range c.keys {
			switch {
			case c.held[i] != 0 && want[i] != c.id:
				c.handOver(octx, i)
			case c.held[i] == 0 && want[i] == c.id:
				// Fails while anyone holds it: the holder hands it over, or
				// its lease expires.
				if rev, err := c.kv.Create(octx, key, []byte(c.id)); err == nil {
					c.mu.Lock()
					c.held[i], c.renewed[i] = rev, time.Now()
					c.mu.Unlock()
					c.log.Info("lease taken; reading the source", "source", c.names[i], "lease", key)
					c.hooks.Start(i)
				}
			}
		}
	}
	owners := make([]string, len(c.keys))
	for i, key := range c.keys {
		if c.held[i] != 0 {
			owners[i] = c.id
		} else if e, err := c.kv.Get(octx, key); err == nil {
			owners[i] = string(e.Value())
		}
	}
	c.mu.Lock()
	c.owners = owners
	if err == nil {
		c.members = members
	}
	c.mu.Unlock()
}

// liveMembers lists the member IDs whose heartbeat has not expired and
// who were given the same source list. A member with another list is left
// out of the dealing (and warned about once): the two would deal the
// sources differently, and a source could fall to one that lacks it.
// Leases stay exclusive either way.
func (c *Cluster) liveMembers(ctx context.Context) ([]string, error) {
	l, err := c.kv.ListKeysFiltered(ctx, "member.*")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, err
	}
	var keys []string
	if l != nil {
		for k := range l.Keys() {
			keys = append(keys, k)
		}
		_ = l.Stop()
	}
	var out []string
	for _, k := range keys {
		id := strings.TrimPrefix(k, "member.")
		if id == c.id {
			continue
		}
		e, err := c.kv.Get(ctx, k)
		if err != nil {
			continue // expired since the listing
		}
		digest, instance, _ := strings.Cut(string(e.Value()), " ")
		if digest != c.digest {
			if !c.warned[id] {
				c.warned[id] = true
				c.log.Warn("a member of the cluster was given another source list; it is not dealt this processor's sources",
					"member", id, "instance", instance)
			}
			continue
		}
		out = append(out, id)
	}
	if !slices.Contains(out, c.id) {
		out = append(out, c.id)
	}
	slices.Sort(out)
	return out, nil
}

// assign deals the sources, by key, round-robin to members.
func (c *Cluster) assign(members []string) []string {
	want := make([]string, len(c.keys))
	for n, i := range c.order {
		want[i] = members[n%len(members)]
	}
	return want
}

// handOver stops reading source i, then gives its lease up.
func (c *Cluster) handOver(ctx context.Context, i int) {
	rev := c.held[i]
	c.drop(i)
	if err := c.kv.Delete(ctx, c.keys[i], jetstream.LastRevision(rev)); err != nil {
		c.log.Warn("lease not given up; it will expire", "source", c.names[i], "lease", c.keys[i], "err", err)
		return
	}
	c.log.Info("lease handed over to rebalance", "source", c.names[i], "lease", c.keys[i])
}

// drop stops reading source i and forgets its lease.
func (c *Cluster) drop(i int) {
	c.hooks.Stop(i)
	c.mu.Lock()
	c.held[i] = 0
	c.mu.Unlock()
}

// leave stops every source held and gives the leases and membership up.
func (c *Cluster) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for i := range c.keys {
		if c.held[i] != 0 {
			rev := c.held[i]
			c.drop(i)
			_ = c.kv.Delete(ctx, c.keys[i], jetstream.LastRevision(rev))
		}
	}
	_ = c.kv.Delete(ctx, "member."+c.id)
}

// Owners returns each source's owner as last seen: a member ID ("" when
// no processor holds it).
func (c *Cluster) Owners() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.owners)
}

// Members returns the live members as last seen.
func (c *Cluster) Members() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

// sanitize keeps an instance name usable in a key.
func sanitize(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch == '-' || ch == '_' || ('0' <= ch && ch <= '9') || ('a' <= ch && ch <= 'z') || ('A' <= ch && ch <= 'Z')) {
			b[i] = '_'
		}
	}
	if len(b) == 0 || len(b) > 48 {
		b = append(b[:min(len(b), 48)], "p"...)
	}
	return string(b)
}

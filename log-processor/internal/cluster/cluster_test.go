package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus/natstest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/cluster"
)

// readers records who reads each source, and counts the times a source
// was started while another member still read it.
type readers struct {
	mu         sync.Mutex
	by         map[int]string
	violations []string
}

func (r *readers) hooks(member string) cluster.Hooks {
	return cluster.Hooks{
		Start: func(i int) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if other := r.by[i]; other != "" {
				r.violations = append(r.violations, fmt.Sprintf("source %d started by %s while %s read it", i, member, other))
			}
			r.by[i] = member
		},
		Stop: func(i int) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.by[i] == member {
				delete(r.by, i)
			}
		},
	}
}

// counts returns how many sources each member reads.
func (r *readers) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, m := range r.by {
		out[m]++
	}
	return out
}

type member struct {
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

func join(t *testing.T, url, name string, ttl time.Duration, sources []string, r *readers) *member {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.New(context.Background(), js, cluster.Config{Name: "fleet", Instance: name, TTL: ttl}, sources,
		r.hooks(name), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() { c.Run(ctx); close(m.done) }()
	t.Cleanup(func() { m.cancel(); <-m.done; nc.Close() })
	return m
}

// TestShareJoinLeaveDie: six sources spread evenly over members as they
// join (6, then 3+3, then 2+2+2); a member that leaves hands its sources
// over at once; one cut off from NATS stops reading before the others take
// its sources; one given another source list is left out of the dealing.
// No source is ever read by two members at once.
func TestShareJoinLeaveDie(t *testing.T) {
	srv := natstest.Start(t)
	sources := []string{"a", "b", "c", "d", "e", "f"}
	const ttl = 2 * time.Second
	r := &readers{by: map[int]string{}}
	even := func(want ...int) func() bool {
		return func() bool {
			c := r.counts()
			if len(c) != len(want) {
				return false
			}
			for _, n := range c {
				if n != want[0] {
					return false
				}
			}
			return true
		}
	}
	join(t, srv.URL(), "p1", ttl, sources, r)
	poll.Until(t, 30*time.Second, "one member reading all six", even(6))
	join(t, srv.URL(), "p2", ttl, sources, r)
	poll.Until(t, 30*time.Second, "three each", even(3, 3))
	p3 := join(t, srv.URL(), "p3", ttl, sources, r)
	poll.Until(t, 30*time.Second, "two each", even(2, 2, 2))

	p3.cancel() // a clean stop: its leases are given up at once
	<-p3.done
	left := time.Now()
	poll.Until(t, 30*time.Second, "three each after p3 left", even(3, 3))
	t.Logf("sources moved %v after a member left", time.Since(left).Round(10*time.Millisecond))

	p4 := join(t, srv.URL(), "p4", ttl, sources, r)
	poll.Until(t, 30*time.Second, "two each with p4", even(2, 2, 2))
	p4.nc.Close() // cut off: it can renew nothing
	cut := time.Now()
	poll.Until(t, 30*time.Second, "three each after p4 was cut off", even(3, 3))
	t.Logf("sources moved %v after a member was cut off (lease %v)", time.Since(cut).Round(10*time.Millisecond), ttl)

	// A member given another list is not dealt these sources: it reads the
	// one only it has, and the others stay where they are.
	join(t, srv.URL(), "p5", ttl, append(sources, "g"), r)
	poll.Until(t, 30*time.Second, "p5 reading g alone", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.by[6] == "p5" && len(r.by) == 7
	})
	if c := r.counts(); c["p5"] != 1 {
		t.Errorf("readers %v: p5 should read only the source only it has", c)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.violations {
		t.Error(v)
	}
}

// Command testrun runs go test with -json and reports as it goes: a line
// per package as it finishes (with its time), a note every 30 s while
// packages are still running, every failure's output, and at the end the
// tests that were skipped, each with its reason. It exits with go test's
// status. make test runs it; any go test flags may follow:
//
//	go run ./scripts/testrun -race -count=1 ./...
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// event is one line of go test -json (test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// report is what the run saw.
type report struct {
	out      io.Writer
	start    time.Time
	mu       sync.Mutex
	running  map[string]time.Time // packages started, not finished
	output   map[string][]string  // a test's (or package's) output, kept until it ends
	skips    map[string][]string  // tests skipped ("pkg Test"), by reason
	failures int
	passed   int
	pkgs     int
}

func key(e event) string { return e.Package + " " + e.Test }

func (r *report) handle(e event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	short := strings.TrimPrefix(e.Package, "github.com/logpipeline/log-processing-service/")
	switch e.Action {
	case "start":
		r.running[e.Package] = time.Now()
	case "output":
		if e.Test != "" || strings.TrimSpace(e.Output) != "" {
			k := key(e)
			r.output[k] = append(r.output[k], e.Output)
		}
	case "pass":
		if e.Test != "" {
			r.passed++
			delete(r.output, key(e))
			return
		}
		delete(r.running, e.Package)
		r.pkgs++
		fmt.Fprintf(r.out, "  ok    %-60s %6.1fs\n", short, e.Elapsed)
		delete(r.output, key(e))
	case "skip":
		if e.Test == "" {
			delete(r.running, e.Package)
			delete(r.output, key(e))
			return // a package without tests
		}
		why := skipReason(r.output[key(e)])
		r.skips[why] = append(r.skips[why], short+" "+e.Test)
		delete(r.output, key(e))
	case "fail":
		if e.Test != "" {
			r.failures++
			fmt.Fprintf(r.out, "--- FAIL %s %s\n%s", short, e.Test, strings.Join(r.output[key(e)], ""))
			delete(r.output, key(e))
			return
		}
		delete(r.running, e.Package)
		r.pkgs++
		fmt.Fprintf(r.out, "  FAIL  %-60s %6.1fs\n", short, e.Elapsed)
		if out := r.output[key(e)]; len(out) > 0 { // a build failure, a panic outside a test
			fmt.Fprint(r.out, strings.Join(out, ""))
		}
		delete(r.output, key(e))
	}
}

// skipReason finds the reason in a skipped test's output: the text after
// file.go:NN: on the line that says why.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "---") || strings.HasPrefix(l, "=== ") || l == "" {
			continue
		}
		if _, rest, ok := strings.Cut(l, ".go:"); ok {
			if _, why, ok := strings.Cut(rest, ": "); ok {
				return why
			}
		}
		return l
	}
	return "(no reason given)"
}

// tick says which packages are still running, every 30 s.
func (r *report) tick(stop <-chan struct{}) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		var names []string
		for p := range r.running {
			names = append(names, strings.TrimPrefix(p, "github.com/logpipeline/log-processing-service/"))
		}
		sort.Strings(names)
		r.mu.Unlock()
		what := "compiling the test binaries"
		if len(names) > 0 {
			what = "running " + strings.Join(names, ", ")
		}
		fmt.Fprintf(r.out, "  ... %s (%s so far)\n", what, time.Since(r.start).Round(time.Second))
	}
}

func main() {
	args := append([]string{"test", "-json"}, os.Args[1:]...)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testrun:", err)
		os.Exit(1)
	}
	r := &report{out: os.Stdout, start: time.Now(), running: map[string]time.Time{}, output: map[string][]string{},
		skips: map[string][]string{}}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testrun:", err)
		os.Exit(1)
	}
	stop := make(chan struct{})
	go r.tick(stop)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Fprintln(os.Stdout, sc.Text()) // not an event: a build error line
			continue
		}
		r.handle(e)
	}
	err = cmd.Wait()
	close(stop)
	skipped := 0
	reasons := make([]string, 0, len(r.skips))
	for why, tests := range r.skips {
		skipped += len(tests)
		reasons = append(reasons, why)
	}
	slices.Sort(reasons)
	fmt.Printf("\n%d packages, %d tests passed, %d failed, %d skipped, in %s\n", r.pkgs, r.passed, r.failures, skipped,
		time.Since(r.start).Round(time.Second))
	for _, why := range reasons {
		tests := r.skips[why]
		slices.Sort(tests)
		fmt.Printf("skipped (%d): %s\n", len(tests), why)
		for i, t := range tests {
			if i == 5 {
				fmt.Printf("    ... and %d more\n", len(tests)-5)
				break
			}
			fmt.Println("    " + t)
		}
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		os.Exit(1)
	}
}

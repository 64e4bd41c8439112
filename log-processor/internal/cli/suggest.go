package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// suggest returns the known name closest to got (a mistyped flag or config
// key), if one is close enough to be what was meant: "_" for "-", a letter
// or two off, or the start of one (--url for --urls).
func suggest(got string, known []string) string {
	norm := strings.ReplaceAll(strings.ToLower(got), "_", "-")
	best, bestD := "", 3
	for _, k := range known {
		if k == norm {
			return k
		}
		d := editDistance(norm, k)
		if strings.HasPrefix(k, norm) && len(norm) >= 3 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// flagNames returns the names of fs's flags.
func flagNames(fs *pflag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) { out = append(out, f.Name) })
	return out
}

// withSuggestion adds "did you mean --X?" to pflag's unknown-flag error.
func withSuggestion(err error, fs *pflag.FlagSet) error {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return err
	}
	if s := suggest(name, flagNames(fs)); s != "" {
		return fmt.Errorf("%w (did you mean --%s?)", err, s)
	}
	return err
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

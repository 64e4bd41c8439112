package cli

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEveryFlagDocumented: every flag --help lists has its line in
// docs/cli.md, so that a new bound is never undocumented.
func TestEveryFlagDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	if err := Run(t.Context(), []string{"--help"}, &help, io.Discard); err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(help.String(), -1)
	if len(flags) < 50 {
		t.Fatalf("found only %d flags in --help", len(flags))
	}
	for _, f := range flags {
		if !strings.Contains(string(doc), "`--"+f[1]+"`") {
			t.Errorf("--%s is not in docs/cli.md", f[1])
		}
	}
}

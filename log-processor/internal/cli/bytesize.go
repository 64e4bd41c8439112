package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
)

// byteSize is a flag value holding a number of bytes in *p, written as a
// plain number or with a binary unit: 512, 64KiB, 32MiB, 1GiB (KB, MB and
// GB, and K, M and G, mean the same binary units).
type byteSize[T ~int | ~int64] struct{ p *T }

// sizeVar defines a size flag stored in *p, with default def.
func sizeVar[T ~int | ~int64](fs *pflag.FlagSet, p *T, name string, def T, usage string) {
	*p = def
	fs.Var(byteSize[T]{p}, name, usage)
}

var byteUnits = []struct {
	suffixes []string
	n        int64
}{
	{[]string{"GIB", "GB", "G"}, 1 << 30},
	{[]string{"MIB", "MB", "M"}, 1 << 20},
	{[]string{"KIB", "KB", "K"}, 1 << 10},
	{[]string{"B"}, 1},
}

func (b byteSize[T]) Set(s string) error {
	v := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
unit:
	for _, u := range byteUnits {
		for _, suf := range u.suffixes {
			if num, ok := strings.CutSuffix(v, suf); ok {
				v, mult = strings.TrimSpace(num), u.n
				break unit
			}
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<31-1)/mult {
		return fmt.Errorf("want a size such as 65536, 64KiB or 32MiB, below 2GiB")
	}
	*b.p = T(n * mult)
	return nil
}

func (b byteSize[T]) String() string {
	if b.p == nil {
		return "0"
	}
	n := int64(*b.p)
	for _, u := range byteUnits[:3] {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffixes[0][:1] + "iB"
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b byteSize[T]) Type() string { return "size" }

// levelFlag is the --min-level flag: debug, info, warn or error.
type levelFlag struct{ p *parser.Level }

func (l levelFlag) Set(s string) error {
	v, err := parser.ParseMinLevel(s)
	if err != nil {
		return err
	}
	*l.p = v
	return nil
}

func (l levelFlag) String() string {
	if l.p == nil || *l.p == 0 {
		return "info"
	}
	return strings.ToLower(l.p.String())
}

func (l levelFlag) Type() string { return "level" }

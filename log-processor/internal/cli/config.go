package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
)

// The config file (--config) is YAML. Every flag is a key, spelled as the
// flag (storage: sqlite, queue-size: 20000, urls: [ws://...]); a flag given
// on the command line wins over the file. Two keys have no flag:
//
//	sources:        dialed sources with settings of their own
//	ingest-tokens:  the tokens pushers present (name, and token or token_file)
//
// ${NAME} anywhere in a value is replaced by the environment variable NAME
// (an unset one is an error), so secrets need not be in the file. Unknown
// keys are errors that name the key and its line.

// fileConfig is what the config file adds to the flags.
type fileConfig struct {
	sources []receiver.Config // each with its own name, URL, headers, open message and TLS
	tokens  []push.Token
	// insecure names the sources that skip certificate verification, to
	// warn about at start.
	insecure []string
}

// notInFile are flags that make no sense in the file.
var notInFile = map[string]bool{"config": true, "check-config": true, "help": true}

// loadConfig reads the config file at path, sets the flags it gives that
// the command line did not, and returns the rest.
func loadConfig(path string, fs *pflag.FlagSet) (fileConfig, error) {
	var fc fileConfig
	b, err := readBounded(path, maxConfigFile)
	if err != nil {
		return fc, fmt.Errorf("--config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fc, fmt.Errorf("--config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return fc, nil // an empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fc, fmt.Errorf("%s:%d: want keys and values at the top level", path, root.Line)
	}
	at := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", path, n.Line, fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return fc, at(k, "key %q given twice", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "sources":
			if fc.sources, fc.insecure, err = readSources(v, at); err != nil {
				return fc, err
			}
			continue
		case "ingest-tokens":
			if fc.tokens, err = readTokens(v, at); err != nil {
				return fc, err
			}
			continue
		}
		f := fs.Lookup(k.Value)
		if f == nil || notInFile[k.Value] {
			hint := ""
			if s := suggest(k.Value, append(flagNames(fs), "sources", "ingest-tokens")); s != "" && !notInFile[s] {
				hint = fmt.Sprintf("; did you mean %s?", s)
			}
			return fc, at(k, "unknown key %q (keys are the flags' names, and sources and ingest-tokens%s)", k.Value, hint)
		}
		if fs.Changed(k.Value) {
			continue // the command line wins
		}
		var vals []*yaml.Node
		switch v.Kind {
		case yaml.ScalarNode:
			vals = []*yaml.Node{v}
		case yaml.SequenceNode:
			if !strings.Contains(f.Value.Type(), "Slice") {
				return fc, at(v, "%s takes one value, not a list", k.Value)
			}
			vals = v.Content
		default:
			return fc, at(v, "%s: want a value", k.Value)
		}
		for _, n := range vals {
			if n.Kind != yaml.ScalarNode {
				return fc, at(n, "%s: want a plain value", k.Value)
			}
			s, err := expand(n.Value)
			if err != nil {
				return fc, at(n, "%s: %v", k.Value, err)
			}
			if err := fs.Set(k.Value, s); err != nil {
				return fc, at(n, "%s: %v", k.Value, err)
			}
		}
	}
	return fc, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces each ${NAME} in s by the environment variable NAME.
func expand(s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (set it before starting: export %s=... in a POSIX shell, $env:%s=\"...\" in PowerShell)",
			strings.Join(missing, ", "), missing[0], missing[0])
	}
	return out, nil
}

type errAt func(n *yaml.Node, format string, args ...any) error

// fields walks a mapping node, calling fn with each key and value; an
// unknown key (fn returns false) is an error naming it.
func fields(n *yaml.Node, what string, at errAt, fn func(key string, v *yaml.Node) (known bool, err error)) error {
	if n.Kind != yaml.MappingNode {
		return at(n, "%s: want keys and values", what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		known, err := fn(k.Value, v)
		if err != nil {
			return err
		}
		if !known {
			return at(k, "%s: unknown key %q", what, k.Value)
		}
	}
	return nil
}

// scalar returns a plain value, with ${NAME} expanded.
func scalar(v *yaml.Node, what string, at errAt) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", at(v, "%s: want a plain value", what)
	}
	s, err := expand(v.Value)
	if err != nil {
		return "", at(v, "%s: %v", what, err)
	}
	return s, nil
}

func readSources(n *yaml.Node, at errAt) ([]receiver.Config, []string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, nil, at(n, "sources: want a list")
	}
	var out []receiver.Config
	var insecure []string
	for _, el := range n.Content {
		var src receiver.Config
		var tlsFiles tlsFiles
		err := fields(el, "source", at, func(key string, v *yaml.Node) (bool, error) {
			var err error
			switch key {
			case "name":
				src.Name, err = scalar(v, key, at)
			case "url":
				src.URL, err = scalar(v, key, at)
			case "open_message":
				src.OpenMessage, err = scalar(v, key, at)
			case "headers", "header_files":
				if src.Header == nil {
					src.Header = http.Header{}
				}
				err = fields(v, key, at, func(name string, hv *yaml.Node) (bool, error) {
					val, err := scalar(hv, name, at)
					if err == nil && key == "header_files" {
						if val, err = readFileValue(val); err != nil {
							err = at(hv, "header_files: %s: %v", name, err)
						}
					}
					src.Header.Add(name, val)
					return true, err
				})
			case "tls":
				err = fields(v, "tls", at, func(tk string, tv *yaml.Node) (bool, error) {
					var err error
					switch tk {
					case "ca_file":
						tlsFiles.ca, err = scalar(tv, tk, at)
					case "cert_file":
						tlsFiles.cert, err = scalar(tv, tk, at)
					case "key_file":
						tlsFiles.key, err = scalar(tv, tk, at)
					case "server_name":
						tlsFiles.serverName, err = scalar(tv, tk, at)
					case "insecure_skip_verify":
						var s string
						if s, err = scalar(tv, tk, at); err == nil {
							if s != "true" && s != "false" {
								return true, at(tv, "insecure_skip_verify: want true or false")
							}
							tlsFiles.insecure = s == "true"
						}
					default:
						return false, nil
					}
					return true, err
				})
				tlsFiles.set = true
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return nil, nil, err
		}
		if src.URL == "" {
			return nil, nil, at(el, "source: url is required")
		}
		if tlsFiles.set {
			cfg, err := tlsFiles.client()
			if err != nil {
				return nil, nil, at(el, "source %s: tls: %v", src.Name, err)
			}
			src.TLS = cfg
			if tlsFiles.insecure {
				insecure = append(insecure, src.Name)
			}
		}
		out = append(out, src)
	}
	return out, insecure, nil
}

// tlsFiles is a source's tls block.
type tlsFiles struct {
	set                       bool
	ca, cert, key, serverName string
	insecure                  bool
}

// client builds the tls.Config of a dialed source.
func (t tlsFiles) client() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.serverName, InsecureSkipVerify: t.insecure, MinVersion: tls.VersionTLS12}
	if t.ca != "" {
		pem, err := readBounded(t.ca, maxPEMFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.ca)
		}
	}
	if (t.cert == "") != (t.key == "") {
		return nil, errors.New("give cert_file and key_file together")
	}
	if t.cert != "" {
		pair, err := loadKeyPair(t.cert, t.key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func readTokens(n *yaml.Node, at errAt) ([]push.Token, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, at(n, "ingest-tokens: want a list")
	}
	var out []push.Token
	for _, el := range n.Content {
		var t push.Token
		var file string
		err := fields(el, "ingest token", at, func(key string, v *yaml.Node) (bool, error) {
			var err error
			switch key {
			case "name":
				t.Name, err = scalar(v, key, at)
			case "token":
				t.Value, err = scalar(v, key, at)
			case "token_file":
				file, err = scalar(v, key, at)
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return nil, err
		}
		if file != "" {
			if t.Value != "" {
				return nil, at(el, "ingest token %s: give token or token_file, not both", t.Name)
			}
			if t.Value, err = readFileValue(file); err != nil {
				return nil, at(el, "ingest token %s: %v", t.Name, err)
			}
		}
		if t.Name == "" || t.Value == "" {
			return nil, at(el, "ingest token: name and token (or token_file) are required")
		}
		out = append(out, t)
	}
	return out, nil
}

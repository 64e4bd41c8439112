package cli

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
)

// Bounds on the files an operator points the processor at. A file past its
// bound, or one that is not a regular file (a directory, a device such as
// /dev/zero, a FIFO that would block the start), is an error at once.
const (
	maxConfigFile = 1 << 20  // --config
	maxSecretFile = 4 << 10  // a token: --api-token-file, --ingest-token-file, --nats-token-file, header_files
	maxPEMFile    = 1 << 20  // a certificate, key or CA bundle
	maxCredsFile  = 64 << 10 // --nats-creds (a JWT and a seed)
)

// readBounded reads the regular file at path, of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	if err := checkFile(path, max); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// checkFile fails unless path is a regular file of at most max bytes. It
// only looks (stat), so a FIFO or device is never opened.
func checkFile(path string, max int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > max {
		return fmt.Errorf("%s is %d bytes, larger than the %d a file of its kind may be", path, fi.Size(), max)
	}
	return nil
}

// readFileValue reads a secret from a file: its first line, trimmed.
func readFileValue(path string) (string, error) {
	b, err := readBounded(path, maxSecretFile)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return line, nil
}

// loadKeyPair is tls.LoadX509KeyPair on bounded regular files.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := readBounded(certFile, maxPEMFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := readBounded(keyFile, maxPEMFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}

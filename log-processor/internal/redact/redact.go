// Package redact hides credentials in URLs and connection strings before
// they are logged, shown by the API or stored with an entry.
package redact

import (
	"net/url"
	"strings"
)

// Mask replaces every hidden value.
const Mask = "REDACTED"

// secretWords are query parameter names, or parts of names, whose values
// are credentials. A name matches when, lower-cased, it equals one of
// exact or contains one of partial.
var (
	exact   = []string{"key", "sig", "auth", "pass", "pwd", "code", "jwt", "session", "sessionid"}
	partial = []string{"token", "secret", "passw", "signature", "apikey", "api_key", "api-key", "credential", "authorization", "auth_", "access_key", "private"}
)

// SecretParam reports whether a query parameter named name carries a
// credential.
func SecretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range exact {
		if n == w {
			return true
		}
	}
	for _, w := range partial {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// URL returns raw with its credentials replaced by Mask: the user
// information (user name and password) and the values of query parameters
// for which SecretParam holds. Anything that does not parse as a URL with
// a scheme is returned masked whole if it could hold a secret. A URL with
// nothing to hide is returned exactly as given.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.ContainsAny(raw, "@=") {
			return Mask
		}
		return raw
	}
	changed := false
	if u.User != nil {
		u.User, changed = url.User(Mask), true
	}
	if u.RawQuery != "" {
		q := strings.Split(u.RawQuery, "&")
		for i, kv := range q {
			k, _, hasValue := strings.Cut(kv, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if hasValue && SecretParam(name) {
				q[i], changed = k+"="+Mask, true
			}
		}
		u.RawQuery = strings.Join(q, "&")
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment, changed = "", "", true
	}
	if !changed {
		return raw // as given, not as re-encoded
	}
	return u.String()
}

// DSN returns a database connection string with its password hidden, in
// URL form (postgres://user:pass@host/db, file:path?_auth_pass=...) or
// key=value form (host=... password=...).
func DSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		return URL(dsn)
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && SecretParam(k) {
			fields[i] = k + "=" + Mask
		}
	}
	if len(fields) > 1 || strings.Contains(dsn, "=") {
		return strings.Join(fields, " ")
	}
	return dsn
}

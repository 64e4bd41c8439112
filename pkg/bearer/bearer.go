// Package bearer reads and checks the bearer token of an HTTP request, for
// both programs' endpoints that want one.
package bearer

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// From returns the token r carries in its Authorization header ("Bearer
// TOKEN", the scheme in any case, as RFC 7235 has it), or, with inQuery, in
// its token query parameter: a browser's WebSocket and EventSource cannot
// set headers, so only those requests should allow it. It returns "" when
// r carries none.
func From(r *http.Request, inQuery bool) string {
	if tok, ok := Scheme(r.Header.Get("Authorization"), "Bearer"); ok {
		return tok
	}
	if inQuery {
		return strings.TrimSpace(r.URL.Query().Get("token"))
	}
	return ""
}

// Scheme returns the credentials of an Authorization header value when
// its scheme is scheme, compared without regard to case.
func Scheme(header, scheme string) (string, bool) {
	s, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(s, scheme) {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// Equal reports whether got is want, comparing in constant time. An empty
// token is never equal.
func Equal(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

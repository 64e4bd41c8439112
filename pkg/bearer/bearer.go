// Package bearer reads and checks the bearer token of an HTTP request, for
// both programs' endpoints that want one.
package bearer

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// From returns the token r carries in its Authorization header ("Bearer
// TOKEN"), or, with inQuery, in its token query parameter: a browser's
// WebSocket and EventSource cannot set headers. It returns "" when r
// carries none.
func From(r *http.Request, inQuery bool) string {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(got)
	}
	if inQuery {
		return strings.TrimSpace(r.URL.Query().Get("token"))
	}
	return ""
}

// Equal reports whether got is want, comparing in constant time. An empty
// token is never equal.
func Equal(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

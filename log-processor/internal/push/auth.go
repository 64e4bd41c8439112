// Package push holds what every push source kind shares (our own
// newline-delimited JSON and WebSocket paths, and each ingest protocol):
// the tokens pushers present, one in-flight budget of bytes and requests
// for all of them, bounded reading and decompression of bodies, and the
// per-token accounting that /stats shows. They are small helpers the
// protocol packages call, not a base type they inherit.
package push

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/pkg/bearer"
)

// Anonymous names the pushers when no token is configured.
const Anonymous = "anonymous"

// Env is what every push source kind shares: the sink its intakes submit
// into, the tokens, and the one in-flight budget.
type Env struct {
	Sink *intake.Sink
	Auth *Auth
	Gate *Gate
}

// Token is a secret a pusher presents, and the name it is known by in
// /stats and in the Source of its entries.
type Token struct {
	Name  string
	Value string
}

// Auth checks the tokens pushers present. The zero value (no tokens)
// accepts every pusher as Anonymous. Safe for concurrent use.
type Auth struct {
	Tokens []Token
}

// How a request may carry its token, besides "Authorization: Bearer".
type Schemes uint8

const (
	// Basic: "Authorization: Basic" with any user name and the token as
	// the password (hosted Loki's and Elasticsearch's convention).
	Basic Schemes = 1 << iota
	// APIKey: "Authorization: ApiKey base64(id:token)", Elasticsearch's
	// (the id is any; the whole base64 value may also be the token).
	APIKey
	// Query: ?token=, for a GET whose client cannot set headers (a
	// browser's WebSocket). Never on a POST.
	Query
)

// Check returns the name of the token r carries, trying the schemes
// allowed besides Bearer; ok is false when it carries none that matches.
func (a *Auth) Check(r *http.Request, allow Schemes) (name string, ok bool) {
	query := ""
	if allow&Query != 0 && r.Method == http.MethodGet {
		query = r.URL.Query().Get("token")
	}
	return a.CheckHeader(r.Header.Get("Authorization"), query, allow)
}

// CheckHeader is Check for an Authorization header's value h (gRPC's
// authorization metadata, say) and, where Query is allowed, a token query
// parameter's.
func (a *Auth) CheckHeader(h, query string, allow Schemes) (name string, ok bool) {
	if len(a.Tokens) == 0 {
		return Anonymous, true
	}
	var secrets [2]string
	switch {
	case h != "":
		if tok, isBearer := bearer.Scheme(h, "Bearer"); isBearer {
			secrets[0] = tok
		} else if allow&Basic != 0 {
			if _, pass, isBasic := basicAuth(h); isBasic {
				secrets[0] = pass
			}
		}
		if allow&APIKey != 0 {
			if v, isKey := bearer.Scheme(h, "ApiKey"); isKey {
				secrets[0] = v
				if dec, err := base64.StdEncoding.DecodeString(v); err == nil {
					if _, key, found := strings.Cut(string(dec), ":"); found {
						secrets[1] = key
					}
				}
			}
		}
	case allow&Query != 0:
		secrets[0] = strings.TrimSpace(query)
	}
	for _, t := range a.Tokens { // every token compared, in constant time
		for _, s := range secrets {
			if bearer.Equal(s, t.Value) {
				name, ok = t.Name, true
			}
		}
	}
	return name, ok
}

// basicAuth reads an Authorization header of the Basic scheme.
func basicAuth(h string) (user, pass string, ok bool) {
	v, isBasic := bearer.Scheme(h, "Basic")
	if !isBasic {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(dec), ":")
	return user, pass, ok
}

// Unauthorized answers 401 with the challenge realm names.
func Unauthorized(w http.ResponseWriter, realm, how string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	http.Error(w, "unauthorized: "+how, http.StatusUnauthorized)
}

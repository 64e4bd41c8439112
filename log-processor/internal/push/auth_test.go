package push

import (
	"encoding/base64"
	"net/http/httptest"
	"testing"
)

func TestAuth(t *testing.T) {
	a := &Auth{Tokens: []Token{{Name: "fluent", Value: "tok-1"}, {Name: "vector", Value: "tok-2"}}}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, method, target, header string
		allow                        Schemes
		want                         string // "" = refused
	}{
		{"bearer", "POST", "/x", "Bearer tok-1", 0, "fluent"},
		{"bearer in lower case", "POST", "/x", "bearer tok-2", 0, "vector"},
		{"bearer, wrong token", "POST", "/x", "Bearer nope", 0, ""},
		{"basic with the token as password", "POST", "/x", "Basic " + b64("anyone:tok-1"), Basic, "fluent"},
		{"basic not allowed", "POST", "/x", "Basic " + b64("anyone:tok-1"), 0, ""},
		{"basic, wrong password", "POST", "/x", "Basic " + b64("tok-1:nope"), Basic, ""},
		{"api key id:token", "POST", "/x", "ApiKey " + b64("id:tok-2"), APIKey, "vector"},
		{"api key that is the token", "POST", "/x", "ApiKey tok-2", APIKey, "vector"},
		{"api key not allowed", "POST", "/x", "ApiKey " + b64("id:tok-2"), Basic, ""},
		{"query on a GET", "GET", "/x?token=tok-1", "", Query, "fluent"},
		{"query on a POST", "POST", "/x?token=tok-1", "", Query, ""},
		{"query not allowed", "GET", "/x?token=tok-1", "", 0, ""},
		{"nothing", "POST", "/x", "", Basic | APIKey | Query, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			name, ok := a.Check(r, tc.allow)
			if ok != (tc.want != "") || name != tc.want {
				t.Fatalf("Check = %q %v, want %q", name, ok, tc.want)
			}
		})
	}
	if name, ok := (&Auth{}).Check(httptest.NewRequest("POST", "/x", nil), 0); !ok || name != Anonymous {
		t.Fatalf("no tokens: %q %v, want anonymous", name, ok)
	}
}

package bearer

import (
	"net/http/httptest"
	"testing"
)

func TestFrom(t *testing.T) {
	for _, tc := range []struct {
		name, header, query string
		inQuery             bool
		want                string
	}{
		{"header", "Bearer abc", "", false, "abc"},
		{"header with spaces", "Bearer  abc ", "", false, "abc"},
		{"scheme in lower case", "bearer abc", "", false, "abc"},
		{"scheme in upper case", "BEARER abc", "", false, "abc"},
		{"no credentials", "Bearer", "", false, ""},
		{"other scheme", "Basic abc", "", false, ""},
		{"query refused", "", "token=q", false, ""},
		{"query", "", "token=q", true, "q"},
		{"header wins", "Bearer h", "token=q", true, "h"},
		{"none", "", "", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x?"+tc.query, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if got := From(r, tc.inQuery); got != tc.want {
				t.Fatalf("From = %q, want %q", got, tc.want)
			}
		})
	}
	if Equal("", "") || !Equal("a", "a") || Equal("a", "b") || Equal("ab", "a") {
		t.Fatal("Equal is wrong")
	}
}

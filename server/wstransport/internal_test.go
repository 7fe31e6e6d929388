package wstransport

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOriginChecker(t *testing.T) {
	oc, err := newOriginChecker([]string{"https://App.Example.com", "http://localhost:*", "https://*.example.com", "http://[::1]:*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		origin, host string
		want         bool
	}{
		{"", "gw.internal", true},
		{"https://gw.internal", "gw.internal", true},
		{"https://app.example.com", "gw.internal", true},
		{"https://a.b.example.com", "gw.internal", true},
		{"http://localhost:1", "gw.internal", true},
		{"http://[::1]:8080", "gw.internal", true},
		{"https://example.com", "gw.internal", false},
		{"https://xexample.com", "gw.internal", false},
		{"https://localhost:1", "gw.internal", false},
		{"http://gw.internal.evil.com", "gw.internal", false},
		{"::", "gw.internal", false},
	} {
		r := httptest.NewRequest("GET", "http://"+tt.host+"/query", nil)
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if got := oc.allowed(r); got != tt.want {
			t.Errorf("allowed(Origin %q, Host %q) = %v, want %v", tt.origin, tt.host, got, tt.want)
		}
	}
}

func TestTruncateReason(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got := truncateReason(long)
	if len(got) > maxCloseReason || !utf8.ValidString(got) {
		t.Fatalf("truncateReason gave %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if truncateReason("short") != "short" {
		t.Fatal("short reason changed")
	}
}

func TestParseOperationPayloadUsesJSONNumber(t *testing.T) {
	m, err := parseClientMessage([]byte(`{"type":"subscribe","id":"1","payload":{"query":"q","variables":{"n":12345678901234567890}}}`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseOperationPayload(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Variables["n"]; got == nil || got.(interface{ String() string }).String() != "12345678901234567890" {
		t.Fatalf("variables n = %#v, want json.Number", got)
	}
}

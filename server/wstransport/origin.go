package wstransport

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// originPattern is one parsed AllowedOrigins entry. Browsers do not apply
// CORS to the WebSocket handshake, so this check is the only thing standing
// between a logged-in user's browser and cross-site WebSocket hijacking.
type originPattern struct {
	scheme string
	// host is the exact host name, or the parent domain (without the leading
	// dot) when anySubdomain is set.
	host         string
	anySubdomain bool
	// port is the exact port, "" for "no explicit port", or "*" for any.
	port string
}

// parseOriginPattern parses entries such as "https://app.example.com",
// "http://localhost:*" and "https://*.example.com". It rejects bare
// wildcards: allowing every origin is exactly the hole the list exists to
// close, so it must not be one typo away.
func parseOriginPattern(s string) (originPattern, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || rest == "" {
		return originPattern{}, fmt.Errorf("origin %q: want scheme://host[:port]", s)
	}
	if strings.ContainsAny(rest, "/?#@") {
		return originPattern{}, fmt.Errorf("origin %q: an origin has no path, query, fragment or user info", s)
	}

	host, port, err := splitHostPort(rest)
	if err != nil {
		return originPattern{}, fmt.Errorf("origin %q: %w", s, err)
	}

	p := originPattern{scheme: strings.ToLower(scheme), port: port}
	switch {
	case host == "*" || host == "*.":
		return originPattern{}, fmt.Errorf("origin %q: a bare wildcard host would allow every site", s)
	case strings.HasPrefix(host, "*."):
		p.anySubdomain = true
		p.host = strings.ToLower(strings.TrimPrefix(host, "*."))
	case strings.Contains(host, "*"):
		return originPattern{}, fmt.Errorf("origin %q: '*' is only allowed as the first host label or as the port", s)
	default:
		p.host = strings.ToLower(host)
	}
	if p.port != "" && p.port != "*" && strings.Contains(p.port, "*") {
		return originPattern{}, fmt.Errorf("origin %q: port must be a number or '*'", s)
	}
	return p, nil
}

// splitHostPort splits "host", "host:port" and "[v6]:port" without
// net.SplitHostPort's requirement that a port be present.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", errors.New("unterminated IPv6 literal")
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return "", "", errors.New("malformed port after IPv6 literal")
		}
		return host, rest[1:], nil
	}
	host, port, hasPort := strings.Cut(s, ":")
	if host == "" {
		return "", "", errors.New("empty host")
	}
	if hasPort && (port == "" || strings.Contains(port, ":")) {
		return "", "", errors.New("malformed port")
	}
	return host, port, nil
}

func (p originPattern) match(u *url.URL) bool {
	if !strings.EqualFold(u.Scheme, p.scheme) {
		return false
	}
	if p.port != "*" && u.Port() != p.port {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if p.anySubdomain {
		return strings.HasSuffix(host, "."+p.host) && len(host) > len(p.host)+1
	}
	return host == p.host
}

// originChecker is gorilla's CheckOrigin for a parsed allow-list.
type originChecker struct {
	patterns []originPattern
}

func newOriginChecker(allowed []string) (originChecker, error) {
	var c originChecker
	for _, s := range allowed {
		p, err := parseOriginPattern(s)
		if err != nil {
			return originChecker{}, fmt.Errorf("parse allowed origin: %w", err)
		}
		c.patterns = append(c.patterns, p)
	}
	return c, nil
}

// allowed accepts a missing Origin (non-browser clients send none and cannot
// be hijacked through a victim's cookies) and same-origin requests, which is
// gorilla's own default, plus whatever the allow-list matches.
func (c originChecker) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range c.patterns {
		if p.match(u) {
			return true
		}
	}
	return false
}

// Package auth decides who is calling and what they may do: bearer token
// secrets and their hashes, the Viewer carried in the request context, and
// the role -> permission table every resolver and subscription checks.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ErrUnauthenticated means no valid credential came with the request.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrForbidden means the caller is known but its role does not allow this.
var ErrForbidden = errors.New("forbidden")

// Role is what a token may do. Stored as the lowercase value.
type Role string

// The built-in roles. SPEC C1's desk profiles map onto these.
const (
	RoleAdmin           Role = "admin"
	RoleAgent           Role = "agent"
	RoleRestrictedAgent Role = "restricted_agent"
	RoleLightAgent      Role = "light_agent"
)

// Roles lists every built-in role.
var Roles = []Role{RoleAdmin, RoleAgent, RoleRestrictedAgent, RoleLightAgent}

// ParseRole checks a stored or user-given role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("unknown role %q (want one of admin, agent, restricted_agent, light_agent)", s)
	}
	return r, nil
}

// Permission names one capability. Events carry the permission a subscriber
// needs to see them, so the same table filters queries and streams.
type Permission string

// The permissions of the foundation; later capabilities add theirs here.
const (
	// PermManageTokens: create, list and revoke API tokens, and see their events.
	PermManageTokens Permission = "tokens.manage"
	// PermReadOrg: read the org, its users and the caller's own token.
	PermReadOrg Permission = "org.read"
	// PermManageConnections: connect CRM/Bigin orgs to the desk portal,
	// list, deactivate, reactivate and remove connections, and see their
	// events (SPEC A1: only admins of the desk portal).
	PermManageConnections Permission = "connections.manage"
	// PermManageProfiles: read and edit the org's permission profiles (SPEC
	// C1), and see their events.
	PermManageProfiles Permission = "profiles.manage"
)

var rolePermissions = map[Role][]Permission{
	RoleAdmin:           {PermManageTokens, PermReadOrg, PermManageConnections, PermManageProfiles},
	RoleAgent:           {PermReadOrg},
	RoleRestrictedAgent: {PermReadOrg},
	RoleLightAgent:      {PermReadOrg},
}

// Viewer is the authenticated caller: one org, one user, one token, one role.
type Viewer struct {
	OrgID   int64
	UserID  int64
	TokenID int64
	Role    Role
	// Profile is the org's profile for Role as authentication read it; nil
	// means the role's default (see EffectiveProfile).
	Profile *Profile
}

// Can reports whether the viewer's role grants p.
func (v Viewer) Can(p Permission) bool {
	return slices.Contains(rolePermissions[v.Role], p)
}

// Permissions returns the viewer's permissions as strings, for SQL filters.
func (v Viewer) Permissions() []string {
	ps := rolePermissions[v.Role]
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

type viewerKey struct{}

// result is what authentication concluded for a request: a viewer or the
// reason there is none. Keeping the reason lets a resolver say "token revoked"
// rather than a bare "unauthenticated".
type result struct {
	viewer Viewer
	err    error
}

// WithViewer returns ctx carrying an authenticated viewer.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, result{viewer: v})
}

// WithFailure returns ctx recording why authentication failed; err should
// wrap ErrUnauthenticated.
func WithFailure(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, viewerKey{}, result{err: err})
}

// FromContext returns the caller, or an error wrapping ErrUnauthenticated.
func FromContext(ctx context.Context) (Viewer, error) {
	r, ok := ctx.Value(viewerKey{}).(result)
	if !ok {
		return Viewer{}, fmt.Errorf("no bearer token: %w", ErrUnauthenticated)
	}
	if r.err != nil {
		return Viewer{}, r.err
	}
	return r.viewer, nil
}

// Require returns the caller if it holds permission p.
func Require(ctx context.Context, p Permission) (Viewer, error) {
	v, err := FromContext(ctx)
	if err != nil {
		return Viewer{}, err
	}
	if !v.Can(p) {
		return Viewer{}, fmt.Errorf("role %s lacks %s: %w", v.Role, p, ErrForbidden)
	}
	return v, nil
}

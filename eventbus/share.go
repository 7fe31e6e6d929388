package eventbus

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
)

// Shared subscriptions. Executing a subscription's selection set for an
// event costs gqlgen more than writing the result to a socket, and many
// subscribers of one org typically hold the very same subscription (a
// widget deployment: one token, one query). Subscriptions that are
// identical, meaning
//
//   - the same WebSocket operation (Sharer.Key: document,
//     operation name, variables, extensions),
//   - the same viewer (org, user, token, role and profile: everything a
//     resolver may consult to decide what the viewer sees, so a restricted
//     agent never shares with an admin),
//   - the same filter and the same converter,
//
// form a group whose results are rendered once per event, by one extra
// execution of the operation (Sharer.Render, "the renderer"),
// and offered to every member (Sharer.Offer). A member's own
// execution is held meanwhile (Sharer.Hold): its channel yields
// nothing, and its operation gives up its goroutine.
//
// Positions keep every member exact. The renderer is an ordinary
// subscriber of the bus (live, or catching up from the outbox); last is the
// id of the last event handed to it, and pending the ids it has been handed
// but not yet rendered, in order: its results arrive in the same order, one
// per event, so each result is matched to its event. A member receives the
// results of events above its own cursor. A subscription joins a group only
// when it starts, and only if its start position is not behind last (every
// event after last still comes through the renderer); otherwise it runs on
// its own, as do members whose connection has no room for a result (they
// catch up from the outbox at their own pace, waiting for the client) and
// the members of a group whose renderer ended without them (it failed, or
// its first result matched no event). Joining only at the start keeps each
// member's results in order: its own execution never has results in flight
// while it receives the group's.

// renderKey is the context key that marks the renderer's subscription.
type renderKey struct{}

// groupKey narrows the search for a member's group; the whole viewer
// (profile included, and whatever a Viewer may come to hold) is compared on
// the candidates.
type groupKey struct {
	op               string // Sharer.Key
	filter           string // canonical (filterKey)
	conv             unsafe.Pointer
	org, user, token int64
	role             auth.Role
}

// group is a set of identical subscriptions and their renderer. Guarded by
// Bus.mu.
type group struct {
	key    groupKey
	viewer auth.Viewer
	filter Filter
	// last is the id of the last event handed to the renderer (its start
	// position until then); pending are the handed ids not yet rendered.
	last    int64
	pending []int64
	members map[member]struct{}
	// offerBuf is fanOut's list of recipients, kept between results.
	offerBuf []offer
	source   member // the renderer's subscription, once it subscribed
	stop     func() // ends the renderer; nil until it started
	closed   bool
}

func filterKey(f Filter) string {
	perms, types := slices.Clone(f.Permissions), slices.Clone(f.Types)
	slices.Sort(perms) // the same set in any order is the same filter
	slices.Sort(types)
	r := f.Refs
	return strings.Join([]string{strconv.FormatInt(f.OrgID, 10), strings.Join(perms, ","), strings.Join(types, ","),
		r.Ticket, r.Contact, r.Account, r.Department, strconv.FormatInt(r.Connection, 10), strconv.FormatInt(r.User, 10)}, "\x00")
}

// subscribeShared subscribes s as a member of its group, creating the group
// if there is none. It reports false, with s untouched, when s cannot join
// (its start is behind the group's renderer) and must run on its own.
func subscribeShared[T any](ctx context.Context, b *Bus, s *stream[T], share Sharer, v auth.Viewer, after int64) (bool, error) {
	start := after
	if start < 0 {
		// Read before joining: the renderer starts after it (a new group),
		// or has not passed it (checked below), so nothing later is missed.
		latest, err := store.LatestEventID(ctx, b.db, s.filter.OrgID)
		if err != nil {
			return false, err
		}
		start = latest
	}
	key := groupKey{op: share.Key(), filter: filterKey(s.filter), conv: s.conv,
		org: v.OrgID, user: v.UserID, token: v.TokenID, role: v.Role}

	b.mu.Lock()
	var g *group
	for _, c := range b.groups[key] {
		if reflect.DeepEqual(c.viewer, v) {
			g = c
			break
		}
	}
	created := g == nil
	if created {
		g = &group{key: key, viewer: v, filter: s.filter, last: start, members: map[member]struct{}{}}
		b.groups[key] = append(b.groups[key], g)
	} else if g.last > start {
		b.mu.Unlock()
		return false, nil
	}
	s.group, s.share, s.cursor = g, share, start
	g.members[s] = struct{}{}
	b.count++
	share.Hold() // its results come from the group
	b.mu.Unlock()

	if created {
		stop, ok := share.Render(
			func(ctx context.Context) context.Context { return context.WithValue(ctx, renderKey{}, g) },
			func(f Frame) { b.fanOut(g, f) },
			func() { b.renderEnded(g) })
		b.mu.Lock()
		switch {
		case !ok:
			b.dissolveLocked(g)
		case g.closed:
			stop() // every member left already
		default:
			g.stop = stop
		}
		b.mu.Unlock()
	}
	context.AfterFunc(ctx, func() { b.remove(s) })
	return true, nil
}

// subscribeRenderer subscribes s as the renderer of g: an ordinary
// subscriber (not counted) that starts after g.last and records in g what
// it is handed.
func subscribeRenderer[T any](ctx context.Context, b *Bus, s *stream[T], g *group) error {
	b.mu.Lock()
	if g.closed || g.source != nil {
		b.mu.Unlock()
		return errGroupClosed
	}
	s.filter = g.filter
	s.group, s.source = g, true
	g.source = s
	s.cursor, s.running = g.last, true
	b.addLocked(s, false)
	b.mu.Unlock()
	go s.catchUp()
	context.AfterFunc(ctx, func() { b.remove(s) })
	return nil
}

// handedLocked records that the renderer's channel takes the event id next.
func (g *group) handedLocked(id int64) {
	g.pending = append(g.pending, id)
	g.last = id
}

// fanOut offers one result of g's renderer to the members that have not
// seen its event. A member whose connection has no room leaves the group
// and catches up on its own from the last result it took. It runs on the
// renderer's goroutine, one result at a time, and offers without holding
// Bus.mu, so that groups fan out in parallel and the dispatcher never waits
// for them; meanwhile a member can only leave (its subscription ends).
func (b *Bus) fanOut(g *group, f Frame) {
	b.mu.Lock()
	if g.closed {
		b.mu.Unlock()
		return
	}
	if len(g.pending) == 0 {
		// A result no event explains: the renderer's resolver failed.
		// Each member meets that on its own.
		b.dissolveLocked(g)
		b.mu.Unlock()
		return
	}
	id := g.pending[0]
	g.pending = g.pending[1:]
	if len(g.pending) == 0 {
		g.pending = g.pending[:0:0] // let a burst's backing array go
	}
	to := g.offerBuf[:0]
	for m := range g.members {
		if s := m.state(); s.cursor < id {
			to = append(to, offer{m: m, share: s.share})
		}
	}
	g.offerBuf = nil // this call owns it until it is done
	b.mu.Unlock()

	for i := range to {
		to[i].ok, to[i].gone = to[i].share.Offer(f)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for i, o := range to {
		to[i] = offer{}
		s := o.m.state()
		if s.group != g || s.removed {
			continue // left meanwhile
		}
		switch {
		case o.ok:
			s.cursor = id
		case o.gone:
			// Completed or closing: its context ends and remove follows.
		default:
			delete(g.members, o.m)
			b.soloLocked(o.m)
		}
	}
	g.offerBuf = to[:0]
	if len(g.members) == 0 {
		b.closeGroupLocked(g)
	}
}

// offer is one member's part in a fanOut.
type offer struct {
	m        member
	share    Sharer
	ok, gone bool
}

// renderEnded is called when g's renderer execution has ended. If g still
// has members, they go on on their own.
func (b *Bus) renderEnded(g *group) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dissolveLocked(g)
}

// dissolveLocked ends g and lets every member go on on its own from its
// cursor.
func (b *Bus) dissolveLocked(g *group) {
	if g.closed {
		return
	}
	for m := range g.members {
		delete(g.members, m)
		b.soloLocked(m)
	}
	b.closeGroupLocked(g)
}

// closeGroupLocked takes g out of the index and stops its renderer.
func (b *Bus) closeGroupLocked(g *group) {
	if g.closed {
		return
	}
	g.closed = true
	b.groups[g.key] = slices.DeleteFunc(b.groups[g.key], func(c *group) bool { return c == g })
	if len(b.groups[g.key]) == 0 {
		delete(b.groups, g.key)
	}
	if g.stop != nil {
		g.stop()
	}
}

// soloLocked turns a member that left its group into an ordinary
// subscriber catching up from its cursor. Its channel is empty: it has
// never yielded anything.
func (b *Bus) soloLocked(m member) {
	s := m.state()
	s.share.Release() // its own execution produces its results again
	s.group, s.share = nil, nil
	b.addLocked(m, false) // already counted as a member
	b.catchUpLocked(m)
}

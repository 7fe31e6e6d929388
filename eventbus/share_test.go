package eventbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/eventbus"
	"github.com/deskbridge/deskbridge/server/wstransport"
	"github.com/deskbridge/deskbridge/store"
)

// The shared subscription tests run the bus behind a real gqlgen handler
// and WebSocket transport, with a subscription whose resolver is what the
// gateway's are: eventbus.Subscribe with the viewer's filter and a
// package-level converter. Each result names the viewer it was rendered
// for, so a result rendered for one viewer and delivered to another shows.

// shareEnv is a gateway in miniature.
type shareEnv struct {
	f       *fixture
	url     string
	viewers map[string]auth.Viewer // by token
	renders atomic.Int64           // results executed, shared or not
	// failRenderer makes shared executions (which carry no
	// wstransport.Shared) fail as they start.
	failRenderer atomic.Bool
	pad          string
}

func newShareEnv(t *testing.T, cfg wstransport.Config, wrap func(net.Listener) net.Listener) *shareEnv {
	t.Helper()
	e := &shareEnv{f: newFixture(t)}
	noDeals := auth.DefaultProfile(auth.RoleAdmin)
	noDeals.Access = map[auth.Area]auth.Access{auth.AreaDeals: auth.AccessNone}
	e.viewers = map[string]auth.Viewer{
		"admin":      {OrgID: e.f.org, UserID: 1, TokenID: 1, Role: auth.RoleAdmin},
		"restricted": {OrgID: e.f.org, UserID: 2, TokenID: 2, Role: auth.RoleRestrictedAgent},
		// The admin's token, but authenticated while the org's admin
		// profile hid deals: it must not see what the admin sees.
		"admin-no-deals": {OrgID: e.f.org, UserID: 1, TokenID: 1, Role: auth.RoleAdmin, Profile: &noDeals},
	}
	cfg.InitFunc = func(ctx context.Context, p transport.InitPayload) (context.Context, error) {
		v, ok := e.viewers[p.GetString("token")]
		if !ok {
			return nil, fmt.Errorf("unknown token")
		}
		return auth.WithViewer(ctx, v), nil
	}
	tr := wstransport.New(cfg)
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: `type Query { x: Int }
		type Subscription { ev(after: ID): Ev! }
		type Ev { id: ID! who: String! pad: String! }`})
	h := handler.New(&graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return schema },
		ComplexityFunc: func(context.Context, string, string, int, map[string]any) (int, bool) {
			return 1, true
		},
		ExecFunc: e.exec,
	})
	h.AddTransport(tr)
	srv := httptest.NewUnstartedServer(h)
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			t.Errorf("shutdown transport: %v", err)
		}
		srv.Close()
	})
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return e
}

func eventID(e store.Event) int64 { return e.ID }

func who(v auth.Viewer) string {
	return fmt.Sprintf("%d/%s/deals=%v", v.UserID, v.Role, v.CanSee(auth.AreaDeals))
}

func (e *shareEnv) exec(ctx context.Context) graphql.ResponseHandler {
	opCtx := graphql.GetOperationContext(ctx)
	args := opCtx.Operation.SelectionSet[0].(*ast.Field).ArgumentMap(opCtx.Variables)
	if _, member := eventbus.SharerFrom(ctx); !member && e.failRenderer.Load() {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "renderer failed"))
	}
	v, err := auth.FromContext(ctx)
	if err != nil {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "%v", err))
	}
	after := int64(-1)
	if s, ok := args["after"].(string); ok {
		after, _ = strconv.ParseInt(s, 10, 64)
	}
	ch, err := eventbus.Subscribe(ctx, e.f.bus, eventbus.Filter{OrgID: v.OrgID, Permissions: v.Permissions(),
		Refs: store.EventRefs{User: v.UserID}}, after, eventID)
	if err != nil {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "%v", err))
	}
	return func(ctx context.Context) *graphql.Response {
		select {
		case id, ok := <-ch:
			if !ok {
				return nil
			}
			e.renders.Add(1)
			// The viewer as the execution sees it while rendering.
			v, _ := auth.FromContext(ctx)
			data, _ := json.Marshal(map[string]any{"ev": map[string]any{"id": strconv.FormatInt(id, 10), "who": who(v), "pad": e.pad}})
			return &graphql.Response{Data: data}
		case <-ctx.Done():
			return nil
		}
	}
}

// shareClient is one WebSocket subscriber.
type shareClient struct {
	t     *testing.T
	conn  *websocket.Conn
	token string
}

func (e *shareEnv) dial(t *testing.T, token string, dialer *websocket.Dialer) *shareClient {
	t.Helper()
	if dialer == nil {
		dialer = &websocket.Dialer{}
	}
	dialer.Subprotocols = []string{wstransport.SubprotocolGraphQLTransportWS}
	conn, _, err := dialer.Dial(e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := &shareClient{t: t, conn: conn, token: token}
	c.write(map[string]any{"type": "connection_init", "payload": map[string]any{"token": token}})
	if m := c.read(); m.Type != "connection_ack" {
		t.Fatalf("connection_init answered %+v", m)
	}
	return c
}

func (c *shareClient) write(m map[string]any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatal(err)
	}
}

// subscribe starts the subscription as id; after < 0 means live only.
func (c *shareClient) subscribe(id string, after int64) {
	c.t.Helper()
	vars := map[string]any{}
	if after >= 0 {
		vars["after"] = strconv.FormatInt(after, 10)
	}
	c.write(map[string]any{"type": "subscribe", "id": id,
		"payload": map[string]any{"query": `subscription($after: ID) { ev(after: $after) { id who pad } }`, "variables": vars}})
}

type shareMsg struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Payload struct {
		Data struct {
			Ev struct{ ID, Who string }
		}
		Errors []any
	} `json:"payload"`
}

func (c *shareClient) read() shareMsg {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var m shareMsg
	if err := c.conn.ReadJSON(&m); err != nil {
		c.t.Fatalf("client %s: %v", c.token, err)
	}
	return m
}

// events reads n results of subscription id and checks each was rendered
// for this client's viewer; it returns their event ids.
func (c *shareClient) events(e *shareEnv, id string, n int) []int64 {
	c.t.Helper()
	var ids []int64
	for len(ids) < n {
		m := c.read()
		if m.Type != "next" || m.ID != id || len(m.Payload.Errors) > 0 {
			c.t.Fatalf("client %s got %+v after %d of %d events", c.token, m, len(ids), n)
		}
		if want := who(e.viewers[c.token]); m.Payload.Data.Ev.Who != want {
			c.t.Fatalf("client %s got a result rendered for %s, want %s", c.token, m.Payload.Data.Ev.Who, want)
		}
		got, _ := strconv.ParseInt(m.Payload.Data.Ev.ID, 10, 64)
		ids = append(ids, got)
	}
	return ids
}

// quiet fails if the client receives anything within a short while.
func (c *shareClient) quiet() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var m shareMsg
	if err := c.conn.ReadJSON(&m); err == nil {
		c.t.Fatalf("client %s got an extra %+v", c.token, m)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sortedGroups(b *eventbus.Bus) []int {
	g := eventbus.Groups(b)
	slices.Sort(g)
	return g
}

// Identical subscriptions share one execution per event; different viewers
// (another role, or the same token seen with another profile) never share,
// and each sees exactly its events, once, in order, rendered for itself.
func TestSharedSubscriptionsRenderOncePerEvent(t *testing.T) {
	t.Parallel()
	var results atomic.Int64 // what the transport reports for metrics
	e := newShareEnv(t, wstransport.Config{Hooks: wstransport.Hooks{OnSubscriptionResult: func() { results.Add(1) }}}, nil)
	head := e.f.emit(t, "BEFORE", string(auth.PermReadOrg))
	tokens := map[string]int{"admin": 12, "restricted": 4, "admin-no-deals": 2}
	var clients []*shareClient
	for token, n := range tokens {
		for range n {
			c := e.dial(t, token, nil)
			c.subscribe("1", head)
			clients = append(clients, c)
		}
	}
	waitUntil(t, "every subscription", func() bool { return e.f.bus.Subscribers() == len(clients) })
	if g := sortedGroups(e.f.bus); !slices.Equal(g, []int{2, 4, 12}) {
		t.Fatalf("group sizes %v, want [2 4 12]", g)
	}

	const n = 300
	var all, public []int64
	for i := range n {
		perm := auth.PermReadOrg
		if i%3 == 0 {
			perm = auth.PermManageTokens // admins only
		}
		id := e.f.emit(t, "E", string(perm))
		all = append(all, id)
		if perm == auth.PermReadOrg {
			public = append(public, id)
		}
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		want := all
		if c.token == "restricted" {
			want = public
		}
		wg.Go(func() {
			assertExactly(t, c.events(e, "1", len(want)), want)
			c.quiet()
		})
	}
	wg.Wait()
	// Three groups each render their events once; unshared, every client
	// would have executed its own.
	deliveries := int64(0)
	for token, k := range tokens {
		if token == "restricted" {
			deliveries += int64(k * len(public))
		} else {
			deliveries += int64(k * len(all))
		}
	}
	if r := e.renders.Load(); r > deliveries/3 {
		t.Fatalf("%d executions for %d deliveries: the subscriptions were not shared", r, deliveries)
	}
	// The metrics hook counts each result once per client that got it,
	// whether it was shared or executed for that client.
	if got := results.Load(); got != deliveries {
		t.Fatalf("the transport reported %d subscription results for %d deliveries", got, deliveries)
	}
}

// A member whose connection has no room leaves its group and catches up on
// its own, exactly, while the others keep getting theirs from the group.
func TestSharedSubscriptionSlowMemberCatchesUpAlone(t *testing.T) {
	t.Parallel()
	e := newShareEnv(t, wstransport.Config{SendQueue: 4, WriteTimeout: time.Minute},
		func(l net.Listener) net.Listener { return smallSendBuffers{l} })
	e.pad = strings.Repeat("x", 16<<10)
	head := e.f.emit(t, "BEFORE", "p")
	fast := []*shareClient{e.dial(t, "admin", nil), e.dial(t, "admin", nil)}
	slow := e.dial(t, "admin", &websocket.Dialer{NetDialContext: smallReceiveBuffer})
	for _, c := range append(fast, slow) {
		c.subscribe("s", head)
	}
	waitUntil(t, "every subscription", func() bool { return e.f.bus.Subscribers() == 3 })
	if g := eventbus.Groups(e.f.bus); !slices.Equal(g, []int{3}) {
		t.Fatalf("groups %v, want one of 3", g)
	}
	const n = 200
	var want []int64
	var wg sync.WaitGroup
	got := make([][]int64, len(fast))
	for i, c := range fast {
		wg.Go(func() { got[i] = c.events(e, "s", n) })
	}
	for range n {
		want = append(want, e.f.emit(t, "E", string(auth.PermManageTokens)))
	}
	wg.Wait()
	for i := range fast {
		assertExactly(t, got[i], want)
	}
	// A fast member may have been left behind for a moment too; the one
	// that did not read certainly was.
	if g := eventbus.Groups(e.f.bus); len(g) > 1 || len(g) == 1 && g[0] > 2 {
		t.Fatalf("groups %v: the member that did not read is still in its group", g)
	}
	assertExactly(t, slow.events(e, "s", n), want)
	slow.quiet()
}

// Subscriptions join a group only where nothing can be missed: a live one
// joins the running group; one resuming from a position the group has
// passed replays on its own, exactly.
func TestSharedSubscriptionJoiningLate(t *testing.T) {
	t.Parallel()
	e := newShareEnv(t, wstransport.Config{}, nil)
	perm := string(auth.PermReadOrg)
	first := e.dial(t, "admin", nil)
	first.subscribe("live", -1)
	waitUntil(t, "the first subscription", func() bool { return e.f.bus.Subscribers() == 1 })
	var early []int64
	for range 20 {
		early = append(early, e.f.emit(t, "E", perm))
	}
	assertExactly(t, first.events(e, "live", len(early)), early)

	second := e.dial(t, "admin", nil)
	second.subscribe("live", -1)
	// Resuming from the fifth event, twice: the first of these starts
	// its own group (it replays from there); the second comes after that
	// group has gone past, so it must replay alone.
	resumeA := e.dial(t, "admin", nil)
	resumeA.subscribe("r", early[4])
	assertExactly(t, resumeA.events(e, "r", 15), early[5:])
	waitUntil(t, "three subscriptions", func() bool { return e.f.bus.Subscribers() == 3 })
	var late []int64
	for range 20 {
		late = append(late, e.f.emit(t, "E", perm))
	}
	assertExactly(t, resumeA.events(e, "r", len(late)), late)
	resumeB := e.dial(t, "admin", nil)
	resumeB.subscribe("r", early[4])
	assertExactly(t, resumeB.events(e, "r", 15+len(late)), append(slices.Clone(early[5:]), late...))
	assertExactly(t, first.events(e, "live", len(late)), late)
	assertExactly(t, second.events(e, "live", len(late)), late)
	if g := sortedGroups(e.f.bus); !slices.Equal(g, []int{1, 2}) {
		t.Fatalf("group sizes %v, want [1 2]: two live members, the first resume, and the second alone", g)
	}
	for _, c := range []*shareClient{first, second, resumeA, resumeB} {
		c.quiet()
	}
}

// When the last member leaves, the group and its execution end.
func TestSharedSubscriptionEndsWithItsMembers(t *testing.T) {
	t.Parallel()
	e := newShareEnv(t, wstransport.Config{}, nil)
	var clients []*shareClient
	for range 5 {
		c := e.dial(t, "admin", nil)
		c.subscribe("1", -1)
		clients = append(clients, c)
	}
	waitUntil(t, "every subscription", func() bool { return e.f.bus.Subscribers() == 5 })
	id := e.f.emit(t, "E", string(auth.PermReadOrg))
	for _, c := range clients {
		assertExactly(t, c.events(e, "1", 1), []int64{id})
		_ = c.conn.Close()
	}
	waitUntil(t, "the group to end", func() bool {
		return e.f.bus.Subscribers() == 0 && len(eventbus.Groups(e.f.bus)) == 0 && eventbus.Dispatched(e.f.bus) == 0
	})
}

// A group whose execution fails hands its members back to their own
// executions, which go on from where the group left them.
func TestSharedSubscriptionFallsBackWhenItsExecutionFails(t *testing.T) {
	t.Parallel()
	e := newShareEnv(t, wstransport.Config{}, nil)
	e.failRenderer.Store(true)
	head := e.f.emit(t, "BEFORE", string(auth.PermReadOrg))
	var clients []*shareClient
	for range 3 {
		c := e.dial(t, "admin", nil)
		c.subscribe("1", head)
		clients = append(clients, c)
	}
	waitUntil(t, "every subscription on its own", func() bool {
		return e.f.bus.Subscribers() == 3 && len(eventbus.Groups(e.f.bus)) == 0 && eventbus.Dispatched(e.f.bus) == 3
	})
	var want []int64
	for range 10 {
		want = append(want, e.f.emit(t, "E", string(auth.PermReadOrg)))
	}
	for _, c := range clients {
		assertExactly(t, c.events(e, "1", len(want)), want)
		c.quiet()
	}
}

// smallSendBuffers shrinks the kernel send buffer of accepted connections,
// and smallReceiveBuffer the receive buffer of a client, so that a client
// that does not read fills them after a dozen results.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func smallReceiveBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10) // smaller stalls the reading, not just the writing
	}
	return c, err
}

package syncengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The knowledge-base sync, desk -> chat (SPEC F2, G4; docs/KB.md). Per
// connection an admin picks the SalesIQ portal, which desk article
// categories go to which chat department, which articles by their desk
// permission, the status the copies get, and an interval. Runs copy the
// desk's published articles into SalesIQ as read-only articles tagged as
// coming from the desk, update the changed ones and delete the ones that
// left the desk or the selection; they are scheduled by the cluster leader
// (kb_schedule.go) and carried out in kb_run.go.

// kbArticles is SalesIQ's article module in the connector contract.
const kbArticles connector.Module = "articles"

// KBClock tells the KB sync the time. The wall clock in production; tests
// pass a fake one (clockwork's fake clock has this method, and the same
// value drives gocron through gocron.WithClock).
type KBClock interface {
	Now() time.Time
}

type kbWallClock struct{}

func (kbWallClock) Now() time.Time { return time.Now() }

// KBDesk is the desk side of the KB sync: the category tree and the
// articles, page by page. The Zoho desk connector has these methods
// (connectors/zoho/kb.go); the sync finds them by type assertion.
type KBDesk interface {
	// KBCategories lists every category (roots and sections), parents
	// before children, with Fields "name" and "parentCategoryId".
	KBCategories(ctx context.Context) ([]connector.Record, error)
	// KBArticles lists a page of a category's articles (its sections'
	// included) with the given status, without their bodies.
	KBArticles(ctx context.Context, categoryID, status string, from, limit int) ([]connector.Record, error)
	// Get reads one record; ("articles", id) is an article with its body,
	// a ReasonNotFound error when it is gone or in the trash.
	Get(ctx context.Context, m connector.Module, id string) (connector.Record, error)
}

// KBChat is the chat side: SalesIQ's departments, article categories and
// articles. The Zoho SalesIQ connector has these methods.
type KBChat interface {
	Departments(ctx context.Context) ([]connector.Record, error)
	Categories(ctx context.Context) ([]connector.Record, error)
	CreateCategory(ctx context.Context, name string, departmentIDs []string) (connector.Record, error)
	Write(ctx context.Context, m connector.Module, ws []connector.Write) ([]connector.Result, error)
	Delete(ctx context.Context, m connector.Module, ids []string) ([]connector.Result, error)
	// Find finds articles by a field; ("source_id", desk id) finds the
	// copies of a desk article.
	Find(ctx context.Context, m connector.Module, q connector.Query) ([]connector.Record, error)
}

// KBChatSource opens the chat side a connection's KB sync writes to. Today
// that is the portal and sealed refresh token stored with the KB settings
// (OwnKBPortal); once the SalesIQ link (SPEC A5) exists, a source that
// hands out the link's portal and credential replaces it, and nothing else
// of the KB sync changes.
type KBChatSource interface {
	OpenKBChat(ctx context.Context, c store.Connection, k store.KBSettings) (KBChat, error)
}

// OwnKBPortal is the KBChatSource of KB settings that carry their own
// SalesIQ portal and refresh token (sealed like the CRM's, under
// store.SecretKBSalesIQRefreshToken).
type OwnKBPortal struct{ Conns *ConnectionService }

// OpenKBChat opens the settings' portal with the stored token.
func (o OwnKBPortal) OpenKBChat(ctx context.Context, c store.Connection, k store.KBSettings) (KBChat, error) {
	token, err := o.Conns.openSecret(ctx, c, store.SecretKBSalesIQRefreshToken)
	if err != nil {
		return nil, err
	}
	return o.Conns.openKBChat(k.SalesIQDC, k.SalesIQScreen, token, false)
}

// openKBChat builds a SalesIQ client for a portal and refresh token: the
// account's connector (connector.ChatAccount, as the chat link uses it) and
// the portal's tool, which has the article calls.
func (s *ConnectionService) openKBChat(dc, screen, token string, interactive bool) (KBChat, error) {
	c, err := s.open(connector.Account{System: connector.SalesIQ, DC: dc, RefreshToken: token, Interactive: interactive})
	if err != nil {
		return nil, err
	}
	acct, ok := c.(connector.ChatAccount)
	if !ok {
		return nil, errors.New("opening the SalesIQ portal: the connector has no portals")
	}
	chat, ok := acct.ChatTool(screen).(KBChat)
	if !ok {
		return nil, fmt.Errorf("opening SalesIQ portal %s: the connector has no knowledge-base calls", screen)
	}
	return chat, nil
}

// kbDeskOf returns the desk side of a connection.
func (s *KBService) kbDeskOf(ctx context.Context, c store.Connection) (KBDesk, error) {
	desk, _, err := s.conns.For(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("opening the desk of connection %d: %w", c.ID, err)
	}
	kd, ok := desk.(KBDesk)
	if !ok {
		return nil, fmt.Errorf("opening the desk of connection %d: the connector has no knowledge-base methods", c.ID)
	}
	return kd, nil
}

// KBConfig builds a KBService.
type KBConfig struct {
	DB    *sqlx.DB
	Conns *ConnectionService // seals and opens secrets, opens the desk
	// Chat opens the chat side; nil = OwnKBPortal.
	Chat  KBChatSource
	Clock KBClock // nil = the wall clock
	Log   *slog.Logger
	// RunHere lets "sync now" and retries start their run in this process
	// at once. Off, they wait for the leader's next tick (at most a
	// minute); a replica that only serves the API sets it off.
	RunHere bool
	// Retention is how long finished runs are kept; default 90 days (a
	// monthly schedule keeps three runs), never less than 7 (B13's promise
	// for sync history).
	Retention time.Duration
	// Name identifies this process in runs (runner); default host/pid.
	Name string
}

// KBService is the KB sync: settings, "sync now", retries, history, and
// the scheduled runs (Schedule). Safe for concurrent use.
type KBService struct {
	db        *sqlx.DB
	conns     *ConnectionService
	chat      KBChatSource
	clock     KBClock
	log       *slog.Logger
	runHere   bool
	retention time.Duration
	name      string

	base     context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	pruneMu  sync.Mutex
	prunedAt time.Time
}

// NewKBService returns the KB sync for cfg. Close it to stop runs this
// process started for "sync now".
func NewKBService(cfg KBConfig) *KBService {
	s := &KBService{db: cfg.DB, conns: cfg.Conns, chat: cfg.Chat, clock: cfg.Clock, log: cfg.Log, runHere: cfg.RunHere,
		retention: cfg.Retention, name: cfg.Name}
	if s.chat == nil {
		s.chat = OwnKBPortal{Conns: cfg.Conns}
	}
	if s.clock == nil {
		s.clock = kbWallClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.retention <= 0 {
		s.retention = 90 * 24 * time.Hour
	}
	s.retention = max(s.retention, 7*24*time.Hour)
	if s.name == "" {
		host, _ := os.Hostname()
		s.name = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	s.base, s.stop = context.WithCancel(context.Background())
	return s
}

// Close stops the runs this process started in the background and waits
// for them; the leader's next tick restarts an interrupted one.
func (s *KBService) Close() {
	s.stop()
	s.wg.Wait()
}

// KBConflictError is a KB request the current state refuses (a run already
// going, the sync disabled or not configured, the connection not active).
// It wraps store.ErrConflict; PublicMessage says what is wrong.
type KBConflictError struct{ Reason string }

func (e *KBConflictError) Error() string { return "kb sync: " + e.Reason }

// Unwrap makes errors.Is(err, store.ErrConflict) hold.
func (e *KBConflictError) Unwrap() error { return store.ErrConflict }

// PublicMessage is what the API shows.
func (e *KBConflictError) PublicMessage() string { return e.Reason }

// KBPortal names the SalesIQ portal of an update, with the credentials of
// an account that belongs to it (a refresh token, or an authorization code
// exchanged once). Credentials may be left empty to keep the stored token,
// when the data center does not change.
type KBPortal struct {
	DC          string
	Screen      string
	Credentials ConnectionCredentials
}

// KBDepartment is one chat department and the desk categories whose
// articles sync into it.
type KBDepartment struct {
	ChatDepartmentID string
	DeskCategoryIDs  []string
}

// KBChange is an update of a connection's KB sync; nil fields keep their
// value (on the first update: the defaults of docs/KB.md). Field names in
// ConnectionInputError follow the GraphQL input.
type KBChange struct {
	SalesIQ       *KBPortal
	Departments   *[]KBDepartment
	Permission    *string // ALL, REGISTERED, BOTH
	ArticleStatus *string // PUBLISHED, DRAFT
	Interval      *string // DAILY, WEEKLY, MONTHLY
	TimeZone      *string // IANA name
	Enabled       *bool
}

// KBView is a connection's KB sync as the API shows it.
type KBView struct {
	Settings    store.KBSettings
	Departments []KBDepartment
	HasToken    bool
	LastRun     *store.KBRun
}

// kbConnection checks the permission and loads the org's connection.
func (s *KBService) kbConnection(ctx context.Context, v auth.Viewer, connID int64, action string) (store.Connection, error) {
	if !v.Can(auth.PermManageConnections) {
		return store.Connection{}, fmt.Errorf("%s: %w", action, auth.ErrForbidden)
	}
	c, err := store.ConnectionByID(ctx, s.db, v.OrgID, connID)
	if err != nil {
		return store.Connection{}, fmt.Errorf("%s: %w", action, err)
	}
	return c, nil
}

// Settings returns a connection's KB sync; ErrNotFound when it was never
// set up (or the connection is not the org's).
func (s *KBService) Settings(ctx context.Context, v auth.Viewer, connID int64) (KBView, error) {
	if _, err := s.kbConnection(ctx, v, connID, "reading kb sync settings"); err != nil {
		return KBView{}, err
	}
	return s.view(ctx, s.db, v.OrgID, connID)
}

func (s *KBService) view(ctx context.Context, q store.Queryer, orgID, connID int64) (KBView, error) {
	k, err := store.GetKBSettings(ctx, q, orgID, connID, false)
	if err != nil {
		return KBView{}, err
	}
	cats, err := store.GetKBCategories(ctx, q, orgID, connID)
	if err != nil {
		return KBView{}, err
	}
	names, err := store.SecretNames(ctx, q, orgID, connID)
	if err != nil {
		return KBView{}, err
	}
	out := KBView{Settings: k, Departments: groupKBCategories(cats), HasToken: slices.Contains(names, store.SecretKBSalesIQRefreshToken)}
	if runs, err := store.ListKBRuns(ctx, q, orgID, connID, 1, 0); err != nil {
		return KBView{}, err
	} else if len(runs) > 0 {
		out.LastRun = &runs[0]
	}
	return out, nil
}

// groupKBCategories turns rows into departments, in first-seen order.
func groupKBCategories(cats []store.KBCategory) []KBDepartment {
	out := []KBDepartment{}
	at := map[string]int{}
	for _, c := range cats {
		i, ok := at[c.ChatDepartmentID]
		if !ok {
			i = len(out)
			at[c.ChatDepartmentID] = i
			out = append(out, KBDepartment{ChatDepartmentID: c.ChatDepartmentID, DeskCategoryIDs: []string{}})
		}
		out[i].DeskCategoryIDs = append(out[i].DeskCategoryIDs, c.DeskCategoryID)
	}
	return out
}

// Defaults of a first update (docs/KB.md).
const (
	kbDefaultPermission = store.KBPermissionAll
	kbDefaultStatus     = store.KBStatusPublished
	kbDefaultInterval   = store.KBDaily
)

func kbOneOf(field, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return &ConnectionInputError{Field: field, Reason: fmt.Sprintf("must be one of %s", strings.Join(allowed, ", "))}
	}
	return nil
}

// Update changes a connection's KB sync (SPEC F2): the portal and its
// credential (checked with SalesIQ), the categories per department
// (checked against the desk's categories and the portal's departments; a
// category goes to one department at most), permission, status, interval,
// time zone and the switch. Enabling, or changing the interval or the time
// zone, schedules the next run; disabling unschedules it and cancels a
// queued run, and leaves every synced article as it is. Switching portal
// forgets the links: the old portal's copies stay untouched.
func (s *KBService) Update(ctx context.Context, v auth.Viewer, connID int64, ch KBChange) (KBView, error) {
	const action = "updating kb sync"
	c, err := s.kbConnection(ctx, v, connID, action)
	if err != nil {
		return KBView{}, err
	}
	if s.conns.box == nil {
		return KBView{}, errors.New("updating kb sync: no secret key configured (DESKBRIDGE_SECRET_KEY)")
	}
	if c.Status == store.ConnectionRemoved {
		return KBView{}, &KBConflictError{Reason: "the connection is removed"}
	}
	cur, err := store.GetKBSettings(ctx, s.db, v.OrgID, connID, false)
	first := errors.Is(err, store.ErrNotFound)
	if err != nil && !first {
		return KBView{}, fmt.Errorf("%s: %w", action, err)
	}
	next := cur
	if first {
		next = store.KBSettings{OrgID: v.OrgID, ConnectionID: connID, Permission: kbDefaultPermission,
			ArticleStatus: kbDefaultStatus, Interval: kbDefaultInterval, Enabled: true}
	}
	if ch.Permission != nil {
		if err := kbOneOf("permission", *ch.Permission, store.KBPermissionAll, store.KBPermissionRegistered, store.KBPermissionBoth); err != nil {
			return KBView{}, err
		}
		next.Permission = *ch.Permission
	}
	if ch.ArticleStatus != nil {
		if err := kbOneOf("articleStatus", *ch.ArticleStatus, store.KBStatusPublished, store.KBStatusDraft); err != nil {
			return KBView{}, err
		}
		next.ArticleStatus = *ch.ArticleStatus
	}
	if ch.Interval != nil {
		if err := kbOneOf("interval", *ch.Interval, store.KBDaily, store.KBWeekly, store.KBMonthly); err != nil {
			return KBView{}, err
		}
		next.Interval = *ch.Interval
	}
	if ch.Enabled != nil {
		next.Enabled = *ch.Enabled
	}
	if ch.TimeZone != nil {
		tz := strings.TrimSpace(*ch.TimeZone)
		if _, err := loadKBZone(tz); err != nil {
			return KBView{}, &ConnectionInputError{Field: "timeZone", Reason: fmt.Sprintf("unknown time zone %q; give an IANA name such as Asia/Tokyo", tz)}
		}
		next.TimeZone = tz
	}

	// The portal: a new one (or new credentials) is checked with SalesIQ.
	if first && ch.SalesIQ == nil {
		return KBView{}, &ConnectionInputError{Field: "salesIq", Reason: "the SalesIQ portal is needed the first time"}
	}
	var newToken string
	var chat KBChat
	var chatDeps []connector.Record // the portal's departments, read once
	portalChanged := false
	if p := ch.SalesIQ; p != nil {
		dc, err := checkConnectionDC("salesIq.dataCenter", p.DC)
		if err != nil {
			return KBView{}, err
		}
		screen := strings.TrimSpace(p.Screen)
		if screen == "" {
			return KBView{}, &ConnectionInputError{Field: "salesIq.screenName", Reason: "must not be empty"}
		}
		portalChanged = !first && (dc != cur.SalesIQDC || !strings.EqualFold(screen, cur.SalesIQScreen))
		creds := p.Credentials
		token := ""
		if creds == (ConnectionCredentials{}) {
			if first || dc != cur.SalesIQDC {
				return KBView{}, &ConnectionInputError{Field: "salesIq.credentials",
					Reason: "give the credentials of an account of the SalesIQ portal"}
			}
			if token, err = s.conns.openSecret(ctx, c, store.SecretKBSalesIQRefreshToken); err != nil {
				return KBView{}, fmt.Errorf("%s: %w", action, err)
			}
		} else {
			if token, err = s.conns.refreshTokenOf(ctx, "salesIq.credentials", connector.SalesIQ, dc, creds); err != nil {
				return KBView{}, err
			}
			newToken = token
		}
		if chat, err = s.conns.openKBChat(dc, screen, token, true); err != nil {
			return KBView{}, err
		}
		if chatDeps, err = checkKBPortal(ctx, chat, screen); err != nil {
			return KBView{}, err
		}
		next.SalesIQDC, next.SalesIQScreen = dc, screen
	}

	// The categories per department, checked against both vendors.
	var cats []store.KBCategory
	if portalChanged && ch.Departments == nil {
		// The departments named so far are the old portal's: they must
		// exist in the new one too, or be given again.
		old, err := store.GetKBCategories(ctx, s.db, v.OrgID, connID)
		if err != nil {
			return KBView{}, fmt.Errorf("%s: %w", action, err)
		}
		if len(old) > 0 {
			if _, err := s.checkKBDepartments(ctx, c, chatDeps, groupKBCategories(old)); err != nil {
				var ie *ConnectionInputError
				if errors.As(err, &ie) {
					return KBView{}, &ConnectionInputError{Field: "departments",
						Reason: "the new SalesIQ portal does not have the departments chosen so far; give departments again (" + ie.Reason + ")"}
				}
				return KBView{}, err
			}
		}
	}
	if ch.Departments != nil {
		if chat == nil {
			if chat, err = s.chat.OpenKBChat(ctx, c, next); err != nil {
				return KBView{}, fmt.Errorf("%s: %w", action, err)
			}
			if chatDeps, err = chat.Departments(ctx); err != nil {
				return KBView{}, fmt.Errorf("%s: listing the chat departments: %w", action, err)
			}
		}
		if cats, err = s.checkKBDepartments(ctx, c, chatDeps, *ch.Departments); err != nil {
			return KBView{}, err
		}
	}
	if next.TimeZone == "" {
		next.TimeZone = s.defaultKBZone(ctx, c)
	}

	// The schedule.
	loc, err := loadKBZone(next.TimeZone)
	if err != nil {
		return KBView{}, fmt.Errorf("%s: %w", action, err)
	}
	now := s.clock.Now()
	switch {
	case !next.Enabled:
		next.NextRunAt = nil
	case first || !cur.Enabled || cur.NextRunAt == nil || cur.Interval != next.Interval || cur.TimeZone != next.TimeZone:
		at := NextKBRun(next.Interval, next.FirstSyncAt, loc, now)
		next.NextRunAt = &at
	}
	userID := v.UserID
	next.UpdatedBy = &userID

	var out KBView
	err = store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if !first {
			// Serialise with the leader's claim and other updates.
			if _, err := store.GetKBSettings(ctx, tx, v.OrgID, connID, true); err != nil {
				return err
			}
		}
		if _, err := store.PutKBSettings(ctx, tx, next); err != nil {
			return err
		}
		if cats != nil || (ch.Departments != nil && len(*ch.Departments) == 0) {
			if err := store.ReplaceKBCategories(ctx, tx, v.OrgID, connID, cats); err != nil {
				return err
			}
		}
		if newToken != "" {
			if err := s.conns.putSecrets(ctx, tx, c, map[string]string{store.SecretKBSalesIQRefreshToken: newToken}); err != nil {
				return err
			}
		}
		if portalChanged {
			if err := store.ForgetKBLinks(ctx, tx, v.OrgID, connID); err != nil {
				return err
			}
		}
		if !next.Enabled {
			if _, err := store.CancelQueuedKBRuns(ctx, tx, v.OrgID, connID, now); err != nil {
				return err
			}
		}
		var err error
		out, err = s.view(ctx, tx, v.OrgID, connID)
		return err
	})
	if err != nil {
		return KBView{}, fmt.Errorf("%s: %w", action, err)
	}
	s.log.InfoContext(ctx, "kb sync settings changed", "org_id", v.OrgID, "connection_id", connID,
		"enabled", next.Enabled, "interval", next.Interval, "time_zone", next.TimeZone, "departments", len(out.Departments),
		"next_run_at", next.NextRunAt, "portal_changed", portalChanged, "has_secret", out.HasToken)
	return out, nil
}

// checkKBPortal checks that the account reaches the portal: the portal
// must be among the account's, and its departments readable. It returns
// the departments.
func checkKBPortal(ctx context.Context, chat KBChat, screen string) ([]connector.Record, error) {
	deps, err := chat.Departments(ctx)
	if err == nil {
		return deps, nil
	}
	var ce *connector.Error
	switch {
	case connector.ClassOf(err) == connector.Auth:
		return nil, &ConnectionInputError{Field: "salesIq.credentials", Reason: "the credentials were refused by SalesIQ"}
	case errors.As(err, &ce) && ce.Class == connector.Permanent:
		return nil, &ConnectionInputError{Field: "salesIq.screenName",
			Reason: fmt.Sprintf("SalesIQ has no portal %q for this account (%s)", screen, ce.Message)}
	}
	return nil, fmt.Errorf("checking the SalesIQ portal: %w", err)
}

// checkKBDepartments checks the categories per department: departments
// the portal has (chatDeps), each once; categories the desk has, each
// given to one department at most.
func (s *KBService) checkKBDepartments(ctx context.Context, c store.Connection, chatDeps []connector.Record, deps []KBDepartment) ([]store.KBCategory, error) {
	if len(deps) > 200 {
		return nil, &ConnectionInputError{Field: "departments", Reason: "at most 200 departments"}
	}
	known := map[string]string{}
	for _, d := range chatDeps {
		known[d.ID] = str(d.Fields["name"])
	}
	desk, err := s.kbDeskOf(ctx, c)
	if err != nil {
		return nil, err
	}
	tree, err := desk.KBCategories(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the desk's article categories: %w", err)
	}
	deskCats := map[string]string{}
	for _, k := range tree {
		deskCats[k.ID] = str(k.Fields["name"])
	}
	cats := []store.KBCategory{}
	depAt := map[string]int{}
	catAt := map[string][2]int{}
	for i, d := range deps {
		field := fmt.Sprintf("departments[%d]", i)
		id := strings.TrimSpace(d.ChatDepartmentID)
		if _, ok := known[id]; !ok {
			return nil, &ConnectionInputError{Field: field + ".chatDepartmentId",
				Reason: fmt.Sprintf("the SalesIQ portal has no department %q", id)}
		}
		if j, dup := depAt[id]; dup {
			return nil, &ConnectionInputError{Field: field + ".chatDepartmentId",
				Reason: fmt.Sprintf("department %q is already listed at departments[%d]; list its categories once", id, j)}
		}
		depAt[id] = i
		if len(d.DeskCategoryIDs) > 1000 {
			return nil, &ConnectionInputError{Field: field + ".deskCategoryIds", Reason: "at most 1000 categories"}
		}
		for j, cat := range d.DeskCategoryIDs {
			cat = strings.TrimSpace(cat)
			cf := fmt.Sprintf("%s.deskCategoryIds[%d]", field, j)
			name, ok := deskCats[cat]
			if !ok {
				return nil, &ConnectionInputError{Field: cf, Reason: fmt.Sprintf("the desk has no article category %q", cat)}
			}
			if at, dup := catAt[cat]; dup {
				other := deps[at[0]].ChatDepartmentID
				if at[0] == i {
					return nil, &ConnectionInputError{Field: cf, Reason: fmt.Sprintf("category %q (%s) is listed twice for this department", cat, name)}
				}
				return nil, &ConnectionInputError{Field: cf, Reason: fmt.Sprintf(
					"category %q (%s) is already given to department %q (%s) at departments[%d].deskCategoryIds[%d]; a category belongs to at most one department",
					cat, name, other, known[other], at[0], at[1])}
			}
			catAt[cat] = [2]int{i, j}
			cats = append(cats, store.KBCategory{DeskCategoryID: cat, ChatDepartmentID: id})
		}
	}
	return cats, nil
}

// defaultKBZone is the org's time zone: the connection's (service-key
// connections choose one, A3), else the desk portal's, else UTC.
func (s *KBService) defaultKBZone(ctx context.Context, c store.Connection) string {
	if c.TimeZone != nil {
		if _, err := loadKBZone(*c.TimeZone); err == nil {
			return *c.TimeZone
		}
	}
	desk, _, err := s.conns.For(ctx, c)
	lister, ok := desk.(connector.OrgLister)
	if err != nil || !ok {
		return "UTC"
	}
	orgs, err := lister.Orgs(ctx)
	if err != nil {
		return "UTC"
	}
	for _, o := range orgs {
		if _, err := loadKBZone(o.TimeZone); err == nil && o.ID == c.DeskOrgID {
			return o.TimeZone
		}
	}
	return "UTC"
}

// loadKBZone loads an IANA zone; "" and "Local" are refused (the server's
// zone says nothing about the org's).
func loadKBZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q", name)
	}
	return time.LoadLocation(name)
}

// SyncNow queues a run of every article now ("sync now") and, when this
// process runs KB work, starts it at once. KBConflictError when the sync
// is not set up, disabled, the connection not ACTIVE, or a run is already
// queued or running.
func (s *KBService) SyncNow(ctx context.Context, v auth.Viewer, connID int64) (store.KBRun, error) {
	c, err := s.kbConnection(ctx, v, connID, "starting a kb sync")
	if err != nil {
		return store.KBRun{}, err
	}
	if err := s.runnable(ctx, c); err != nil {
		return store.KBRun{}, err
	}
	userID := v.UserID
	run, err := store.InsertKBRun(ctx, s.db, store.NewKBRun{OrgID: v.OrgID, ConnectionID: connID,
		Trigger: store.KBTriggerManual, CreatedBy: &userID, CreatedAt: s.clock.Now()})
	if errors.Is(err, store.ErrKBRunActive) {
		return store.KBRun{}, &KBConflictError{Reason: "a KB sync of this connection is already queued or running; wait for it to finish"}
	}
	if err != nil {
		return store.KBRun{}, fmt.Errorf("starting a kb sync: %w", err)
	}
	s.log.InfoContext(ctx, "kb sync queued", "org_id", v.OrgID, "connection_id", connID, "run_id", run.ID, "trigger", run.Trigger)
	s.kick(run.ID)
	return run, nil
}

// runnable checks that a connection's KB sync may run now.
func (s *KBService) runnable(ctx context.Context, c store.Connection) error {
	k, err := store.GetKBSettings(ctx, s.db, c.OrgID, c.ID, false)
	if errors.Is(err, store.ErrNotFound) {
		return &KBConflictError{Reason: "the KB sync of this connection is not set up; call updateKbSync first"}
	}
	if err != nil {
		return err
	}
	if !k.Enabled {
		return &KBConflictError{Reason: "the KB sync of this connection is disabled; enable it first"}
	}
	if c.Status != store.ConnectionActive {
		return &KBConflictError{Reason: fmt.Sprintf("the connection is %s, not ACTIVE", c.Status)}
	}
	return nil
}

// Retry queues a run that syncs the articles of open failures again (ids
// nil = all of them) and marks those failures retried, in one
// transaction. It returns nil when no open failure matched.
func (s *KBService) Retry(ctx context.Context, v auth.Viewer, connID int64, ids []int64) (*store.KBRun, error) {
	c, err := s.kbConnection(ctx, v, connID, "retrying kb sync failures")
	if err != nil {
		return nil, err
	}
	if err := s.runnable(ctx, c); err != nil {
		return nil, err
	}
	var run *store.KBRun
	now := s.clock.Now()
	err = store.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		fs, err := store.KBFailuresForRetry(ctx, tx, v.OrgID, connID, ids, now)
		if err != nil || len(fs) == 0 {
			return err
		}
		articles := make([]string, 0, len(fs))
		for _, f := range fs {
			articles = append(articles, f.DeskArticleID)
		}
		userID := v.UserID
		r, err := store.InsertKBRun(ctx, tx, store.NewKBRun{OrgID: v.OrgID, ConnectionID: connID, Trigger: store.KBTriggerRetry,
			ArticleIDs: articles, CreatedBy: &userID, CreatedAt: now})
		if err != nil {
			return err
		}
		run = &r
		return nil
	})
	if errors.Is(err, store.ErrKBRunActive) {
		return nil, &KBConflictError{Reason: "a KB sync of this connection is already queued or running; retry when it has finished"}
	}
	if err != nil {
		return nil, fmt.Errorf("retrying kb sync failures: %w", err)
	}
	if run != nil {
		s.log.InfoContext(ctx, "kb sync retry queued", "org_id", v.OrgID, "connection_id", connID, "run_id", run.ID, "articles", len(run.ArticleIDs))
		s.kick(run.ID)
	}
	return run, nil
}

// Runs lists a connection's runs, newest first, before the run beforeID.
func (s *KBService) Runs(ctx context.Context, v auth.Viewer, connID int64, first int, beforeID int64) ([]store.KBRun, error) {
	if _, err := s.kbConnection(ctx, v, connID, "listing kb sync runs"); err != nil {
		return nil, err
	}
	return store.ListKBRuns(ctx, s.db, v.OrgID, connID, first, beforeID)
}

// Failures lists a connection's failures, oldest first, after afterID.
func (s *KBService) Failures(ctx context.Context, v auth.Viewer, connID int64, includeResolved bool, first int, afterID int64) ([]store.KBFailure, error) {
	if _, err := s.kbConnection(ctx, v, connID, "listing kb sync failures"); err != nil {
		return nil, err
	}
	return store.ListKBFailures(ctx, s.db, v.OrgID, connID, includeResolved, first, afterID)
}

// KBDeskCategory is a desk article category, for a settings screen.
type KBDeskCategory struct {
	ID, Name, ParentID, Visibility string
}

// DeskCategories lists the desk's article categories, read live.
func (s *KBService) DeskCategories(ctx context.Context, v auth.Viewer, connID int64) ([]KBDeskCategory, error) {
	c, err := s.kbConnection(ctx, v, connID, "listing desk article categories")
	if err != nil {
		return nil, err
	}
	desk, err := s.kbDeskOf(ctx, c)
	if err != nil {
		return nil, err
	}
	recs, err := desk.KBCategories(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing desk article categories: %w", err)
	}
	out := make([]KBDeskCategory, len(recs))
	for i, r := range recs {
		out[i] = KBDeskCategory{ID: r.ID, Name: str(r.Fields["name"]), ParentID: str(r.Fields["parentCategoryId"]),
			Visibility: str(r.Fields["visibility"])}
	}
	return out, nil
}

// KBChatDepartment is a chat department, for a settings screen.
type KBChatDepartment struct{ ID, Name string }

// ChatDepartments lists the departments of the KB sync's SalesIQ portal,
// read live; KBConflictError when no portal is set up yet.
func (s *KBService) ChatDepartments(ctx context.Context, v auth.Viewer, connID int64) ([]KBChatDepartment, error) {
	c, err := s.kbConnection(ctx, v, connID, "listing chat departments")
	if err != nil {
		return nil, err
	}
	k, err := store.GetKBSettings(ctx, s.db, v.OrgID, connID, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &KBConflictError{Reason: "no SalesIQ portal is set up for the KB sync yet; call updateKbSync with salesIq first"}
	}
	if err != nil {
		return nil, err
	}
	chat, err := s.chat.OpenKBChat(ctx, c, k)
	if err != nil {
		return nil, fmt.Errorf("listing chat departments: %w", err)
	}
	recs, err := chat.Departments(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing chat departments: %w", err)
	}
	out := make([]KBChatDepartment, len(recs))
	for i, r := range recs {
		out[i] = KBChatDepartment{ID: r.ID, Name: str(r.Fields["name"])}
	}
	return out, nil
}

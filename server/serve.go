package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/eventbus"
	"github.com/deskbridge/deskbridge/migrations"
	"github.com/deskbridge/deskbridge/resolvers"
	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/server/examples"
	"github.com/deskbridge/deskbridge/server/playground"
	"github.com/deskbridge/deskbridge/server/wstransport"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/store/crypt"
	"github.com/deskbridge/deskbridge/store/leader"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

// Server is a running gateway's parts. New builds it; Serve runs it until
// its context ends and then shuts down gracefully.
type Server struct {
	cfg     Config
	log     *slog.Logger
	db      *database
	bus     *eventbus.Bus
	ws      *wstransport.Transport
	handler http.Handler
	ready   atomic.Bool

	stopBus context.CancelFunc
	busDone chan struct{}

	elector     *leader.Elector
	connections *syncengine.ConnectionService
	kb          *syncengine.KBService
	chat        *syncengine.ChatService
	publicURL   atomic.Pointer[string] // known at start, or once listening
	stopEngine  context.CancelFunc
	engineDone  chan struct{}
}

// New opens the database, applies migrations, starts the event bus and
// builds the HTTP handler.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := ensureSecretKey(&cfg); err != nil {
		return nil, err
	}
	db, err := openDatabase(ctx, cfg, log, true)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx, log); err != nil {
		db.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, db: db, busDone: make(chan struct{})}
	s.bus = eventbus.New(db.DB, db.DSN, log)
	conns := newConnRegistry()
	s.bus.OnEvent(conns.onEvent)
	busCtx, stopBus := context.WithCancel(context.Background())
	s.stopBus = stopBus
	go func() {
		defer close(s.busDone)
		if err := s.bus.Run(busCtx); err != nil {
			log.Error("event bus stopped", "err", err)
		}
	}()

	var box *crypt.Box
	if len(cfg.SecretKey) > 0 {
		if box, err = crypt.New(cfg.SecretKey); err != nil {
			db.Close()
			return nil, err
		}
	} else {
		log.Warn("no DESKBRIDGE_SECRET_KEY: connecting a CRM is refused until one is set")
	}
	publicURL := func() string {
		if u := s.publicURL.Load(); u != nil {
			return *u
		}
		return ""
	}
	connections := syncengine.NewConnectionService(syncengine.ConnectionServiceConfig{
		DB: db.DB, Box: box, Logger: log,
		Vendor: zoho.NewVendor(zoho.VendorConfig{ClientID: cfg.ZohoClientID, ClientSecret: cfg.ZohoClientSecret,
			Endpoints: cfg.ZohoEndpoints, Logger: log}),
	})

	// The sync engine: workers here, polling on the cluster's leader.
	s.elector = leader.New(db.DB.DB, leaderLockKey, log)
	engineCtx, stopEngine := context.WithCancel(context.Background())
	s.stopEngine, s.engineDone = stopEngine, make(chan struct{})
	if cfg.PublicURL != "" {
		s.publicURL.Store(&cfg.PublicURL)
	}
	s.connections = connections
	// The KB sync (SPEC F2): its tick runs on the engine's scheduler (the
	// leader); "sync now" starts at once here unless this replica only
	// serves the API.
	s.kb = syncengine.NewKBService(syncengine.KBConfig{DB: db.DB, Conns: connections, Log: log, RunHere: cfg.SyncWorkers > 0})
	// Chat (SPEC A5, F1, F3-F9): SalesIQ linked to the connection's desk.
	chat := &syncengine.ChatService{DB: db.DB, Box: box, Connectors: connections, PublicURL: publicURL, Log: log,
		Vendor: zoho.NewVendor(zoho.VendorConfig{ClientID: cfg.ZohoClientID, ClientSecret: cfg.ZohoClientSecret,
			Endpoints: cfg.ZohoEndpoints, Logger: log})}
	s.chat = chat
	engine := &syncengine.Engine{DB: db.DB, Connectors: connections, Elector: s.elector, Log: log, Chat: chat,
		Workers: cfg.SyncWorkers, PollEvery: cfg.PollInterval, WatchEvery: cfg.WatchInterval,
		FirstSyncEvery: cfg.FirstSyncEvery, OverdueEvery: cfg.OverdueEvery, HistoryRetention: cfg.HistoryKeep, EventRetention: cfg.EventKeep, PublicURL: publicURL,
		KB: s.kb}
	go func() {
		defer close(s.engineDone)
		if cfg.SyncWorkers == 0 {
			return // a replica that only serves the API
		}
		if err := engine.Run(engineCtx); err != nil {
			log.Error("sync engine stopped", "err", err)
		}
	}()

	m := newMetrics(db.DB)
	deps := graphqlDeps{
		cfg: cfg, log: log, metrics: m, conns: conns,
		resolvers: &resolvers.Resolver{DB: db.DB, Bus: s.bus, Log: log, ConnectionService: connections,
			TicketService: &syncengine.TicketService{DB: db.DB, Connectors: connections, Log: log},
			KBService:     s.kb, ChatService: chat,
			ApprovalURL: func(code string) string { return ApprovalURL(publicURL(), code) }},
		auth: &auth.Authenticator{DB: db.DB},
	}
	gql, ws := newGraphQL(deps)
	s.ws = ws

	mux := http.NewServeMux()
	mux.Handle("/graphql", observe("graphql", m, log, graphqlRoute(deps, gql)))
	mux.Handle("GET /healthz", observe("healthz", m, log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, "ok", "")
	})))
	mux.Handle("POST /webhooks/{connection}/{system}", observe("webhooks", m, log, webhookHandler(db.DB, connections, engine.Wake, log)))
	mux.Handle("POST /webhooks/salesiq/{link}", observe("webhooks", m, log, chatWebhookHandler(chat, log)))
	approval := observe("approve", m, log, approvalHandler(connections, publicURL, log))
	mux.Handle("GET "+approvePath, approval)
	mux.Handle("GET "+callbackPath, approval)
	mux.Handle("GET /readyz", observe("readyz", m, log, http.HandlerFunc(s.readyz)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}))
	pg := playground.Handler(playground.Options{Endpoint: "/graphql", Title: "deskbridge"})
	mux.Handle("GET /{$}", observe("playground", m, log, pg))
	mux.Handle("GET /playground/", pg)
	mux.Handle("GET "+examples.Prefix, observe("examples", m, log, examples.Handler(examples.Options{Endpoint: "/graphql"})))
	s.handler = mux
	s.ready.Store(true)
	return s, nil
}

// Handler is the HTTP surface: /graphql, /, /healthz, /readyz, /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// DB exposes the pool to the subcommands that share the process.
func (s *Server) DB() *database { return s.db }

// readyz answers 200 when the database is reachable, every migration is
// applied and the event listener is connected; 503 with the reason otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeStatus(w, http.StatusServiceUnavailable, "unavailable", "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.DB.PingContext(ctx); err != nil {
		writeStatus(w, http.StatusServiceUnavailable, "unavailable", "database unreachable")
		return
	}
	pending, err := migrations.Pending(ctx, s.db.DB.DB)
	if err != nil || len(pending) > 0 {
		writeStatus(w, http.StatusServiceUnavailable, "unavailable", fmt.Sprintf("migrations pending: %v", pending))
		return
	}
	select {
	case <-s.bus.Ready():
	default:
		writeStatus(w, http.StatusServiceUnavailable, "unavailable", "event listener not connected")
		return
	}
	writeStatus(w, http.StatusOK, "ok", "")
}

func writeStatus(w http.ResponseWriter, code int, status, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	body := map[string]string{"status": status}
	if reason != "" {
		body["reason"] = reason
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Serve answers on ln until ctx ends, then shuts down: it stops reporting
// ready, closes every WebSocket with 1001 so clients reconnect elsewhere,
// drains in-flight requests up to ShutdownTimeout, and stops the event bus.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       s.cfg.RequestTimeout,
		WriteTimeout:      s.cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.publicURL.Load() == nil {
		// Vendors on this machine (the sandbox) reach the listen address.
		u := "http://" + ln.Addr().String()
		s.publicURL.Store(&u)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	s.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := s.ws.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("closing websockets: %w", err))
	}
	if err := hs.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("draining http: %w", err))
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close stops the event bus and releases the database.
func (s *Server) Close() {
	s.stopEngine()
	<-s.engineDone
	s.kb.Close()
	_ = s.elector.Resign(context.Background())
	s.stopBus()
	<-s.busDone
	s.db.Close()
}

// leaderLockKey is the advisory lock the replicas of one database elect
// their leader with ("dbleader" in ASCII).
const leaderLockKey int64 = 0x64626c65_61646572

// defaultGCPercent is the collector's target (GOGC) when the environment
// names none: the heap may grow to five times what is live between
// collections, which keeps the 100k first sync well under 300 MB.
const defaultGCPercent = 400

// setDefaultGCPercent applies defaultGCPercent unless GOGC is set. The
// gateway's live heap is small (tens of MB) and most of its garbage is
// decoded vendor JSON: at Go's default of 100 a first sync spent a quarter
// of its CPU collecting. The sandbox's is the opposite case, a live heap of
// gigabytes that each collection marks again.
func setDefaultGCPercent(io IO) {
	if io.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func runServe(ctx context.Context, args []string, io IO) error {
	cfg, _, err := parseCommand("serve", args, io, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, io.Stderr)
	setDefaultGCPercent(io)
	if err := ensureSecretKey(&cfg); err != nil {
		return err
	}
	var sb *sandbox.Sandbox
	if cfg.Demo {
		if sb, err = startDemoSandbox(ctx, &cfg, log); err != nil {
			return err
		}
		if sb != nil {
			defer sb.Close()
		}
	}
	log.Info("starting deskbridge", "version", versionString(), "config", cfg)
	s, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	url := "http://" + ln.Addr().String()
	if cfg.Demo {
		issued, err := createToken(ctx, s.db, "demo", auth.IssueRequest{UserName: "playground", Name: "playground (make run)", Role: auth.RoleAdmin})
		if err != nil {
			return err
		}
		var conn store.Connection
		if sb != nil {
			if conn, err = connectDemo(ctx, s, sb, issued); err != nil {
				return fmt.Errorf("connecting the demo org: %w", err)
			}
			if err := linkDemoChat(ctx, s, sb, issued); err != nil {
				return fmt.Errorf("linking the demo org's SalesIQ: %w", err)
			}
			go demoActivity(ctx, sb, 10*time.Second, log)
		}
		printDemo(io.Stdout, url, issued.Secret, sb, conn)
	}
	log.Info("deskbridge is serving", "graphiql", url+"/", "graphql", url+"/graphql")
	return s.Serve(ctx, ln)
}

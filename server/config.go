package server

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connectors/zoho"
)

// Config is every setting of a deskbridge process, parsed once from flags and
// the environment (a flag wins over its variable) and then passed down.
type Config struct {
	DatabaseURL     string        // DATABASE_URL; empty = the embedded PostgreSQL under DataDir
	Addr            string        // DESKBRIDGE_ADDR
	DataDir         string        // DESKBRIDGE_DATA_DIR
	SecretKey       []byte        // DESKBRIDGE_SECRET_KEY, 32 bytes (hex or base64); encrypts vendor secrets
	LogFormat       string        // DESKBRIDGE_LOG_FORMAT: text or json
	LogLevel        slog.Level    // DESKBRIDGE_LOG_LEVEL
	AllowedOrigins  []string      // DESKBRIDGE_ALLOWED_ORIGINS, comma separated, for browser WebSockets
	MaxBodyBytes    int64         // DESKBRIDGE_MAX_BODY_BYTES
	MaxDepth        int           // DESKBRIDGE_MAX_DEPTH
	MaxComplexity   int           // DESKBRIDGE_MAX_COMPLEXITY
	RequestTimeout  time.Duration // DESKBRIDGE_REQUEST_TIMEOUT
	ShutdownTimeout time.Duration // DESKBRIDGE_SHUTDOWN_TIMEOUT
	DBMaxConns      int           // DESKBRIDGE_DB_MAX_CONNS
	SyncWorkers     int           // DESKBRIDGE_SYNC_WORKERS: queue workers in this process
	PollInterval    time.Duration // DESKBRIDGE_POLL_INTERVAL: how often the leader polls every connection
	WatchInterval   time.Duration // DESKBRIDGE_WATCH_INTERVAL: how often the leader checks vendor subscriptions
	FirstSyncEvery  time.Duration // DESKBRIDGE_FIRST_SYNC_INTERVAL: how often the leader advances first syncs
	OverdueEvery    time.Duration // DESKBRIDGE_OVERDUE_INTERVAL: how often the leader looks for newly overdue tickets
	HistoryKeep     time.Duration // DESKBRIDGE_HISTORY_RETENTION: how long sync history is kept (at least 7 days)
	EventKeep       time.Duration // DESKBRIDGE_EVENT_RETENTION: how long events are kept to resume from (at least 1h)
	PublicURL       string        // DESKBRIDGE_PUBLIC_URL: the gateway as vendors reach it, for webhooks
	PGBin           string        // DESKBRIDGE_PG_BIN: where the embedded default finds initdb/postgres
	PGUser          string        // DESKBRIDGE_PG_USER: OS user that runs the embedded cluster when started as root
	Demo            bool          // DESKBRIDGE_DEMO: create a demo org and print a playground token (make run)

	ZohoClientID      string // DESKBRIDGE_ZOHO_CLIENT_ID (env only): deskbridge's Zoho OAuth client
	ZohoClientSecret  string // DESKBRIDGE_ZOHO_CLIENT_SECRET (env only)
	ZohoEndpointsFile string // DESKBRIDGE_ZOHO_ENDPOINTS: JSON file of per-data-center base URLs
	// ZohoEndpoints is the parsed ZohoEndpointsFile: data center ("us") to
	// the hosts that replace Zoho's; they are also allowed to receive tokens.
	ZohoEndpoints map[string]zoho.DataCenter
}

// Embedded reports whether the process uses the embedded PostgreSQL.
func (c Config) Embedded() bool { return c.DatabaseURL == "" }

// LogValue prints the config for the start-up log with every secret masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.String("addr", c.Addr),
		slog.String("data_dir", c.DataDir),
		slog.String("secret_key", mask(len(c.SecretKey) > 0)),
		slog.String("log_format", c.LogFormat),
		slog.String("log_level", c.LogLevel.String()),
		slog.Any("allowed_origins", c.AllowedOrigins),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Int("max_depth", c.MaxDepth),
		slog.Int("max_complexity", c.MaxComplexity),
		slog.Duration("request_timeout", c.RequestTimeout),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Int("db_max_conns", c.DBMaxConns),
		slog.Int("sync_workers", c.SyncWorkers),
		slog.Duration("poll_interval", c.PollInterval),
		slog.Duration("watch_interval", c.WatchInterval),
		slog.Duration("first_sync_interval", c.FirstSyncEvery),
		slog.Duration("overdue_interval", c.OverdueEvery),
		slog.Duration("history_retention", c.HistoryKeep),
		slog.Duration("event_retention", c.EventKeep),
		slog.String("public_url", c.PublicURL),
		slog.Bool("demo", c.Demo),
		slog.String("zoho_client_id", mask(c.ZohoClientID != "")),
		slog.String("zoho_client_secret", mask(c.ZohoClientSecret != "")),
		slog.String("zoho_endpoints", c.ZohoEndpointsFile),
	)
}

func mask(set bool) string {
	if set {
		return "********"
	}
	return "(unset)"
}

// maskURL hides the password of a database URL, keeping what helps debugging.
func maskURL(raw string) string {
	if raw == "" {
		return "(embedded)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "********"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// configFlags registers the flags shared by every subcommand and returns a
// function that, after parsing, completes the Config from the environment.
func configFlags(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	databaseURL := fs.String("database-url", env("DATABASE_URL", ""), "PostgreSQL URL (env DATABASE_URL); empty starts the embedded PostgreSQL")
	addr := fs.String("addr", env("DESKBRIDGE_ADDR", "127.0.0.1:8080"), "listen address (env DESKBRIDGE_ADDR)")
	dataDir := fs.String("data-dir", env("DESKBRIDGE_DATA_DIR", ".deskbridge"), "data folder of the embedded default (env DESKBRIDGE_DATA_DIR)")
	logFormat := fs.String("log-format", env("DESKBRIDGE_LOG_FORMAT", "text"), "text or json (env DESKBRIDGE_LOG_FORMAT)")
	logLevel := fs.String("log-level", env("DESKBRIDGE_LOG_LEVEL", "info"), "debug, info, warn or error (env DESKBRIDGE_LOG_LEVEL)")
	origins := fs.String("allowed-origins", env("DESKBRIDGE_ALLOWED_ORIGINS", ""), "comma-separated browser origins allowed to open WebSockets, e.g. https://app.example.com,http://localhost:* (env DESKBRIDGE_ALLOWED_ORIGINS)")
	maxBody := fs.String("max-body-bytes", env("DESKBRIDGE_MAX_BODY_BYTES", "1048576"), "largest request body (env DESKBRIDGE_MAX_BODY_BYTES)")
	maxDepth := fs.String("max-depth", env("DESKBRIDGE_MAX_DEPTH", "12"), "deepest query accepted (env DESKBRIDGE_MAX_DEPTH)")
	maxComplexity := fs.String("max-complexity", env("DESKBRIDGE_MAX_COMPLEXITY", "20000"), "highest query cost accepted; lists count by page size (env DESKBRIDGE_MAX_COMPLEXITY)")
	reqTimeout := fs.String("request-timeout", env("DESKBRIDGE_REQUEST_TIMEOUT", "30s"), "time limit of one HTTP request (env DESKBRIDGE_REQUEST_TIMEOUT)")
	shutdownTimeout := fs.String("shutdown-timeout", env("DESKBRIDGE_SHUTDOWN_TIMEOUT", "20s"), "how long shutdown waits for requests to drain (env DESKBRIDGE_SHUTDOWN_TIMEOUT)")
	dbMax := fs.String("db-max-conns", env("DESKBRIDGE_DB_MAX_CONNS", "20"), "database pool size (env DESKBRIDGE_DB_MAX_CONNS)")
	syncWorkers := fs.String("sync-workers", env("DESKBRIDGE_SYNC_WORKERS", "2"), "sync queue workers in this process (env DESKBRIDGE_SYNC_WORKERS)")
	pollInterval := fs.String("poll-interval", env("DESKBRIDGE_POLL_INTERVAL", "30s"), "how often the cluster leader polls every connection for changes (env DESKBRIDGE_POLL_INTERVAL)")
	watchInterval := fs.String("watch-interval", env("DESKBRIDGE_WATCH_INTERVAL", "10m"), "how often the cluster leader checks the vendors' notification subscriptions (env DESKBRIDGE_WATCH_INTERVAL)")
	firstSyncInterval := fs.String("first-sync-interval", env("DESKBRIDGE_FIRST_SYNC_INTERVAL", "5s"), "how often the cluster leader advances running first syncs, a few pages each (env DESKBRIDGE_FIRST_SYNC_INTERVAL)")
	overdueInterval := fs.String("overdue-interval", env("DESKBRIDGE_OVERDUE_INTERVAL", "1m"), "how often the cluster leader looks for tickets that just became overdue, for signals (env DESKBRIDGE_OVERDUE_INTERVAL)")
	publicURL := fs.String("public-url", env("DESKBRIDGE_PUBLIC_URL", ""), "the gateway's URL as the vendors reach it, for change notifications; default the listen address (env DESKBRIDGE_PUBLIC_URL)")
	historyKeep := fs.String("history-retention", env("DESKBRIDGE_HISTORY_RETENTION", "168h"), "how long sync history is kept; at least 168h, the 7 days SPEC B13 promises (env DESKBRIDGE_HISTORY_RETENTION)")
	eventKeep := fs.String("event-retention", env("DESKBRIDGE_EVENT_RETENTION", "168h"), "how long events are kept for subscriptions and pollers to resume from; at least 1h (env DESKBRIDGE_EVENT_RETENTION)")
	pgBin := fs.String("pg-bin", env("DESKBRIDGE_PG_BIN", ""), "folder with initdb and postgres for the embedded default (env DESKBRIDGE_PG_BIN)")
	pgUser := fs.String("pg-user", env("DESKBRIDGE_PG_USER", "postgres"), "OS user that runs the embedded PostgreSQL when deskbridge runs as root (env DESKBRIDGE_PG_USER)")
	demo := fs.Bool("demo", env("DESKBRIDGE_DEMO", "") == "1" || env("DESKBRIDGE_DEMO", "") == "true", "create a demo org and print a playground token (env DESKBRIDGE_DEMO)")
	zohoEndpoints := fs.String("zoho-endpoints", env("DESKBRIDGE_ZOHO_ENDPOINTS", ""), "JSON file mapping Zoho data centers to base URLs, e.g. the sandbox's (env DESKBRIDGE_ZOHO_ENDPOINTS)")
	secretKey := func() string { return getenv("DESKBRIDGE_SECRET_KEY") } // never a flag: flags show in ps

	return func() (Config, error) {
		c := Config{DatabaseURL: *databaseURL, Addr: *addr, DataDir: *dataDir, LogFormat: *logFormat,
			PGBin: *pgBin, PGUser: *pgUser, Demo: *demo,
			ZohoClientID:      strings.TrimSpace(getenv("DESKBRIDGE_ZOHO_CLIENT_ID")), // env only, like every secret
			ZohoClientSecret:  strings.TrimSpace(getenv("DESKBRIDGE_ZOHO_CLIENT_SECRET")),
			ZohoEndpointsFile: *zohoEndpoints}
		var errs []error
		if c.LogFormat != "text" && c.LogFormat != "json" {
			errs = append(errs, fmt.Errorf("log format %q: want text or json", c.LogFormat))
		}
		if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
			errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", *logLevel))
		}
		for _, o := range strings.Split(*origins, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, o)
			}
		}
		c.MaxBodyBytes = parseInt(&errs, "max body bytes", *maxBody, 1024, 1<<30)
		c.MaxDepth = int(parseInt(&errs, "max depth", *maxDepth, 2, 100))
		c.MaxComplexity = int(parseInt(&errs, "max complexity", *maxComplexity, 10, 10_000_000))
		c.DBMaxConns = int(parseInt(&errs, "db max conns", *dbMax, 2, 1000))
		c.SyncWorkers = int(parseInt(&errs, "sync workers", *syncWorkers, 0, 64))
		c.PollInterval = parseDuration(&errs, "poll interval", *pollInterval)
		c.WatchInterval = parseDuration(&errs, "watch interval", *watchInterval)
		c.FirstSyncEvery = parseDuration(&errs, "first sync interval", *firstSyncInterval)
		c.OverdueEvery = parseDuration(&errs, "overdue interval", *overdueInterval)
		c.HistoryKeep = parseDuration(&errs, "history retention", *historyKeep)
		if c.HistoryKeep > 0 && c.HistoryKeep < 7*24*time.Hour {
			errs = append(errs, fmt.Errorf("history retention %s: keep at least 168h (7 days)", c.HistoryKeep))
		}
		c.EventKeep = parseDuration(&errs, "event retention", *eventKeep)
		if c.EventKeep > 0 && c.EventKeep < time.Hour {
			errs = append(errs, fmt.Errorf("event retention %s: keep at least 1h", c.EventKeep))
		}
		c.PublicURL = strings.TrimRight(*publicURL, "/")
		if c.PublicURL != "" {
			if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("public url %q: want http(s)://host[:port]", c.PublicURL))
			}
		}
		c.RequestTimeout = parseDuration(&errs, "request timeout", *reqTimeout)
		c.ShutdownTimeout = parseDuration(&errs, "shutdown timeout", *shutdownTimeout)
		if c.DatabaseURL != "" {
			if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				errs = append(errs, errors.New("database url: want postgres://user:pass@host:port/db"))
			}
		}
		if abs, err := filepath.Abs(c.DataDir); err == nil {
			c.DataDir = abs
		}
		if raw := secretKey(); raw != "" {
			key, err := decodeKey(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("DESKBRIDGE_SECRET_KEY: %w", err))
			}
			c.SecretKey = key
		}
		if (c.ZohoClientID == "") != (c.ZohoClientSecret == "") {
			errs = append(errs, errors.New("DESKBRIDGE_ZOHO_CLIENT_ID and DESKBRIDGE_ZOHO_CLIENT_SECRET go together"))
		}
		if c.ZohoEndpointsFile != "" {
			eps, err := readZohoEndpoints(c.ZohoEndpointsFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("DESKBRIDGE_ZOHO_ENDPOINTS: %w", err))
			}
			c.ZohoEndpoints = eps
		}
		return c, errors.Join(errs...)
	}
}

// readZohoEndpoints reads the endpoints file: a JSON object from data
// center keys ("us", "eu", ...) to {"accounts", "api", "desk", "salesiq"}
// base URLs, each optional. Unknown data centers, unknown keys and URLs
// that are not http(s) with a host are refused.
func readZohoEndpoints(path string) (map[string]zoho.DataCenter, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in map[string]struct {
		Accounts string `json:"accounts"`
		API      string `json:"api"`
		Desk     string `json:"desk"`
		SalesIQ  string `json:"salesiq"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out := make(map[string]zoho.DataCenter, len(in))
	for dc, ep := range in {
		key := strings.ToLower(dc)
		if _, ok := zoho.DataCenters[key]; !ok {
			return nil, fmt.Errorf("reading %s: unknown data center %q", path, dc)
		}
		for name, u := range map[string]string{"accounts": ep.Accounts, "api": ep.API, "desk": ep.Desk, "salesiq": ep.SalesIQ} {
			if u == "" {
				continue
			}
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
				return nil, fmt.Errorf("reading %s: %s.%s %q is not an http(s) base URL", path, dc, name, u)
			}
		}
		out[key] = zoho.DataCenter{Name: key, Accounts: strings.TrimRight(ep.Accounts, "/"), API: strings.TrimRight(ep.API, "/"),
			Desk: strings.TrimRight(ep.Desk, "/"), SalesIQ: strings.TrimRight(ep.SalesIQ, "/")}
	}
	return out, nil
}

func parseInt(errs *[]error, what, s string, lo, hi int64) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		*errs = append(*errs, fmt.Errorf("%s %q: want a whole number from %d to %d", what, s, lo, hi))
	}
	return n
}

func parseDuration(errs *[]error, what, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s %q: want a positive duration like 30s", what, s))
	}
	return d
}

// decodeKey accepts a 32-byte key as 64 hex digits or base64 (std or url).
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("want 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)")
}

// ensureSecretKey gives the embedded default a key of its own, kept beside its
// data, so a newcomer needs no setup; production sets DESKBRIDGE_SECRET_KEY.
func ensureSecretKey(c *Config) error {
	if len(c.SecretKey) > 0 || !c.Embedded() {
		return nil
	}
	path := filepath.Join(c.DataDir, "secret.key")
	if raw, err := os.ReadFile(path); err == nil {
		key, err := decodeKey(string(raw))
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		c.SecretKey = key
		return nil
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(randReader, key); err != nil {
		return fmt.Errorf("generating secret key: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	c.SecretKey = key
	return nil
}

// newLogger builds the process logger from the config.
func newLogger(c Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

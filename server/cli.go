// Package server is deskbridge's only composition root: it parses the
// configuration once, builds the logger, opens the database (DATABASE_URL or
// the embedded PostgreSQL), applies migrations, wires the GraphQL handler,
// the WebSocket transport and the event bus, and runs the subcommands of the
// deskbridge binary.
package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/store"
)

// Version is set at build time with -ldflags "-X github.com/deskbridge/deskbridge/server.Version=...".
var Version = ""

// IO is where a command reads its environment and writes its output.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

const usage = `deskbridge: a GraphQL gateway joining a CRM, a help desk and a chat tool.

Usage:
  deskbridge serve    [flags]   run the gateway (embedded PostgreSQL unless DATABASE_URL is set)
  deskbridge migrate  [flags]   apply database migrations and exit
  deskbridge token create --org ORG --role ROLE [--name NAME] [--user USER] [--expires DURATION]
                                create a bearer token (and the org if new); prints the secret once
  deskbridge sandbox  [flags]   run the fake vendors (accounts, CRM, Bigin, Desk, SalesIQ) with sample data
  deskbridge version            print the version

Run 'deskbridge COMMAND -h' for the flags of a command.
`

// Main runs the deskbridge command line and returns the exit code.
func Main(args []string, io IO) int {
	if len(args) < 1 {
		fmt.Fprint(io.Stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], io)
	case "migrate":
		err = runMigrate(ctx, args[1:], io)
	case "token":
		err = runToken(ctx, args[1:], io)
	case "sandbox":
		setDefaultGCPercent(io)
		err = sandbox.Run(ctx, args[1:], io.Stdout, io.Stderr)
	case "version", "--version":
		fmt.Fprintln(io.Stdout, versionString())
	case "help", "-h", "--help":
		fmt.Fprint(io.Stdout, usage)
	default:
		fmt.Fprintf(io.Stderr, "deskbridge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(io.Stderr, "deskbridge %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

func versionString() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// parseCommand parses a subcommand's flags plus the shared configuration.
func parseCommand(name string, args []string, io IO, extra func(*flag.FlagSet)) (Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("deskbridge "+name, flag.ContinueOnError)
	fs.SetOutput(io.Stderr)
	complete := configFlags(fs, io.Getenv)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, fs, err
		}
		return Config{}, fs, errUsage
	}
	cfg, err := complete()
	if err != nil {
		return Config{}, fs, fmt.Errorf("configuration: %w", err)
	}
	return cfg, fs, nil
}

func runMigrate(ctx context.Context, args []string, io IO) error {
	cfg, _, err := parseCommand("migrate", args, io, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, io.Stderr)
	db, err := openDatabase(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.migrate(ctx, log)
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func runToken(ctx context.Context, args []string, io IO) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(io.Stderr, "usage: deskbridge token create --org ORG --role ROLE [--name NAME] [--user USER] [--expires DURATION]\n")
		return errUsage
	}
	var org, role, name, user string
	var expires time.Duration
	cfg, fs, err := parseCommand("token create", args[1:], io, func(fs *flag.FlagSet) {
		fs.StringVar(&org, "org", "", "org slug: lowercase letters, digits and dashes (created if new)")
		fs.StringVar(&role, "role", "", "admin, agent, restricted_agent or light_agent")
		fs.StringVar(&name, "name", "", "what the token is for (default: \"<role> token\")")
		fs.StringVar(&user, "user", "", "user who holds the token, created if new (default: the name)")
		fs.DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (default: never expires)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	org = strings.ToLower(strings.TrimSpace(org))
	if !slugPattern.MatchString(org) {
		return errors.New("--org: want lowercase letters, digits and dashes, e.g. --org acme")
	}
	r, err := auth.ParseRole(strings.ToLower(role))
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	if name == "" {
		name = string(r) + " token"
	}
	if user == "" {
		user = name
	}
	var expiresAt *time.Time
	if expires < 0 {
		return errors.New("--expires: want a positive duration")
	} else if expires > 0 {
		t := time.Now().Add(expires)
		expiresAt = &t
	}
	log := newLogger(cfg, io.Stderr)
	db, err := openDatabase(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.migrate(ctx, log); err != nil {
		return err
	}
	issued, err := createToken(ctx, db, org, auth.IssueRequest{UserName: user, Name: name, Role: r, ExpiresAt: expiresAt})
	if err != nil {
		return err
	}
	fmt.Fprintf(io.Stderr, "created %s token %q for user %q in org %q; the secret below is shown only once\n", r, name, issued.User.Name, org)
	fmt.Fprintln(io.Stdout, issued.Secret)
	return nil
}

// createToken issues a token in the org with this slug, creating the org
// when it is new.
func createToken(ctx context.Context, db *database, orgSlug string, req auth.IssueRequest) (auth.Issued, error) {
	o, _, err := store.EnsureOrg(ctx, db.DB, orgSlug, orgSlug)
	if err != nil {
		return auth.Issued{}, err
	}
	req.OrgID = o.ID
	return auth.IssueToken(ctx, db.DB, req)
}

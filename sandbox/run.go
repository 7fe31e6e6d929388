package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/deskbridge/deskbridge/sandbox/faults"
)

// Run is the body of `deskbridge sandbox`: it starts every fake vendor on
// real ports, prints where they are and the credentials a gateway
// configuration needs, and serves until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "address to listen on")
	seedFlag := fs.Uint64("seed", 1, "seed of the sample data; the same seed gives the same data")
	people := fs.Int("people", 0, "number of people in the sample world (0 = demo size)")
	accounts := fs.Int("accounts", 0, "number of companies (0 = demo size)")
	products := fs.Int("products", 0, "number of products (0 = demo size)")
	createdWithin := fs.Duration("created-within", 0, "spread the records' creation times over this long before now, e.g. 8400h (0 = two years)")
	dcs := fs.String("dcs", strings.Join(DefaultDCs, ","), "data centers to run, comma-separated; the first holds the sample data")
	faultSpec := fs.String("faults", "", `faults per vendor: "vendor=kind:rate[:delay][@path],...;vendor=..."; vendors `+strings.Join(Vendors, ", ")+`; kinds rate_limit, server_error, slow, timeout, drop, expired_token`)
	limitSpec := fs.String("limits", "", `quotas per vendor: "vendor=concurrent:N,daily:N;vendor=..."`)
	portBase := fs.Int("port-base", 0, "first fixed port; each data center takes four in a row (accounts, api, desk, salesiq); 0 = free ports")
	jsonPath := fs.String("json", "", "also write endpoints and credentials as JSON to this file (mode 0600)")
	verbose := fs.Bool("v", false, "log every vendor's debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sandbox: unexpected arguments %q", fs.Args())
	}

	cfg := Config{Seed: *seedFlag, People: *people, Accounts: *accounts, Products: *products, Host: *host,
		CreatedWithin: *createdWithin}
	for _, dc := range strings.Split(*dcs, ",") {
		if dc = strings.TrimSpace(dc); dc != "" {
			cfg.DCs = append(cfg.DCs, dc)
		}
	}
	var err error
	if cfg.Faults, err = ParseFaults(*faultSpec); err != nil {
		return fmt.Errorf("sandbox: -faults: %w", err)
	}
	if cfg.Limits, err = ParseLimits(*limitSpec); err != nil {
		return fmt.Errorf("sandbox: -limits: %w", err)
	}
	if *portBase > 0 {
		cfg.Ports = map[string]int{}
		for i, dc := range cfg.DCs {
			for j, role := range Roles {
				cfg.Ports[dc+"/"+role] = *portBase + 4*i + j
			}
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	sb, err := Start(ctx, cfg)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	summary := sb.Summary()
	if *jsonPath != "" {
		if err := writeSummary(*jsonPath, summary); err != nil {
			_ = sb.Close()
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	printSummary(stdout, summary)
	fmt.Fprintln(stdout, "sandbox running; stop with Ctrl-C")

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-sb.serveErrs: // a listener died: stop rather than half-serve
	}
	if err := errors.Join(failed, sb.Close()); err != nil {
		return fmt.Errorf("sandbox: shut down: %w", err)
	}
	fmt.Fprintln(stdout, "sandbox stopped")
	return nil
}

// Summary is what Run prints and writes with -json.
type Summary struct {
	Seed        uint64                 `json:"seed"`
	PrimaryDC   string                 `json:"primary_dc"`
	DCs         []string               `json:"dcs"`
	Endpoints   map[string]DCEndpoints `json:"endpoints"`
	Credentials Credentials            `json:"credentials"`
}

// Summary collects the endpoints and credentials.
func (s *Sandbox) Summary() Summary {
	return Summary{Seed: s.cfg.Seed, PrimaryDC: s.cfg.DCs[0], DCs: slices.Clone(s.cfg.DCs),
		Endpoints: s.Endpoints(), Credentials: s.Credentials()}
}

func writeSummary(path string, sum Summary) error {
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	// The file holds a client secret and refresh tokens.
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func printSummary(w io.Writer, sum Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "deskbridge sandbox, seed %d\n\n", sum.Seed)
	for _, dc := range sum.DCs {
		ep := sum.Endpoints[dc]
		what := "empty org"
		if dc == sum.PrimaryDC {
			what = "sample data"
		}
		fmt.Fprintf(tw, "data center %s (%s)\n", dc, what)
		fmt.Fprintf(tw, "  accounts\t%s\tPOST /oauth/v2/token\n", ep.AccountsURL)
		fmt.Fprintf(tw, "  api_domain\t%s\t/crm/v8/..., /bigin/v2/...\n", ep.APIDomain)
		fmt.Fprintf(tw, "  desk\t%s\t/api/v1/..., orgId %s\n", ep.DeskURL, ep.DeskOrgID)
		fmt.Fprintf(tw, "  salesiq\t%s\t/api/v2/%s/...\n", ep.SalesIQURL, ep.SalesIQScreenName)
		fmt.Fprintln(tw)
	}
	c := sum.Credentials
	fmt.Fprintln(tw, "OAuth client (header: Authorization: Zoho-oauthtoken <access token>)")
	fmt.Fprintf(tw, "  client_id\t%s\n", c.ClientID)
	fmt.Fprintf(tw, "  client_secret\t%s\n", c.ClientSecret)
	fmt.Fprintf(tw, "  user\t%s\n", c.UserEmail)
	fmt.Fprintf(tw, "  desk orgId\t%s\n", c.DeskOrgID)
	fmt.Fprintf(tw, "  salesiq screen name\t%s\n", c.SalesIQScreenName)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "refresh tokens (grant_type=refresh_token at that data center's accounts URL)")
	for _, dc := range sum.DCs {
		for _, product := range TokenProducts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", dc, product, c.RefreshTokens[dc][product])
		}
	}
	fmt.Fprintln(tw)
	_ = tw.Flush()
}

// ParseFaults reads "vendor=rules;vendor=rules", each rules list in
// faults.ParseRules' syntax.
func ParseFaults(spec string) (map[string][]faults.Rule, error) {
	out := map[string][]faults.Rule{}
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		vendor, rules, err := vendorPart(part)
		if err != nil {
			return nil, err
		}
		parsed, err := faults.ParseRules(rules)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vendor, err)
		}
		out[vendor] = append(out[vendor], parsed...)
	}
	return out, nil
}

// ParseLimits reads "vendor=concurrent:N,daily:N;vendor=...".
func ParseLimits(spec string) (map[string]faults.Limits, error) {
	out := map[string]faults.Limits{}
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		vendor, rest, err := vendorPart(part)
		if err != nil {
			return nil, err
		}
		l := out[vendor]
		for _, item := range strings.Split(rest, ",") {
			key, value, ok := strings.Cut(strings.TrimSpace(item), ":")
			n, convErr := strconv.Atoi(value)
			if !ok || convErr != nil || n < 0 {
				return nil, fmt.Errorf("%s: %q: want concurrent:N or daily:N", vendor, item)
			}
			switch key {
			case "concurrent":
				l.MaxConcurrent = n
			case "daily":
				l.DailyCredits = n
			default:
				return nil, fmt.Errorf("%s: unknown limit %q (want concurrent or daily)", vendor, key)
			}
		}
		out[vendor] = l
	}
	return out, nil
}

func vendorPart(part string) (vendor, rest string, err error) {
	vendor, rest, ok := strings.Cut(part, "=")
	vendor = strings.TrimSpace(vendor)
	if !ok {
		return "", "", fmt.Errorf("%q: want vendor=value", part)
	}
	if !slices.Contains(Vendors, vendor) {
		return "", "", fmt.Errorf("unknown vendor %q (want one of %s)", vendor, strings.Join(Vendors, ", "))
	}
	return vendor, rest, nil
}

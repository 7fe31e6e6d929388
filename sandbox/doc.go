// Package sandbox runs faithful HTTP fakes of the vendors deskbridge talks
// to: Zoho's accounts server (OAuth), Zoho CRM, Bigin, Zoho Desk and Zoho
// SalesIQ. They speak the wire formats of reference/zoho-api.md, so the
// gateway reaches them exactly as it reaches the real services: over HTTP,
// by configuration. They serve `make run`'s demo, the connector conformance
// suite and the sync engine's reliability tests.
//
// Shared pieces live in subpackages: clock (a clock tests can move),
// faults (rate limits, errors, slowness and dropped connections on demand),
// oauth (the accounts server and the token registry every vendor checks) and
// hooks (outbound webhook delivery). Each vendor has its own package.
package sandbox

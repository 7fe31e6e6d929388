// Package syncengine keeps a CRM (Zoho CRM or Bigin) and a help desk (Zoho
// Desk) in step, and feeds the chat tool: it captures changes from webhooks,
// polling and deleted-record feeds into a durable queue, applies them with
// field mappings, matching, conflict rules, echo suppression and delete
// policies, and records history and failures. It reaches every vendor
// through the small interface in syncengine/connector.
package syncengine

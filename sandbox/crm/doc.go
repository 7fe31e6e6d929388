// Package crm is the sandbox's fake of Zoho CRM's v8 records API and of
// Bigin's v2 API: one server code, two flavors, speaking the wire formats of
// reference/zoho-api.md (§2, §3, §6, §7) so the gateway's real connectors
// can run against it over HTTP, unchanged, in the demo and in the sync
// engine's tests. Tests and the demo also drive it through Go methods that
// act as a person in the CRM UI (Create, Edit, MassUpdate, Delete); these go
// through the same write path as the API and so send the same change
// notifications.
//
// # What is served
//
// Under /crm/v8 (CRM) or /bigin/v2 (Bigin), after an Authorization:
// Zoho-oauthtoken check against the oauth.Registry for the server's data
// center:
//
//	GET    /org                                  org info (see "Several orgs")
//	GET    /users[?type=CurrentUser|AllUsers|ActiveUsers|AdminUsers], /users/{id}
//	GET    /settings/modules[/{api_name}]
//	GET    /settings/fields?module=X             field metadata (validation uses the same)
//	GET    /settings/custom_views?module=X, /settings/custom_views/{id}?module=X
//	POST|GET|PUT|PATCH|DELETE /actions/watch     notification channels
//	GET    /{module}?fields=…                    list: page/per_page, page_token, sort_by,
//	                                             sort_order, cvid, ids, If-Modified-Since
//	POST   /{module}  PUT /{module}  DELETE /{module}?ids=…
//	GET|PUT|DELETE /{module}/{id}
//	POST   /{module}/upsert
//	GET    /{module}/search?criteria=|email=|phone=|word=
//	GET    /{module}/deleted?type=all|recycle|permanent
//	GET    /{module}/actions/count[?cvid=|criteria=|email=|phone=|word=]
//	GET    /{module}/{id}/{related}?fields=…     Notes, Deals (Pipelines), Contacts,
//	                                             Calls, Events, Tasks
//	POST   /{module}/{id}/Notes
//
// Modules: CRM has Leads, Contacts, Accounts, Deals, Products, Notes, Calls,
// Events and Tasks; Bigin has the same without Leads, and Pipelines instead
// of Deals (Accounts are labelled "Companies"). Status codes follow §2.4 and
// §2.7: 200/201/207/400 for writes with one result per input record, 204
// and 304 with empty bodies, 400 for request errors, 401 INVALID_TOKEN,
// AUTHENTICATION_FAILURE (no header) or OAUTH_SCOPE_MISMATCH, 403
// NO_PERMISSION, 404 INVALID_URL_PATTERN, and through the fault injector 429
// TOO_MANY_REQUESTS and 500 INTERNAL_ERROR.
//
// # Choices where the reference is silent or unsure
//
//   - Several orgs (SPEC A1). A server holds the default org (Options.World)
//     and Options.MoreOrgs. A request picks an org with the X-CRM-ORG header
//     (the real header name; X-CRMORG is accepted too), by org id or zgid.
//     Without it, the request works on the first org the token's user belongs
//     to, and GET /org lists every org the user belongs to in its "org" array,
//     the default first — a client reading org[0] behaves as against the real
//     single-org answer. An org with no Members admits anyone who authorizes
//     (first use adds them as an administrator); otherwise only its members. A
//     request for an org the user is not in gets 403 NO_PERMISSION.
//   - Picklists are restricted: an unknown value is 400 INVALID_DATA with
//     expected_data_type "picklist" and supported_values (matching ignores
//     case and stores the picklist's spelling). Real Zoho may accept values of
//     unrestricted picklists; rejecting them lets the gateway's mapping
//     errors (SPEC B4, B14) be exercised.
//   - Field names the module does not have are rejected (INVALID_DATA, "the
//     field api name given seems to be invalid"), in write bodies and in the
//     fields parameter; read-only fields and keys starting with $ are ignored
//     in write bodies. Numbers and booleans sent to text fields are coerced;
//     text sent to number, boolean, date or lookup fields is INVALID_DATA with
//     expected_data_type. Currency values are rounded to cents.
//   - 429 answers carry X-RATELIMIT-LIMIT (Options.RateLimit),
//     X-RATELIMIT-REMAINING, X-RATELIMIT-RESET (epoch milliseconds) and also
//     Retry-After in seconds. Retry-After is an addition: Zoho documents no
//     Retry-After for CRM, so a client must not depend on it.
//   - A missing Authorization header is 401 AUTHENTICATION_FAILURE; any other
//     bad header (including a Bearer scheme) is 401 INVALID_TOKEN. Scopes are
//     checked: ZohoCRM.modules[.{module}].{op}, settings, org, users and
//     notifications scopes, and ZohoSearch.securesearch.READ for search (Bigin
//     uses ZohoBigin.*). ALL covers every operation and WRITE covers create,
//     update and delete.
//   - per_page outside 1..200 is INVALID_DATA rather than silently capped.
//     cvid together with sort_by is AMBIGUITY_DURING_PROCESSING, as page with
//     page_token is. More than 50 fields or 100 ids is LIMIT_EXCEEDED; more
//     than 10 search conditions is LIMIT_EXCEEDED; a search page past the
//     2000th result is LIMIT_REACHED.
//   - page_token is an opaque string naming a keyset cursor held by the server,
//     bound to the user, the org, the path and every other query parameter
//     (per_page and fields included) and to If-Modified-Since, valid 24 hours
//     by the Clock. An unknown token is INVALID_DATA. Records changed while a
//     client pages by Modified_Time move behind the cursor and are seen again,
//     never skipped. previous_page_token is given on every page after the
//     first.
//   - Times keep second precision, as the CRM's do, and If-Modified-Since
//     compares instants with "modified after": two changes within one second
//     share a Modified_Time, which is what a real client must cope with.
//   - Search "equals" matches like contains on text fields (§2.5); in custom
//     views "equal" is exact. email= matches whole addresses in any email
//     field, phone= matches digits inside any phone field, word= any text
//     field. SetIndexLag hides newly written and edited records from search
//     (not from list or get) until the lag has passed by the Clock.
//   - Upsert answers 201 when every record succeeded and at least one was
//     inserted, 200 when all were updates. Duplicate checks follow
//     duplicate_check_fields, else the module's system field (Email, Account_Name,
//     Deal_Name, Product_Name) then other unique fields. Email on Contacts and
//     Leads and Account_Name on Accounts are unique, case-insensitively, on
//     insert and update. Seeded data may hold same-name accounts (the world
//     generator does not make names unique), as an org that turned the check
//     on later would; upsert then matches the oldest.
//   - Deleting a record moves it to the recycle bin; it is listed as
//     "recycle" for 60 days, then as "permanent" (nameless, userless) for 120
//     days. EmptyRecycleBin makes entries permanent at once. Related records
//     are not cascaded: their lookups render null once the target is gone.
//   - Watch: POST with an existing channel_id replaces it (a renewal). PATCH
//     adds the given events, or removes them with "_delete_events": true, and
//     replaces the other given keys; PUT replaces the channel. Unknown channels
//     are NOT_SUBSCRIBED. Expired channels disappear and receive nothing.
//     Every committed change (API calls, the gateway's own included, and the
//     UI methods) is POSTed through the hooks.Deliverer: one callback per
//     channel, module and operation of a call, with every id. affected_fields
//     lists changed fields for updates only when return_affected_field_values
//     is set, and is [] otherwise. resource_uri is the subscribing request's
//     scheme and host plus /crm/v2/{Module} (Bigin: /bigin/v2/{Module}, an
//     assumption). notify_on_related_action is stored and echoed but not acted
//     on; notification_condition is not supported.
//   - IDs are 19-digit strings whose first digits are per org (CRM 5725767…,
//     Bigin 2034020…), handed out in creation order, so sorting by id follows
//     time. Times render in Options.Offset (default -07:00 "America/Phoenix"
//     for CRM, +09:00 "Asia/Tokyo" for Bigin), dates as 2026-09-30.
//   - Bigin Pipelines need Sub_Pipeline, and Stage must be one of that
//     sub-pipeline's stages (INVALID_DATA on Stage with supported_values).
//
// Not implemented: API versions other than v8 (CRM) and v2 (Bigin), COQL,
// bulk APIs, X-EXTERNAL, If-Unmodified-Since on upsert, lead conversion,
// attachments, layouts and tags.
//
// # Size
//
// Records keep their values in per-field string slots and share the world's
// and the sample tables' strings; seeding 100,000 people (about 80,000 CRM
// contacts plus 670,000 deals, notes, activities, accounts, products and
// leads) takes about two seconds and some 300 MiB of heap.
package crm

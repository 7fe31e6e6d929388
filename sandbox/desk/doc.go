// Package desk is a fake of the Zoho Desk API v1 (reference/zoho-api.md
// §4), faithful enough that the gateway's Desk connector talks to it over
// HTTP exactly as to desk.zoho.{dc}: same paths, headers, paging, error
// envelope, 204s, string ids and counts, and webhooks. It seeds itself from
// the shared sandbox world, scales to 100,000 contacts and 10,000
// articles, and has Go methods that play the people using Desk's web UI
// (an agent editing a contact, a customer writing back or rating a
// ticket), which fire the same webhooks as API writes.
//
// # Wire rules
//
//   - Auth: "Authorization: Zoho-oauthtoken <token>" checked against the
//     oauth.Registry for Options.DC. No or malformed header: 401
//     UNAUTHORIZED; unknown, expired or other-DC token: 401 INVALID_OAUTH.
//   - orgId (header, or query parameter) is required everywhere but
//     /organizations, /organizations/{id} and /accessibleOrganizations.
//     Missing: 422 UNPROCESSABLE_ENTITY. Unknown, or an org the token may
//     not see: 401 OAUTH_ORG_MISMATCH. The seeded org is open to every
//     valid token (a stranger acts as the portal owner, the administrator
//     admin@<portal>.example, see OwnerEmail); orgs added with
//     AddOrg are closed unless OrgSpec.Open: only tokens whose user email
//     is an active agent there see them.
//   - Errors use the §4.7 envelope {errorCode, message, errors[{fieldName,
//     errorType, errorMessage}]}; fieldName is a JSON pointer ("/phone",
//     "/cf/cf_tier", "/contact/email"), errorType invalid, missing or
//     duplicate. Unknown URL or record id: 404 URL_NOT_FOUND. Bad query
//     values: 422 UNPROCESSABLE_ENTITY. Unknown body keys: 422
//     UNPROCESSABLE_ENTITY "An extra parameter 'x' is found"; response-only
//     keys (id, createdTime, webUrl, ...) echoed back are ignored. Body
//     that is not a JSON object: 400 BAD_REQUEST; empty body: 422
//     EMPTY_PAYLOAD.
//   - Paging: list endpoints take 1-based from, search endpoints 0-based
//     (from below the base, limit below 1 or above the maximum: 422).
//     Maximum limits: tickets 100, contacts and accounts 99, products 100,
//     articles 50, departments and agents 200 (agents also accept from=0),
//     recycle bin 50, searches 100 (default 10 everywhere). Lists answer
//     {"data":[…]}, searches {"data":[…],"count":total}; nothing found is
//     204 with no body. Lists and searches return the full record except
//     article lists, which carry the summary and not the answer.
//   - Ids are 16-digit numeric strings (org prefix + sequence), stable
//     and deterministic for a given world and seed; org ids are 9 digits.
//     Times are UTC "2006-01-02T15:04:05.000Z"; ranges "a,b", inclusive;
//     counts are strings.
//   - Where the Desk OAS documents "200 with no content" (closeTickets,
//     DELETE webhook), the fake answers 204. moveToTrash answers 204,
//     except articles/moveToTrash and recycleBin/restore|delete, which
//     answer 200 {"results":[{id, success, errors}]} as the OAS shows.
//   - Faults (Options.Faults): 429 with Retry-After (whole seconds, at
//     least 1) and X-Rate-Limit-Remaining-v3, body errorCode
//     TOO_MANY_REQUESTS (the real code was never observed; the OAS lists
//     this one); 500 INTERNAL_SERVER_ERROR; expired token 401 INVALID_OAUTH.
//   - Permissions: Light Agent tokens may read but not create tickets,
//     reply, or create/edit contacts, accounts and products (403
//     FORBIDDEN, SPEC C3). OAuth scopes are not checked.
//
// # Choices where the reference is silent or marked [L]
//
//   - ignoreSourceId: a request carries its source id in the header
//     X-Desk-Source-Id (SourceIDHeader). Events caused by that request are
//     not delivered to webhooks whose ignoreSourceId equals it (case
//     insensitive). UI methods never carry one.
//   - Webhook deliveries: one POST per event, body a JSON array of one
//     {eventType, orgId, eventTime (epoch ms as a string), payload,
//     prevState?}. payload is the full record as GET shows it (for thread,
//     comment and attachment events plus "ticketId"; for *_Delete the
//     record as it was, with isTrashed true). prevState (key "prevState")
//     appears only with includePrevState and holds the previous values of
//     the changed fields, custom fields nested under "cf"; values computed
//     from other records or the clock (counts, isOverDue, modifiedTime,
//     customerHappiness) never count as changes. Filters: departmentIds
//     (ticket, thread and comment events by the ticket's department),
//     Ticket_Update "fields" (at most 5; custom fields by apiName),
//     Ticket_Thread_Add "direction". A receiver answering 410 Gone removes
//     the webhook. Edition caps: 10 enabled webhooks (ENTERPRISE), 20 in
//     all; beyond: 422 THRESHOLD_EXCEEDED. Products have no webhook events
//     in Desk and fire none here. Restoring from the recycle bin fires the
//     *_Add event again. Adding a thread or comment bumps modifiedTime
//     without a Ticket_Update; a status change it causes fires one.
//   - Customer type (SPEC D3): the custom Picklist field cf.cf_customer_type
//     (Enterprise, Mid-Market, SMB, Trial) on tickets and on contacts,
//     seeded from the CRM customer type for people known to both sides.
//     Tickets also have cf_chat_id (Text) for the SalesIQ conversation a
//     chat ticket came from, empty in the seed.
//   - Mentions: Desk's markup zsu[@user:<zuid>]zsu (MentionMarkup); the
//     fake also resolves an agent id in place of the zuid. Comments return
//     "mention":[{id, zuid, firstName, lastName, email, type, offSet,
//     length}] (offsets in characters) with include=mentions, and always
//     in the comment webhook payloads.
//   - Ratings: GET /api/v1/tickets/{id}/customerHappiness and GET
//     /api/v1/customerHappiness (from, limit, departmentId, rating=
//     GOOD|OKAY|BAD, ratedTimeRange) list {id, ticketId, ticketNumber,
//     contactId, departmentId, agentId, rating, feedback, ratedTime}. A
//     rating also adds an incoming FEEDBACK thread ("Customer Rating"),
//     which fires Ticket_Thread_Add; it does not reopen the ticket.
//     Contacts' and accounts' customerHappiness percentages follow.
//   - Trash: POST /{contacts|accounts|products|tickets}/moveToTrash with
//     contactIds, accountIds, productIds or ticketIds ("ids" also
//     accepted); articles/moveToTrash takes ids, tasks|calls|events/
//     moveToTrash taskIds, callIds or eventIds. Trashed records still answer GET by id with isTrashed true;
//     lists and searches leave them out and writes to them are refused
//     (422). Deleting a contact takes its tickets to the bin (Ticket_Delete
//     each); deleting an account takes its contracts, while its contacts
//     and tickets keep pointing at it. GET /api/v1/recycleBin (from, limit,
//     departmentId, include=deletedBy,department, and module=tickets|
//     contacts|accounts|products|articles|contracts|timeentry|tasks|calls|
//     events|attachments instead of the OAS's opaque moduleId) lists
//     {id, type, displayName, departmentId, deletedById, deletedTime},
//     newest first. POST /recycleBin/restore {ids, isChildNeedToBeRestored
//     (default true)} brings records back with what went in with them;
//     POST /recycleBin/delete {ids} deletes for good (then GET is 404).
//   - Related lists (SPEC B11): /contacts/{id}/tickets, /contacts/{id}/
//     timeEntry (entries of the contact's tickets), /contacts/{id}/
//     activities (tasks, calls and events linked to the contact or its
//     tickets; activityType=tasks,calls,events filter; not in the OAS),
//     /contacts|accounts|products|tickets/{id}/attachments,
//     /accounts/{id}/tickets|contacts|contracts, /products/{id}/tickets,
//     /tickets/{id}/timeEntry|activities, plus /contacts/{id}/statistics
//     and /accounts/{id}/statistics (ticket counts by state, for E3 and F7).
//   - SLAs and contracts: an SLA belongs to one department, and every
//     department has one default SLA. Seeded in every org: "Standard 24h"
//     (the default) in each enabled department, "Gold 4h" and "Silver 8h"
//     in Support, an inactive "Legacy 72h" in the disabled Legacy; a
//     department created later gets a default "Standard 24h". A contract
//     names its SLA by associatedSLAId (Contract.json); GET /contracts/{id}
//     and the write answers also show sla{id, name}, GET /contracts only
//     with include=slas, and GET /accounts/{id}/contracts shows slaName
//     (Account.json). Modelled, as the public OAS has no SLA endpoint:
//     GET /api/v1/slas (departmentId, status=ACTIVE|INACTIVE, from 1-based
//     with 0 also taken as the first, limit at most 100) lists {id, name,
//     description, departmentId, department{id, name}, isActive,
//     isDefault, createdTime, modifiedTime} in creation order; GET
//     /api/v1/slas/{id} is one of them (404 when unknown). Desk requires
//     associatedSLAId on create; the fake gives the department's default
//     when it is absent or null, and when a department change leaves the
//     old SLA behind. A named SLA must be an active SLA of the contract's
//     department (422 /associatedSLAId invalid). The account's own SLA
//     associations (/accounts/{id}/sla) are not modelled.
//   - Merge: POST /tickets|contacts|accounts/{id}/merge {ids (at most 3),
//     source{field: id}}: the master keeps its id and takes the chosen
//     values; the others' threads, comments, tickets, contacts and related
//     records move to it and they go to the recycle bin.
//   - Tickets: create needs subject, an enabled departmentId and contactId
//     or a "contact" object {email, lastName, firstName, phone, mobile},
//     matched by email to an existing contact or created (Contact_Add).
//     accountId, email and phone default from the contact. The status
//     picklist is the org's status list (Open, In Progress, On Hold,
//     Waiting on Customer, Closed, Resolved, and AddTicketStatus ones);
//     statusType is derived from it, closedTime and onholdTime follow.
//     isOverDue is dueDate < clock for a ticket not Closed. A customer
//     reply reopens a Closed or On Hold ticket. Unsorted ticket lists are
//     newest first, contacts, accounts and products come in creation
//     order; search sortBy=relevance (the default) is newest-modified
//     first. status=${Open} (statusType) works in search. tag searches
//     find nothing: the fake has no tags.
//   - Threads: GET …/threads (1-based, newest first unless
//     sortBy=sendDateTime) has summaries only; GET …/threads/{id} the
//     content. sendReply needs channel, content and, for EMAIL, ONLINE_CHAT,
//     OFFLINE_CHAT, CUSTOMERPORTAL and FORUMS, a fromEmailAddress that is a
//     verified address of the ticket's department (GET /mailReplyAddress;
//     seeded support@, sales@, support-jp@, legacy@ and help@ at
//     <portal>.example). cc and bcc are accepted although the OAS leaves
//     them out (reply-all, SPEC E2). EMAIL needs a recipient: "to", else
//     the ticket's email; a forward (isForward) needs "to". ticketStatus
//     changes the status after the reply. draftReply saves a DRAFT thread
//     that fires nothing and does not count in threadCount.
//   - Agents: GET /agents lists ACTIVE and DISABLED agents (status=DELETED
//     lists deleted ones); a deleted agent still answers GET by id, with
//     status DELETED (SPEC A5). /myinfo is the token's agent (or the owner).
//     Profiles carry permissions.crmInteg and permissions.tickets (C1, C3).
//   - Fields: GET /organizationFields?module=contacts|accounts|products|
//     tickets lists {id, apiName, name, displayLabel, i18NLabel, type,
//     isCustomField, isMandatory, maxLength, isEncryptedField,
//     allowedValues (strings, picklists), lookupModule and isMultiple
//     (lookups), statusTypes (the ticket status field)}. Every write is
//     checked against it: Number accepts integers or integer strings,
//     Decimal and Currency numbers or numeric strings (rendered as strings),
//     Boolean true/false or "true"/"false", Date yyyy-MM-dd, DateTime ISO,
//     Email, Phone and URL by pattern, Picklist by value (any case), LookUp
//     by a live target. Products require departmentIds (SPEC B5); account
//     names need not be unique (Desk does not enforce it; duplicate
//     detection, B8, is the gateway's job).
//   - Knowledge base: five root categories, each owned by one department
//     (associatedDepartmentIds, SPEC F2) with visibility ALL_USERS,
//     REGISTERED_USERS or AGENTS, sections below them; articles list filter
//     categoryId includes the category's descendants. Article create needs
//     title, answer, categoryId, status (Draft, Published or Review) and
//     locale; every change bumps the minor version, and publishing sets
//     latestPublishedVersion. Categories are max(6, people/500) and
//     articles max(24, people/10) of the seeded world: 200 and 10,000 for
//     100,000 people.
//
// # Seeding
//
// People, accounts and products present in the desk (Presence.InDesk)
// become contacts, accounts and products with the desk's own values
// (DeskName, Desk.Email, Desk.Phone, Desk.Title), in creation-time order.
// Each contact gets 0-5 tickets (seed.RNG(Seed, "desk.tickets")) with
// statuses by age, due dates (many overdue against the world's Now),
// priorities, classifications and channels including Chat; their threads
// and comments are generated on first read from a per-ticket stream, with
// ids reserved at seeding, so a 100,000-person world seeds in well under a
// second. Ratings, time entries, activities, attachments and contracts go
// to a minority of records, so "has related records" is true for some and
// false for others. The SLAs are set up after everything else (so they
// take the last ids and every other seeded id is what it was before SLAs
// existed), and each seeded contract then gets one of its department's
// active SLAs (seed.RNG(Seed, "desk.slas")).
package desk

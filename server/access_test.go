package server

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/sandbox/oauth"
)

// invitedCRMAdmin is the CRM admin the access tests ask. The sandbox CRM
// adds the user of a token it does not know yet, as an Administrator.
const invitedCRMAdmin = "cio@crm-side.example"

// accessRequestInput asks invitedCRMAdmin for the world's CRM (A2).
func (w *connectionWorld) accessRequestInput() map[string]any {
	return map[string]any{"crmSystem": "ZOHO_CRM", "crmDataCenter": "US", "crmAdminEmail": invitedCRMAdmin,
		"deskDataCenter": "US", "deskOrgId": w.deskID, "deskCredentials": map[string]any{"refreshToken": w.deskRT}}
}

// requestAccess sends an access request as admin and returns the
// payload's fields.
func (w *connectionWorld) requestAccess(t *testing.T, admin string, in map[string]any, fields string) map[string]any {
	t.Helper()
	r := w.ts.query(admin, `mutation($in: RequestCrmAccessInput!) { requestCrmAccess(input: $in) { `+fields+` } }`,
		map[string]any{"in": in})
	if len(r.Errors) > 0 {
		t.Fatalf("requestCrmAccess: %+v", r.Errors)
	}
	return r.Data["requestCrmAccess"].(map[string]any)
}

const accessRequestFields = `connection { id status authMethod crmOrg { id } accessRequest { crmAdminEmail sentCount expiresAt approved } } approvalCode expiresAt`

// A2: a desk admin who is not a CRM admin asks one for their account; the
// request waits, can be re-sent (the old code dies), and only the invited
// CRM admin's own credentials approve it, after which the connection syncs.
func TestAccessRequestOverGraphQL(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "200ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	agent := w.ts.token("acme", auth.RoleAgent)
	cr := w.sb.Credentials()
	var answers []string
	q := func(token, query string, vars map[string]any) gqlResponse {
		t.Helper()
		r := w.ts.query(token, query, vars)
		raw, _ := json.Marshal(r)
		answers = append(answers, string(raw))
		return r
	}
	const cio = invitedCRMAdmin
	request := `mutation($in: RequestCrmAccessInput!) { requestCrmAccess(input: $in) { ` + accessRequestFields + ` } }`
	in := w.accessRequestInput()

	wantCode(t, "an agent requests access", q(agent, request, map[string]any{"in": in}), codeForbidden)
	bad := map[string]any{}
	for k, v := range in {
		bad[k] = v
	}
	bad["crmAdminEmail"] = "not an email"
	if r := q(admin, request, map[string]any{"in": bad}); r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.crmAdminEmail" {
		t.Fatalf("a bad email: %+v", r.Errors)
	}
	r := q(admin, request, map[string]any{"in": in})
	if len(r.Errors) > 0 {
		t.Fatalf("requestCrmAccess: %+v", r.Errors)
	}
	first := r.Data["requestCrmAccess"].(map[string]any)
	conn := first["connection"].(map[string]any)
	connID := conn["id"].(string)
	if conn["status"] != "PENDING_APPROVAL" || conn["authMethod"] != "OTHER_USER" || conn["crmOrg"] != nil {
		t.Fatalf("pending connection: %+v", conn)
	}
	if ar := conn["accessRequest"].(map[string]any); ar["crmAdminEmail"] != cio || ar["sentCount"] != 1.0 || ar["approved"] != false || ar["expiresAt"] == nil {
		t.Fatalf("access request: %+v", ar)
	}
	firstCode := first["approvalCode"].(string)
	wantCode(t, "a second live connection", q(admin, request, map[string]any{"in": in}), "CONFLICT")

	// Re-send: a new code; the old one no longer works.
	resend := `mutation($id: ID!) { resendCrmAccessRequest(id: $id) { ` + accessRequestFields + ` } }`
	wantCode(t, "an agent re-sends", q(agent, resend, map[string]any{"id": connID}), codeForbidden)
	r = q(admin, resend, map[string]any{"id": connID})
	if len(r.Errors) > 0 {
		t.Fatalf("resendCrmAccessRequest: %+v", r.Errors)
	}
	second := r.Data["resendCrmAccessRequest"].(map[string]any)
	code := second["approvalCode"].(string)
	if code == firstCode || dig(second, "connection", "accessRequest", "sentCount") != 2.0 {
		t.Fatalf("re-sent request: %+v", second)
	}

	approve := `mutation($in: ApproveCrmAccessInput!) { approveCrmAccess(input: $in) { id status crmOrg { id name } accessRequest { approved expiresAt } } }`
	grant := func(email string) string {
		return w.sb.Registry().AddRefreshToken(oauth.Grant{ClientID: cr.ClientID, UserEmail: email, Scopes: cr.Scopes["crm"], DC: "us"})
	}
	approveWith := func(code, refreshToken string) gqlResponse {
		return q("", approve, map[string]any{"in": map[string]any{"approvalCode": code, "credentials": map[string]any{"refreshToken": refreshToken}}})
	}
	if r := approveWith(firstCode, grant(cio)); r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.approvalCode" {
		t.Fatalf("the replaced code: %+v", r.Errors)
	}
	if r := approveWith(code, grant("someone.else@crm-side.example")); r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.credentials" {
		t.Fatalf("another account's credentials: %+v", r.Errors)
	}
	if got := q(admin, `{ connections { status } }`, nil); dig(got.Data, "connections").([]any)[0].(map[string]any)["status"] != "PENDING_APPROVAL" {
		t.Fatalf("a refused approval changed the connection: %+v", got.Data)
	}
	// The invited admin approves, without any deskbridge token.
	r = approveWith(code, grant(cio))
	if len(r.Errors) > 0 {
		t.Fatalf("approveCrmAccess: %+v", r.Errors)
	}
	approved := r.Data["approveCrmAccess"].(map[string]any)
	if approved["status"] != "ACTIVE" || dig(approved, "crmOrg", "id") == nil || dig(approved, "accessRequest", "approved") != true || dig(approved, "accessRequest", "expiresAt") != nil {
		t.Fatalf("approved connection: %+v", approved)
	}
	if r := approveWith(code, grant(cio)); r.code(0) != codeBadUserInput {
		t.Fatalf("a used code approved again: %+v", r)
	}

	// Approval started the first sync, which runs to the end.
	waitFor(t, "the first sync after approval", func() bool {
		r := w.ts.query(admin, syncRunsQuery, nil)
		runs, _ := dig(r.Data, "connections").([]any)[0].(map[string]any)["syncRuns"].([]any)
		for _, run := range runs {
			if run.(map[string]any)["status"] != "DONE" {
				return false
			}
		}
		return len(runs) == 6
	})
	var types []string
	if err := w.ts.srv.db.DB.Select(&types, `SELECT type FROM events WHERE type LIKE 'CONNECTION_%' ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(types, ",") != "CONNECTION_CREATED,CONNECTION_UPDATED,CONNECTION_STATUS_CHANGED" {
		t.Fatalf("connection events: %v", types)
	}

	// An expired code approves nothing.
	other := w.ts.token("globex", auth.RoleAdmin)
	r = q(other, request, map[string]any{"in": in})
	if len(r.Errors) > 0 {
		t.Fatalf("globex requestCrmAccess: %+v", r.Errors)
	}
	if _, err := w.ts.srv.db.DB.Exec(`UPDATE connections SET request_expires_at = now() - interval '1 second' WHERE status = 'PENDING_APPROVAL'`); err != nil {
		t.Fatal(err)
	}
	if r := approveWith(dig(r.Data, "requestCrmAccess", "approvalCode").(string), grant(cio)); r.code(0) != codeBadUserInput {
		t.Fatalf("an expired code: %+v", r)
	}
	// The invited account must administer its CRM: a Standard user's own
	// credentials approve nothing.
	standard := w.sb.CRM("us").Orgs()[0].Users()[1]
	inStandard := map[string]any{}
	for k, v := range in {
		inStandard[k] = v
	}
	inStandard["crmAdminEmail"] = standard
	r = q(w.ts.token("initech", auth.RoleAdmin), request, map[string]any{"in": inStandard})
	if len(r.Errors) > 0 {
		t.Fatalf("initech requestCrmAccess: %+v", r.Errors)
	}
	r = approveWith(dig(r.Data, "requestCrmAccess", "approvalCode").(string), grant(standard))
	if r.code(0) != codeBadUserInput || !strings.Contains(r.Errors[0].Message, "not an administrator") {
		t.Fatalf("a Standard user's approval: %+v", r.Errors)
	}
	for _, a := range answers {
		if strings.Contains(a, w.deskRT) {
			t.Fatalf("an answer held the desk refresh token: %s", a)
		}
	}
}

// A3: a CRM org joins a desk portal through a portal admin's service key,
// with language and time zone; switching to another portal drops the links
// to the old one (which keeps its data) and pairs the CRM with the new one.
func TestServiceKeyConnectionAndPortalSwitch(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t, map[string]string{"DESKBRIDGE_POLL_INTERVAL": "200ms", "DESKBRIDGE_FIRST_SYNC_INTERVAL": "100ms"})
	admin := w.ts.token("acme", auth.RoleAdmin)
	agent := w.ts.token("acme", auth.RoleAgent)
	cr := w.sb.Credentials()
	serviceKey := cr.ServiceKeys["us"]
	secondPortal := w.sb.Desk("us").AddOrg(desk.OrgSpec{PortalName: "second", CompanyName: "Second Portal",
		TimeZone: "Asia/Tokyo", Admin: cr.UserEmail})
	var answers []string
	q := func(token, query string, vars map[string]any) gqlResponse {
		t.Helper()
		r := w.ts.query(token, query, vars)
		raw, _ := json.Marshal(r)
		answers = append(answers, string(raw))
		return r
	}
	key := map[string]any{"adminEmail": cr.UserEmail, "key": serviceKey}

	portalsQuery := `query($k: ServiceKeyInput!) { serviceKeyPortals(deskDataCenter: US, serviceKey: $k) { id name timeZone } }`
	wantCode(t, "an agent lists portals", q(agent, portalsQuery, map[string]any{"k": key}), codeForbidden)
	r := q(admin, portalsQuery, map[string]any{"k": key})
	if len(r.Errors) > 0 {
		t.Fatalf("serviceKeyPortals: %+v\n%s", r.Errors, w.log.String())
	}
	ids := map[string]bool{}
	for _, p := range r.Data["serviceKeyPortals"].([]any) {
		ids[p.(map[string]any)["id"].(string)] = true
	}
	if !ids[w.deskID] || !ids[secondPortal.OrgID()] {
		t.Fatalf("serviceKeyPortals = %+v, want %s and %s", r.Data, w.deskID, secondPortal.OrgID())
	}
	for what, k := range map[string]map[string]any{
		"a wrong key":   {"adminEmail": cr.UserEmail, "key": "not-the-key"},
		"another email": {"adminEmail": "other.admin@zylker.example", "key": serviceKey},
	} {
		if r := q(admin, portalsQuery, map[string]any{"k": k}); r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "serviceKey" {
			t.Fatalf("%s: %+v", what, r.Errors)
		}
	}

	crmOrgID := w.crmOrgID(t, admin)
	connect := `mutation($in: ConnectCrmWithServiceKeyInput!) { connectCrmWithServiceKey(input: $in) { id status authMethod deskOrgId deskPortal language timeZone serviceKeyAdminEmail } }`
	input := func(language, timeZone string) map[string]any {
		return map[string]any{"crmSystem": "ZOHO_CRM", "crmDataCenter": "US", "crmOrgId": crmOrgID,
			"crmCredentials": map[string]any{"refreshToken": w.crmRT}, "deskDataCenter": "US", "serviceKey": key,
			"deskOrgId": w.deskID, "language": language, "timeZone": timeZone}
	}
	if r := q(admin, connect, map[string]any{"in": input("xx", "Asia/Tokyo")}); r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.language" {
		t.Fatalf("a bad language: %+v", r.Errors)
	}
	if r := q(admin, connect, map[string]any{"in": input("ja", "Mars/Olympus_Mons")}); r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.timeZone" {
		t.Fatalf("a bad time zone: %+v", r.Errors)
	}
	r = q(admin, connect, map[string]any{"in": input("ja", "Asia/Tokyo")})
	if len(r.Errors) > 0 {
		t.Fatalf("connectCrmWithServiceKey: %+v", r.Errors)
	}
	conn := r.Data["connectCrmWithServiceKey"].(map[string]any)
	if conn["status"] != "ACTIVE" || conn["authMethod"] != "SERVICE_KEY" || conn["language"] != "ja" ||
		conn["timeZone"] != "Asia/Tokyo" || conn["serviceKeyAdminEmail"] != cr.UserEmail || conn["deskPortal"] == nil {
		t.Fatalf("service-key connection: %+v", conn)
	}
	connID := conn["id"].(string)

	runsDone := func() bool {
		r := w.ts.query(admin, syncRunsQuery, nil)
		runs, _ := dig(r.Data, "connections").([]any)[0].(map[string]any)["syncRuns"].([]any)
		running := 0
		for _, run := range runs {
			if run.(map[string]any)["status"] == "RUNNING" {
				running++
			}
		}
		return len(runs) > 0 && running == 0
	}
	waitFor(t, "the first sync on the service key", runsDone)
	countLinks := func() (n int64) {
		if err := w.ts.srv.db.DB.Get(&n, `SELECT count(*) FROM links`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	linksBefore := countLinks()
	firstPortal := w.sb.Desk("us")
	firstPortalContacts := firstPortal.Counts().Contacts
	if linksBefore == 0 || secondPortal.Counts().Contacts != 0 {
		t.Fatalf("after the first sync: %d links, %d contacts in the second portal", linksBefore, secondPortal.Counts().Contacts)
	}

	// Switch portals.
	switchPortal := `mutation($in: SwitchDeskPortalInput!) { switchDeskPortal(input: $in) { droppedLinks connection { deskOrgId deskPortal language timeZone } } }`
	wantCode(t, "an agent switches", q(agent, switchPortal, map[string]any{"in": map[string]any{"id": connID, "deskOrgId": secondPortal.OrgID()}}), codeForbidden)
	if r := q(admin, switchPortal, map[string]any{"in": map[string]any{"id": connID, "deskOrgId": "424242"}}); r.code(0) != codeBadUserInput || r.Errors[0].Extensions["argument"] != "input.deskOrgId" {
		t.Fatalf("an unknown portal: %+v", r.Errors)
	}
	r = q(admin, switchPortal, map[string]any{"in": map[string]any{"id": connID, "deskOrgId": secondPortal.OrgID(), "language": "en"}})
	if len(r.Errors) > 0 {
		t.Fatalf("switchDeskPortal: %+v", r.Errors)
	}
	sw := r.Data["switchDeskPortal"].(map[string]any)
	if int64(sw["droppedLinks"].(float64)) != linksBefore || dig(sw, "connection", "deskOrgId") != secondPortal.OrgID() ||
		dig(sw, "connection", "language") != "en" || dig(sw, "connection", "timeZone") != "Asia/Tokyo" {
		t.Fatalf("switched: %+v (links before %d)", sw, linksBefore)
	}
	waitFor(t, "the first sync on the second portal", func() bool { return runsDone() && countLinks() > 0 })
	var deskIDs []string
	if err := w.ts.srv.db.DB.Select(&deskIDs, `SELECT desk_id FROM links WHERE module = 'contacts'`); err != nil {
		t.Fatal(err)
	}
	for _, id := range deskIDs {
		if _, ok := secondPortal.Contact(id); !ok {
			t.Fatalf("link to desk contact %s, which is not in the second portal", id)
		}
	}
	if len(deskIDs) == 0 || secondPortal.Counts().Contacts != len(deskIDs) {
		t.Fatalf("second portal: %d contacts, %d contact links", secondPortal.Counts().Contacts, len(deskIDs))
	}
	if got := firstPortal.Counts().Contacts; got != firstPortalContacts {
		t.Fatalf("the old portal lost data: %d contacts, had %d", got, firstPortalContacts)
	}
	for _, a := range append(answers, w.log.String()) {
		if strings.Contains(a, serviceKey) {
			t.Fatalf("the service key leaked: %.300s", a)
		}
	}
}

// A2 in a browser's steps: requestCrmAccess answers an approval URL; the
// page there names the request and links to Zoho's consent page; Zoho's
// answer comes back to the callback, which approves only for the invited
// admin and says what happened. No deskbridge token is involved.
func TestAccessApprovalPages(t *testing.T) {
	t.Parallel()
	w := startConnectionWorld(t)
	admin := w.ts.token("acme", auth.RoleAdmin)
	const cio = invitedCRMAdmin
	// The settings asked for with the request are those the approval's
	// first sync runs under.
	in := w.accessRequestInput()
	in["settings"] = []any{map[string]any{"moduleGroup": "CONTACTS_ACCOUNTS", "syncType": "ONE_WAY"}}
	req := w.requestAccess(t, admin, in, "approvalCode approvalUrl")
	code, page := req["approvalCode"].(string), req["approvalUrl"].(string)
	if page != w.ts.url+"/connect/approve?code="+url.QueryEscape(code) {
		t.Fatalf("approvalUrl = %s", page)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (int, http.Header, string) {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	status, header, body := get(page)
	if status != 200 || header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(body, cio) || !strings.Contains(body, "Zoho CRM") {
		t.Fatalf("approval page: %d %v\n%s", status, header, body)
	}
	m := regexp.MustCompile(`id="approve" href="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no approve link:\n%s", body)
	}
	consent, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if q := consent.Query(); q.Get("redirect_uri") != w.ts.url+"/connect/approve/callback" || q.Get("state") != code ||
		q.Get("access_type") != "offline" || !strings.Contains(q.Get("scope"), "ZohoCRM.modules.ALL") {
		t.Fatalf("consent link: %s", consent)
	}

	// At Zoho: the consent page's form, answered as someone.
	status, _, form := get(consent.String())
	if status != 200 {
		t.Fatalf("consent page: %d %s", status, form)
	}
	answer := func(email, decision string) (int, string) {
		t.Helper()
		fields := url.Values{"email": {email}, "decision": {decision}}
		for _, h := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(form, -1) {
			fields.Set(h[1], html.UnescapeString(h[2]))
		}
		resp, err := browser.PostForm(consent.Scheme+"://"+consent.Host+"/oauth/v2/auth", fields)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		back := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back, w.ts.url+"/connect/approve/callback?") {
			t.Fatalf("consent answered %d, to %q", resp.StatusCode, back)
		}
		status, _, body := get(back)
		return status, body
	}
	pending := func() bool {
		got := w.ts.query(admin, `{ connections { status } }`, nil)
		return dig(got.Data, "connections").([]any)[0].(map[string]any)["status"] == "PENDING_APPROVAL"
	}
	if status, body := answer(cio, "reject"); status != 200 || !strings.Contains(body, "did not give deskbridge access") || !pending() {
		t.Fatalf("rejected: %d\n%s", status, body)
	}
	if status, body := answer("someone.else@crm-side.example", "accept"); status != 400 ||
		!strings.Contains(body, "another account than the CRM admin") || !pending() {
		t.Fatalf("another account accepted: %d\n%s", status, body)
	}
	status, body = answer(cio, "accept")
	if status != 200 || !strings.Contains(body, `id="done"`) || pending() {
		t.Fatalf("the invited admin accepted: %d\n%s", status, body)
	}
	if status, _, body := get(page); status != 404 || !strings.Contains(body, "cannot be approved") {
		t.Fatalf("the approval page after approval: %d\n%s", status, body)
	}
	var directions []string
	for _, c := range w.ts.query(admin, syncRunsQuery, nil).Data["connections"].([]any) {
		for _, run := range c.(map[string]any)["syncRuns"].([]any) {
			if run := run.(map[string]any); run["module"] == "CONTACTS" {
				directions = append(directions, run["direction"].(string))
			}
		}
	}
	if !slices.Equal(directions, []string{"CRM_TO_DESK"}) {
		t.Fatalf("the approved ONE_WAY connection's contacts runs: %v", directions)
	}
}

// The same approval in headless Chromium: the approval page's button leads
// to the consent page, accepting there lands on the callback's "Approved"
// page, and no page logs an error (a CSP violation would).
func TestAccessApprovalInABrowser(t *testing.T) {
	t.Parallel()
	chromium, jsDir := browserTools(t)
	w := startConnectionWorld(t)
	admin := w.ts.token("acme", auth.RoleAdmin)
	page := w.requestAccess(t, admin, w.accessRequestInput(), "approvalUrl")["approvalUrl"].(string)
	cmd := exec.Command("node", filepath.Join("browser", "approve.browser.mjs"))
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "APPROVER_EMAIL="+invitedCRMAdmin, "APPROVAL_URL="+page)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("the browser script: %v\n%s", err, raw)
	}
	var got struct {
		ApprovalTitle, ConsentURL, FinalURL, FinalTitle, Done, Error string
		Problems                                                     []string
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("the browser script printed %s: %v", raw, err)
	}
	if got.Error != "" || len(got.Problems) > 0 {
		t.Fatalf("in the browser: %s, problems %v", got.Error, got.Problems)
	}
	if !strings.Contains(got.ConsentURL, "/oauth/v2/auth?") || !strings.HasPrefix(got.FinalURL, w.ts.url+"/connect/approve/callback?") ||
		got.FinalTitle != "Approved" || !strings.Contains(got.Done, "Approved") {
		t.Fatalf("the browser went %+v", got)
	}
	status := w.ts.query(admin, `{ connections { status } }`, nil)
	if s := dig(status.Data, "connections").([]any)[0].(map[string]any)["status"]; s != "ACTIVE" {
		t.Fatalf("after the browser approved, the connection is %v", s)
	}
}

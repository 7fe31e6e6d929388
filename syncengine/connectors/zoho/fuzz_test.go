package zoho

import (
	"net/http"
	"testing"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Seed payloads: the shapes of reference/zoho-api.md and of the sandbox's
// deliveries.
var (
	crmSeeds = []string{
		`{"server_time":1718117126473,"query_params":{"tenant":"42"},"module":"Contacts","resource_uri":"https://www.zohoapis.com/crm/v2/Contacts","ids":["5725767000003000010"],"affected_fields":[{"5725767000003000010":["Mobile"]}],"operation":"update","channel_id":"1000000068001","token":"TOKEN_FOR_VERIFICATION_OF_1000000068001"}`,
		`{"server_time":1718117126473,"module":"Deals","ids":["1","2"],"affected_fields":[],"operation":"insert","channel_id":1000000068001,"token":null}`,
		`{"module":"Leads","ids":[5725767000003000010],"operation":"delete"}`,
		`{"module":"Contacts","ids":["1"],"operation":"update","affected_fields":[{"1":["A","B"]},{"2":[]},"x",3]}`,
		`[]`, `null`, `{"module":"","ids":[]}`,
	}
	deskSeeds = []string{
		`[{"eventType":"Ticket_Update","orgId":"55555555","eventTime":"1528188382000","payload":{"id":"1892000000042034","ticketNumber":"101","status":"Closed","modifiedTime":"2024-01-05T10:00:00.000Z","cf":{"cf_model":"F3"}},"prevState":{"status":"Open","cf":{"cf_model":"F2"}}}]`,
		`[{"eventType":"Contact_Add","orgId":"1","eventTime":1528188382000,"payload":{"id":"1892000000042032","lastName":"Jack","email":"jack@zylker.com","createdTime":"2024-01-05T10:00:00.000Z"}}]`,
		`[{"eventType":"Ticket_Thread_Add","payload":{"id":"9","ticketId":"1892000000042034","direction":"in"}},{"eventType":"Account_Delete","payload":{"id":"7"}}]`,
		`{"eventType":"Contact_Update","payload":{"id":"3"}}`,
		`[{"eventType":"Nope"},{"eventType":"Ticket_"},{}]`, `[null]`, `"x"`,
	}
	siqSeeds = []string{
		`{"entity_id":"17000000004021","event_time":"1556866331533","event":"conversation.created","entity_type":"conversation","entity":{"id":"17000000004021","question":"Hi","visitor":{"id":"30000000090034","email_id":"tricia@zylker.com"},"updated_time":"1556866331929"}}`,
		`{"entity_id":"30000000095001","event_time":1556866331533,"event":"visitor.updated","entity":{"id":"30000000095001","first_name":"Scott","email_id":"scottsmith@zylker.com"}}`,
		`{"event":"conversation.missed","entity":{"id":"5"}}`,
		`{"entity_id":null,"entity":[]}`, `[]`,
	}
)

func FuzzParseCRMNotification(f *testing.F) {
	for _, s := range crmSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		changes, err := parseCRMNotification(body)
		checkChanges(t, changes, err)
	})
}

func FuzzParseDeskNotification(f *testing.F) {
	for _, s := range deskSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		changes, err := parseDeskNotification(body)
		checkChanges(t, changes, err)
	})
}

func FuzzParseSalesIQNotification(f *testing.F) {
	for _, s := range siqSeeds {
		f.Add([]byte(s), "c2lnbmF0dXJl")
	}
	key := testSigningKey(f)
	s := &SalesIQ{keys: map[string]siqKey{"1": {pub: &key.PublicKey, token: "tok"}}}
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		changes, err := parseSalesIQNotification(body)
		checkChanges(t, changes, err)
		// The verifying entry point refuses anything not signed by the key.
		if _, err := s.ParseNotification(http.Header{"X-Siqsignature": {sig}}, body); err == nil {
			t.Fatalf("unsigned body accepted")
		}
	})
}

// checkChanges asserts what every successful parse promises.
func checkChanges(t *testing.T, changes []connector.Change, err error) {
	t.Helper()
	if err != nil {
		if changes != nil {
			t.Fatalf("changes %v returned with error %v", changes, err)
		}
		return
	}
	if len(changes) == 0 {
		t.Fatal("no changes and no error")
	}
	for _, c := range changes {
		if c.Module == "" || len(c.IDs) == 0 || c.Kind < connector.Created || c.Kind > connector.Deleted {
			t.Fatalf("incomplete change %+v", c)
		}
		for _, id := range c.IDs {
			if id == "" {
				t.Fatalf("empty id in %+v", c)
			}
		}
	}
}

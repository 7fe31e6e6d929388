package syncengine

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

func TestDescribeRecordLiftsWhatQueriesUse(t *testing.T) {
	t.Parallel()
	rec := func(raw string) connector.Record {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var f map[string]any
		if err := dec.Decode(&f); err != nil {
			t.Fatal(err)
		}
		return connector.Record{ID: "1", Fields: f}
	}
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }

	deal := describeRecord(connector.CRM, "deals", rec(`{"Deal_Name":"Renewal","Contact_Name":{"id":"c1","name":"A"},
		"Account_Name":{"id":"a1"},"Amount":1250.5,"Stage":"Closed Won","Closing_Date":"2026-03-01","Owner":{"id":"u1","name":"Sales Rep"}}`))
	if deal.Title != "Renewal" || deal.ContactID != "c1" || deal.AccountID != "a1" || deal.Amount == nil || *deal.Amount != 1250.5 ||
		deal.Status != "Closed Won" || deal.Closed == nil || !*deal.Closed || deal.At == nil || !deal.At.Equal(day("2026-03-01")) ||
		deal.OwnerID != "u1" || deal.OwnerName != "Sales Rep" {
		t.Fatalf("deal = %+v", deal)
	}
	note := describeRecord(connector.CRM, "notes", rec(`{"Note_Content":"called about the invoice","Parent_Id":{"id":"d9"},"$se_module":"Deals"}`))
	if note.DealID != "d9" || note.ContactID != "" || note.Title != "called about the invoice" {
		t.Fatalf("note = %+v", note)
	}
	task := describeRecord(connector.CRM, "tasks", rec(`{"Subject":"Send quote","Who_Id":{"id":"c2"},"What_Id":{"id":"a7"},"$se_module":"Accounts",
		"Due_Date":"2026-04-02","Status":"Completed"}`))
	if task.ContactID != "c2" || task.AccountID != "a7" || task.Closed == nil || !*task.Closed || task.At == nil {
		t.Fatalf("task = %+v", task)
	}
	call := describeRecord(connector.Bigin, "calls", rec(`{"Subject":"Intro","Call_Start_Time":"2026-04-02T10:00:00+09:00","Call_Type":"Outbound","What_Id":{"id":"p3"},"$se_module":"Pipelines"}`))
	if call.DealID != "p3" || call.At == nil || call.At.UTC().Hour() != 1 || call.Status != "Outbound" {
		t.Fatalf("call = %+v", call)
	}
	ticket := describeRecord(connector.Desk, "tickets", rec(`{"subject":"Printer","contactId":"dc1","accountId":"da1","status":"On Hold",
		"statusType":"On Hold","assigneeId":"ag1","departmentId":"dep1","dueDate":"2026-05-01T00:00:00.000Z"}`))
	if ticket.ContactID != "dc1" || ticket.AccountID != "da1" || ticket.StatusType != "On Hold" || ticket.Closed == nil || *ticket.Closed ||
		ticket.DepartmentID != "dep1" || ticket.At == nil {
		t.Fatalf("ticket = %+v", ticket)
	}
	if none := describeRecord(connector.CRM, "deals", rec(`{"Amount":"not a number","Closing_Date":"soon"}`)); none.Amount != nil || none.At != nil {
		t.Fatalf("garbage became values: %+v", none)
	}
}

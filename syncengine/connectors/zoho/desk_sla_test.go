package zoho

import (
	"fmt"
	"testing"

	"github.com/deskbridge/deskbridge/sandbox"
	"github.com/deskbridge/deskbridge/sandbox/desk"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// The desk's SLAs against the sandbox: every SLA listed (across pages) as
// the desk holds it, one department's, one by id, and the SLA a contract
// names, which the account's contract list also shows by name.
func TestDeskSLAs(t *testing.T) {
	sb := startSandbox(t, sandbox.Config{People: 30, Accounts: 5, Products: 3})
	ctx := ctxT(t)
	c, err := Factory(connector.Desk)(settingsFor(sb, connector.Desk, newSleeps()))
	if err != nil {
		t.Fatal(err)
	}
	d := c.(*Desk)
	sd, ok := c.(connector.SLADesk)
	if !ok {
		t.Fatal("the Desk connector is not a connector.SLADesk")
	}
	deskSide := sb.Desk("us")
	// More SLAs than one page holds: every new department has a default.
	for i := range deskSLALimit {
		if _, err := deskSide.AddDepartment(fmt.Sprintf("Region %03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	want := deskSide.SLAs()
	got, err := d.DeskSLAs(ctx, "")
	if err != nil || len(got) != len(want) || len(want) <= deskSLALimit {
		t.Fatalf("DeskSLAs: %d of %d, %v", len(got), len(want), err)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID() || g.Name != w.Str("name") || g.DepartmentID != w.Str("departmentId") || g.Active != (w["isActive"] == true) ||
			g.Default != (w["isDefault"] == true) || g.Name == "" || g.DepartmentID == "" {
			t.Fatalf("SLA %d: %+v, the desk has %v", i, g, w)
		}
	}
	support := ""
	for _, dept := range deskSide.Departments() {
		if dept.Str("name") == "Support" {
			support = dept.ID()
		}
	}
	mine, err := d.DeskSLAs(ctx, support)
	if err != nil || len(mine) != 3 {
		t.Fatalf("Support's SLAs: %+v %v", mine, err)
	}
	var gold connector.DeskSLA
	for _, s := range mine {
		if s.Name == "Gold 4h" {
			gold = s
		}
	}
	if gold.ID == "" || !gold.Active || gold.Default || gold.DepartmentID != support {
		t.Fatalf("Support's Gold SLA: %+v", mine)
	}
	if one, err := sd.DeskSLA(ctx, gold.ID); err != nil || one != gold {
		t.Fatalf("DeskSLA: %+v %v, want %+v", one, err, gold)
	}
	if _, err := sd.DeskSLA(ctx, "1234567890123456"); asError(err) == nil || asError(err).Class != connector.Permanent || asError(err).Reason != connector.ReasonNotFound {
		t.Fatalf("an unknown SLA: %v", err)
	}
	if _, err := sd.DeskSLA(ctx, ""); err == nil {
		t.Fatal("an SLA without id")
	}

	// A contract's SLA: its id on the account's contract list (with the
	// name), read by id.
	acc := deskSide.IDs("accounts")[0]
	k, err := deskSide.AddContract(desk.Fields{"contractName": "Premium care", "accountId": acc, "departmentId": support,
		"startDate": "2026-01-01", "associatedSLAId": gold.ID})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := d.Related(ctx, "accounts", acc, "contracts", 50)
	if err != nil {
		t.Fatal(err)
	}
	var row connector.Record
	for _, r := range rows {
		if r.ID == k.ID() {
			row = r
		}
	}
	if str(row.Fields["associatedSLAId"]) != gold.ID || str(row.Fields["slaName"]) != "Gold 4h" {
		t.Fatalf("the account's contract: %+v", row)
	}
	if s, err := sd.DeskSLA(ctx, str(row.Fields["associatedSLAId"])); err != nil || s.Name != "Gold 4h" {
		t.Fatalf("the contract's SLA: %+v %v", s, err)
	}
}

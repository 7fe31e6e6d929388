package zoho

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Service-level agreements. A Desk SLA belongs to one department; a
// contract names one by associatedSLAId (Contract.json), and the account's
// contract list also carries its slaName (Account.json). The public Desk
// OAS documents no SLA endpoint of its own: these calls use GET /slas and
// GET /slas/{id} as the sandbox models them (sandbox/desk/doc.go), so
// check them against the live API before relying on them.

var _ connector.SLADesk = (*Desk)(nil)

// deskSLALimit is the page size of the SLA list.
const deskSLALimit = 100

// DeskSLA reads one SLA by id.
func (d *Desk) DeskSLA(ctx context.Context, id string) (connector.DeskSLA, error) {
	if id == "" {
		return connector.DeskSLA{}, fmt.Errorf("reading a desk SLA: no id")
	}
	rec, err := d.getPath(ctx, joinPath("slas", id), "reading desk SLA "+id)
	if err != nil {
		return connector.DeskSLA{}, err
	}
	return deskSLA(rec), nil
}

// DeskSLAs lists the SLAs of a department ("" = every department), active
// and inactive, in the desk's order.
func (d *Desk) DeskSLAs(ctx context.Context, departmentID string) ([]connector.DeskSLA, error) {
	var out []connector.DeskSLA
	for from := 1; ; from += deskSLALimit {
		q := url.Values{}
		if departmentID != "" {
			q.Set("departmentId", departmentID)
		}
		recs, err := d.listPath(ctx, "/slas", q, from, deskSLALimit, "listing desk SLAs")
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out = append(out, deskSLA(r))
		}
		if len(recs) < deskSLALimit {
			return out, nil
		}
	}
}

// deskSLA converts an SLA object: "name" (the OAS schema) or "slaName"
// (its examples), and departmentId or department{id}.
func deskSLA(r connector.Record) connector.DeskSLA {
	s := connector.DeskSLA{ID: r.ID, Name: strings.TrimSpace(str(r.Fields["name"])), DepartmentID: str(r.Fields["departmentId"]),
		Active: r.Fields["isActive"] == true, Default: r.Fields["isDefault"] == true}
	if s.Name == "" {
		s.Name = strings.TrimSpace(str(r.Fields["slaName"]))
	}
	if dept, ok := r.Fields["department"].(map[string]any); ok && s.DepartmentID == "" {
		s.DepartmentID = str(dept["id"])
	}
	return s
}

package desk

import (
	"encoding/json"
	"net/http"
	"strings"
)

func (c *core) relatedRoutes(mux *http.ServeMux) {
	// Time entries.
	c.handle(mux, "GET /api/v1/tickets/{ticketId}/timeEntry", true, func(cl *call) (reply, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return fail(e)
		}
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		var out []map[string]any
		var rows []*timeEntry
		for _, id := range cl.org.timeEntriesOf[t.id] {
			if te := cl.org.timeEntries.get(id); !te.trashed {
				rows = append(rows, te)
			}
		}
		for _, te := range window(rows, p) {
			out = append(out, c.timeEntryJSON(cl.org, te))
		}
		return list(out)
	})
	c.handle(mux, "POST /api/v1/tickets/{ticketId}/timeEntry", true, func(cl *call) (reply, *APIError) {
		t, e := cl.liveTicket()
		if e != nil {
			return fail(e)
		}
		te, e := c.addTimeEntry(cl.org, cl.act, t, cl.body)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.timeEntryJSON(cl.org, te))
	})
	timeEntryOf := func(cl *call) (*timeEntry, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return nil, e
		}
		id, e := cl.pathID("timeEntryId")
		if e != nil {
			return nil, e
		}
		te := cl.org.timeEntries.get(id)
		if te == nil || te.ticketID != t.id || te.trashed {
			return nil, errNotFound()
		}
		return te, nil
	}
	c.handle(mux, "GET /api/v1/tickets/{ticketId}/timeEntry/{timeEntryId}", true, func(cl *call) (reply, *APIError) {
		te, e := timeEntryOf(cl)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.timeEntryJSON(cl.org, te))
	})
	c.handle(mux, "DELETE /api/v1/tickets/{ticketId}/timeEntry/{timeEntryId}", true, func(cl *call) (reply, *APIError) {
		te, e := timeEntryOf(cl)
		if e != nil {
			return fail(e)
		}
		te.trashed = true
		c.addTrash(cl.org, "Time Entry", te.id, te.description, 0, cl.act, 0)
		return noContent()
	})

	// Activities.
	c.handle(mux, "GET /api/v1/tickets/{ticketId}/activities", true, func(cl *call) (reply, *APIError) {
		t, e := cl.ticket()
		if e != nil {
			return fail(e)
		}
		return c.activityList(cl, t.id)
	})
	for path, kind := range activityKinds {
		c.handle(mux, "POST /api/v1/"+path, true, func(cl *call) (reply, *APIError) {
			a, e := c.addActivity(cl.org, cl.act, kind, cl.body)
			if e != nil {
				return fail(e)
			}
			return okJSON(c.activityJSON(cl.org, a))
		})
		c.handle(mux, "GET /api/v1/"+path+"/{activityId}", true, func(cl *call) (reply, *APIError) {
			id, e := cl.pathID("activityId")
			if e != nil {
				return fail(e)
			}
			a := cl.org.activities.get(id)
			if a == nil || a.kind != kind {
				return fail(errNotFound())
			}
			return okJSON(c.activityJSON(cl.org, a))
		})
		c.handle(mux, "POST /api/v1/"+path+"/moveToTrash", true, func(cl *call) (reply, *APIError) {
			ids, e := trashIDs(cl.body, strings.TrimSuffix(path, "s")+"Ids")
			if e != nil {
				return fail(e)
			}
			for _, id := range ids {
				if a := cl.org.activities.get(id); a == nil || a.kind != kind || a.trashed {
					return fail(errInvalidData(invalid("ids")))
				}
			}
			for _, id := range ids {
				a := cl.org.activities.get(id)
				a.trashed = true
				c.addTrash(cl.org, kind, a.id, a.subject, a.deptID, cl.act, 0)
				c.emit(cl.org, cl.act, event{typ: strings.TrimSuffix(kind, "s") + "_Delete", deptID: a.deptID, payload: c.activityJSON(cl.org, a)})
			}
			return noContent()
		})
	}

	// Attachments of tickets, contacts, accounts and products.
	parents := []struct{ kind, param string }{
		{modTickets, "ticketId"}, {modContacts, "contactId"}, {modAccounts, "accountId"}, {modProducts, "productId"},
	}
	for _, pt := range parents {
		base := "/api/v1/" + pt.kind + "/{" + pt.param + "}/attachments"
		parent := func(cl *call) (int64, *APIError) {
			id, e := cl.pathID(pt.param)
			if e != nil {
				return 0, e
			}
			var exists bool
			switch pt.kind {
			case modTickets:
				exists = cl.org.tickets.get(id) != nil
			case modContacts:
				exists = cl.org.contacts.get(id) != nil
			case modAccounts:
				exists = cl.org.accounts.get(id) != nil
			case modProducts:
				exists = cl.org.products.get(id) != nil
			}
			if !exists {
				return 0, errNotFound()
			}
			return id, nil
		}
		attachmentOf := func(cl *call) (*attachment, *APIError) {
			pid, e := parent(cl)
			if e != nil {
				return nil, e
			}
			id, e := cl.pathID("attachmentId")
			if e != nil {
				return nil, e
			}
			a := cl.org.attachments.get(id)
			if a == nil || a.parentID != pid || a.trashed {
				return nil, errNotFound()
			}
			return a, nil
		}
		kind := pt.kind
		c.handle(mux, "GET "+base, true, func(cl *call) (reply, *APIError) {
			pid, e := parent(cl)
			if e != nil {
				return fail(e)
			}
			p, e := parsePage(cl.q, 1, 10, 100)
			if e != nil {
				return fail(e)
			}
			var rows []*attachment
			for _, id := range cl.org.attachmentsOf[pid] {
				if a := cl.org.attachments.get(id); !a.trashed {
					rows = append(rows, a)
				}
			}
			var out []map[string]any
			for _, a := range window(rows, p) {
				out = append(out, c.attachmentJSON(cl.org, a))
			}
			return list(out)
		})
		c.handle(mux, "POST "+base, true, func(cl *call) (reply, *APIError) {
			pid, e := parent(cl)
			if e != nil {
				return fail(e)
			}
			name, data, e := readUpload(cl.r, cl.body)
			if e != nil {
				return fail(e)
			}
			a := c.addAttachment(cl.org, cl.act, kind, pid, name, data, cl.q.Get("isPublic") == "true")
			return okJSON(c.attachmentJSON(cl.org, a))
		})
		c.handle(mux, "GET "+base+"/{attachmentId}/content", true, func(cl *call) (reply, *APIError) {
			a, e := attachmentOf(cl)
			if e != nil {
				return fail(e)
			}
			return reply{status: http.StatusOK, body: rawBody(a.content)}, nil
		})
		c.handle(mux, "DELETE "+base+"/{attachmentId}", true, func(cl *call) (reply, *APIError) {
			a, e := attachmentOf(cl)
			if e != nil {
				return fail(e)
			}
			a.trashed = true
			c.addTrash(cl.org, "Attachments", a.id, a.name, 0, cl.act, 0)
			return noContent()
		})
	}

	// Contracts.
	c.handle(mux, "GET /api/v1/contracts", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 100)
		if e != nil {
			return fail(e)
		}
		var dept, acc int64
		for name, dst := range map[string]*int64{"departmentId": &dept, "accountId": &acc} {
			if v := cl.q.Get(name); v != "" {
				id, ok := parseID(v)
				if !ok {
					return fail(errBadParam(name))
				}
				*dst = id
			}
		}
		var rows []*contract
		cl.org.contracts.each(func(k *contract) bool {
			if !k.trashed && (dept == 0 || k.deptID == dept) && (acc == 0 || k.accountID == acc) {
				rows = append(rows, k)
			}
			return true
		})
		inc := includes(cl.q)
		var out []map[string]any
		for _, k := range window(rows, p) {
			out = append(out, c.contractListJSON(cl.org, k, inc))
		}
		return list(out)
	})
	contractOf := func(cl *call) (*contract, *APIError) {
		id, e := cl.pathID("contractId")
		if e != nil {
			return nil, e
		}
		k := cl.org.contracts.get(id)
		if k == nil {
			return nil, errNotFound()
		}
		return k, nil
	}
	c.handle(mux, "GET /api/v1/contracts/{contractId}", true, func(cl *call) (reply, *APIError) {
		k, e := contractOf(cl)
		if e != nil {
			return fail(e)
		}
		return okJSON(c.contractJSON(cl.org, k))
	})
	c.handle(mux, "POST /api/v1/contracts", true, func(cl *call) (reply, *APIError) {
		o := cl.org
		k := &contract{id: o.newID(), ownerID: cl.act.agentID}
		if e := c.applyContract(o, k, cl.body, true); e != nil {
			o.contractsOf.remove(k.accountID, k.id)
			return fail(e)
		}
		k.createdTime, k.modifiedTime = c.now(), c.now()
		o.contracts.put(k.id, k)
		return okJSON(c.contractJSON(o, k))
	})
	c.handle(mux, "PATCH /api/v1/contracts/{contractId}", true, func(cl *call) (reply, *APIError) {
		k, e := contractOf(cl)
		if e != nil {
			return fail(e)
		}
		if k.trashed {
			return fail(errTrashed())
		}
		updated := *k
		if e := c.applyContract(cl.org, &updated, cl.body, false); e != nil {
			cl.org.contractsOf.move(updated.accountID, k.accountID, k.id)
			return fail(e)
		}
		updated.modifiedTime = c.now()
		*k = updated
		return okJSON(c.contractJSON(cl.org, k))
	})

	// Recycle bin.
	c.handle(mux, "GET /api/v1/recycleBin", true, func(cl *call) (reply, *APIError) {
		p, e := parsePage(cl.q, 1, 10, 50)
		if e != nil {
			return fail(e)
		}
		var dept int64
		if v := cl.q.Get("departmentId"); v != "" {
			id, ok := parseID(v)
			if !ok {
				return fail(errBadParam("departmentId"))
			}
			dept = id
		}
		kind := ""
		if v := cl.q.Get("module"); v != "" {
			k, known := trashKinds[strings.ToLower(strings.ReplaceAll(v, " ", ""))]
			if !known {
				return fail(errBadParam("module"))
			}
			kind = k
		}
		inc := includes(cl.q)
		var out []map[string]any
		var rows []*trashEntry
		for i := len(cl.org.trash) - 1; i >= 0; i-- {
			e := cl.org.trash[i]
			if (dept == 0 || e.deptID == dept) && (kind == "" || e.kind == kind) {
				rows = append(rows, e)
			}
		}
		for _, e := range window(rows, p) {
			out = append(out, c.trashJSON(cl.org, e, inc))
		}
		return list(out)
	})
	c.handle(mux, "POST /api/v1/recycleBin/restore", true, func(cl *call) (reply, *APIError) {
		ids, e := trashIDs(cl.body, "ids")
		if e != nil {
			return fail(e)
		}
		children := true
		var body struct {
			Children *json.RawMessage `json:"isChildNeedToBeRestored"`
		}
		_ = json.Unmarshal(cl.body, &body)
		if body.Children != nil {
			s := strings.Trim(string(*body.Children), `"`)
			children = s != "false"
		}
		var results []map[string]any
		for _, id := range ids {
			results = append(results, massResult(id, c.restore(cl.org, cl.act, id, children)))
		}
		return okJSON(map[string]any{"results": results})
	})
	c.handle(mux, "POST /api/v1/recycleBin/delete", true, func(cl *call) (reply, *APIError) {
		ids, e := trashIDs(cl.body, "ids")
		if e != nil {
			return fail(e)
		}
		var results []map[string]any
		for _, id := range ids {
			results = append(results, massResult(id, c.purge(cl.org, id)))
		}
		return okJSON(map[string]any{"results": results})
	})
}

// rawBody is a handler answer written as bytes rather than JSON.
type rawBody []byte

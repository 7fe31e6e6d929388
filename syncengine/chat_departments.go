package syncengine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Department mapping (SPEC F3): every chat department maps to a desk
// department or to one of NO_INTEGRATION, VIEW_ONLY and CHOOSE_EACH_TIME.
// A chat department seen for the first time (when linking, or later) maps
// automatically to the enabled desk department of the same name, else to
// CHOOSE_EACH_TIME; undoing an automatic mapping gives CHOOSE_EACH_TIME.

// deskDept is a desk department, as the desk lists it.
type deskDept struct {
	id, name string
	enabled  bool
}

// departmentsOf reads both products' departments.
func (s *ChatService) departmentsOf(ctx context.Context, conn store.Connection, tool connector.ChatTool) ([]connector.Record, []deskDept, error) {
	chat, err := tool.Departments(ctx)
	if err != nil {
		return nil, nil, chatVendorError("listing SalesIQ's departments", err)
	}
	desk, err := s.deskDepartments(ctx, conn)
	if err != nil {
		return nil, nil, err
	}
	return chat, desk, nil
}

// deskDepartments lists the connection's desk departments.
func (s *ChatService) deskDepartments(ctx context.Context, conn store.Connection) ([]deskDept, error) {
	deskC, _, err := s.Connectors.For(ctx, conn)
	if err != nil {
		return nil, err
	}
	cd, ok := deskC.(connector.ChatDesk)
	if !ok {
		return nil, errors.New("the desk connector lists no departments")
	}
	recs, err := cd.ListDepartments(ctx)
	if err != nil {
		return nil, chatVendorError("listing the desk's departments", err)
	}
	out := make([]deskDept, 0, len(recs))
	for _, r := range recs {
		enabled := r.Fields["isEnabled"] != false && r.Fields["isEnabled"] != "false"
		out = append(out, deskDept{id: r.ID, name: firstNonEmptyStr(str(r.Fields["name"]), str(r.Fields["nameInCustomerPortal"])), enabled: enabled})
	}
	return out, nil
}

// deskDepartment finds an enabled desk department by id; an input error
// (field departmentId) otherwise.
func (s *ChatService) deskDepartment(ctx context.Context, conn store.Connection, id string) (deskDept, error) {
	depts, err := s.deskDepartments(ctx, conn)
	if err != nil {
		return deskDept{}, err
	}
	for _, d := range depts {
		if d.id == id {
			if !d.enabled {
				return deskDept{}, &ConnectionInputError{Field: "deskDepartmentId", Reason: "the desk department " + d.name + " is disabled"}
			}
			return d, nil
		}
	}
	return deskDept{}, &ConnectionInputError{Field: "deskDepartmentId", Reason: "no such desk department in the linked portal"}
}

// sameName finds the enabled desk department named like a chat department.
func sameName(depts []deskDept, name string) (deskDept, bool) {
	name = strings.TrimSpace(name)
	for _, d := range depts {
		if d.enabled && strings.EqualFold(strings.TrimSpace(d.name), name) {
			return d, true
		}
	}
	return deskDept{}, false
}

func chatDepartmentName(r connector.Record) string {
	return firstNonEmptyStr(str(r.Fields["name"]), str(r.Fields["display_name"]), r.ID)
}

// mapNewDepartments adds the mappings of chat departments not seen before
// (automatic same-name mappings, else CHOOSE_EACH_TIME) and follows renames
// of known ones. It returns how many it added.
func mapNewDepartments(ctx context.Context, tx *sqlx.Tx, link store.ChatLink, chat []connector.Record, desk []deskDept) (int, error) {
	added := 0
	for _, cd := range chat {
		if cd.ID == "" {
			continue
		}
		name := chatDepartmentName(cd)
		m := store.ChatDepartmentMapping{OrgID: link.OrgID, LinkID: link.ID, ChatDepartmentID: cd.ID, ChatDepartmentName: name,
			Mode: store.ChatModeChooseEachTime}
		if d, ok := sameName(desk, name); ok {
			m.Mode, m.DeskDepartmentID, m.DeskDepartmentName, m.Automatic = store.ChatModeDeskDepartment, &d.id, &d.name, true
		}
		ok, err := store.InsertChatDepartmentMapping(ctx, tx, m)
		if err != nil {
			return added, err
		}
		if ok {
			added++
			continue
		}
		if err := store.RenameChatDepartment(ctx, tx, link.OrgID, link.ID, cd.ID, name); err != nil {
			return added, err
		}
	}
	return added, nil
}

// remapDeskDepartments maps again, by name, the chat departments that
// pointed at another desk portal's departments; the standard settings
// (NO_INTEGRATION, VIEW_ONLY, CHOOSE_EACH_TIME) stay.
func remapDeskDepartments(ctx context.Context, tx *sqlx.Tx, link store.ChatLink, desk []deskDept) error {
	ms, err := store.ChatDepartmentMappings(ctx, tx, link.OrgID, link.ID)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Mode != store.ChatModeDeskDepartment {
			continue
		}
		if d, ok := sameName(desk, m.ChatDepartmentName); ok {
			m.DeskDepartmentID, m.DeskDepartmentName, m.Automatic = &d.id, &d.name, true
		} else {
			m.Mode, m.DeskDepartmentID, m.DeskDepartmentName, m.Automatic = store.ChatModeChooseEachTime, nil, nil, false
		}
		if _, err := store.SetChatDepartmentMapping(ctx, tx, m); err != nil {
			return err
		}
	}
	return nil
}

// refreshDepartments maps the chat departments created since the last look.
func (s *ChatService) refreshDepartments(ctx context.Context, link store.ChatLink) (int, error) {
	conn, err := store.ConnectionByID(ctx, s.DB, link.OrgID, link.ConnectionID)
	if err != nil {
		return 0, err
	}
	tool, err := s.tool(ctx, link)
	if err != nil {
		return 0, err
	}
	chat, desk, err := s.departmentsOf(ctx, conn, tool)
	if err != nil {
		return 0, err
	}
	var added int
	err = store.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		added, err = mapNewDepartments(ctx, tx, link, chat, desk)
		return err
	})
	if added > 0 {
		s.log().InfoContext(ctx, "new chat departments mapped", "org_id", link.OrgID, "chat_link", link.ID, "added", added)
	}
	return added, err
}

// DepartmentMappings lists the link's mappings; refresh reads SalesIQ's
// departments first, so new ones are mapped at once.
func (s *ChatService) DepartmentMappings(ctx context.Context, v auth.Viewer, refresh bool) ([]store.ChatDepartmentMapping, error) {
	if err := mayManageChat(v); err != nil {
		return nil, err
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if err != nil {
		return nil, err
	}
	if refresh {
		if link.Status == store.ChatLinkDisabled {
			return nil, precondition("the SalesIQ link is disabled; enable it first")
		}
		if _, err := s.refreshDepartments(ctx, link); err != nil {
			return nil, err
		}
	}
	return store.ChatDepartmentMappings(ctx, s.DB, v.OrgID, link.ID)
}

// MappingOf is the mapping of one chat department of the org's link.
func (s *ChatService) MappingOf(ctx context.Context, v auth.Viewer, chatDepartmentID string) (store.ChatDepartmentMapping, error) {
	_, m, err := s.adminMapping(ctx, v, chatDepartmentID, false)
	return m, err
}

// adminMapping opens an admin's work on one chat department: the org's live
// link and the department's mapping. With refresh, a department not known
// yet (created in SalesIQ since the last read) has SalesIQ's departments
// read again first, unless the link is disabled.
func (s *ChatService) adminMapping(ctx context.Context, v auth.Viewer, chatDepartmentID string, refresh bool) (store.ChatLink, store.ChatDepartmentMapping, error) {
	if err := mayManageChat(v); err != nil {
		return store.ChatLink{}, store.ChatDepartmentMapping{}, err
	}
	link, err := store.LiveChatLink(ctx, s.DB, v.OrgID)
	if err != nil {
		return store.ChatLink{}, store.ChatDepartmentMapping{}, err
	}
	m, err := store.ChatDepartmentMappingOf(ctx, s.DB, v.OrgID, link.ID, chatDepartmentID)
	if refresh && errors.Is(err, store.ErrNotFound) && link.Status != store.ChatLinkDisabled {
		if _, rerr := s.refreshDepartments(ctx, link); rerr != nil {
			return store.ChatLink{}, store.ChatDepartmentMapping{}, rerr
		}
		m, err = store.ChatDepartmentMappingOf(ctx, s.DB, v.OrgID, link.ID, chatDepartmentID)
	}
	if err != nil {
		return store.ChatLink{}, store.ChatDepartmentMapping{}, fmt.Errorf("chat department %s: %w", chatDepartmentID, err)
	}
	return link, m, nil
}

// SetDepartmentMapping maps a chat department to a desk department of the
// linked portal (mode DESK_DEPARTMENT) or to a standard setting. A mapping
// set by hand is never automatic.
func (s *ChatService) SetDepartmentMapping(ctx context.Context, v auth.Viewer, chatDepartmentID, mode, deskDepartmentID string) (store.ChatDepartmentMapping, error) {
	link, m, err := s.adminMapping(ctx, v, chatDepartmentID, true)
	if err != nil {
		return store.ChatDepartmentMapping{}, err
	}
	m.Automatic, m.UpdatedBy = false, &v.UserID
	switch mode {
	case store.ChatModeDeskDepartment:
		if deskDepartmentID == "" {
			return store.ChatDepartmentMapping{}, &ConnectionInputError{Field: "deskDepartmentId", Reason: "a DESK_DEPARTMENT mapping needs the desk department"}
		}
		conn, err := store.ConnectionByID(ctx, s.DB, v.OrgID, link.ConnectionID)
		if err != nil {
			return store.ChatDepartmentMapping{}, err
		}
		d, err := s.deskDepartment(ctx, conn, deskDepartmentID)
		if err != nil {
			return store.ChatDepartmentMapping{}, err
		}
		m.Mode, m.DeskDepartmentID, m.DeskDepartmentName = mode, &d.id, &d.name
	case store.ChatModeNoIntegration, store.ChatModeViewOnly, store.ChatModeChooseEachTime:
		if deskDepartmentID != "" {
			return store.ChatDepartmentMapping{}, &ConnectionInputError{Field: "deskDepartmentId", Reason: "only a DESK_DEPARTMENT mapping names a desk department"}
		}
		m.Mode, m.DeskDepartmentID, m.DeskDepartmentName = mode, nil, nil
	default:
		return store.ChatDepartmentMapping{}, &ConnectionInputError{Field: "mode", Reason: "unknown mode " + mode}
	}
	return store.SetChatDepartmentMapping(ctx, s.DB, m)
}

// UndoAutomaticMapping undoes a same-name mapping the gateway made: the
// chat department becomes CHOOSE_EACH_TIME (F3).
func (s *ChatService) UndoAutomaticMapping(ctx context.Context, v auth.Viewer, chatDepartmentID string) (store.ChatDepartmentMapping, error) {
	_, m, err := s.adminMapping(ctx, v, chatDepartmentID, false)
	if err != nil {
		return store.ChatDepartmentMapping{}, err
	}
	if !m.Automatic {
		return store.ChatDepartmentMapping{}, precondition("the chat department %s has no automatic mapping to undo (it is %s, set by hand)", m.ChatDepartmentName, m.Mode)
	}
	m.Mode, m.DeskDepartmentID, m.DeskDepartmentName, m.Automatic, m.UpdatedBy = store.ChatModeChooseEachTime, nil, nil, false, &v.UserID
	return store.SetChatDepartmentMapping(ctx, s.DB, m)
}

// mappingOf is the mapping of a conversation's department. A department
// not seen yet is mapped first (F3: departments created later); a chat
// without a department, or one SalesIQ no longer lists, is CHOOSE_EACH_TIME.
func (s *ChatService) mappingOf(ctx context.Context, link store.ChatLink, departmentID string) (store.ChatDepartmentMapping, error) {
	none := store.ChatDepartmentMapping{OrgID: link.OrgID, LinkID: link.ID, ChatDepartmentID: departmentID, ChatDepartmentName: departmentID,
		Mode: store.ChatModeChooseEachTime}
	if departmentID == "" {
		return none, nil
	}
	m, err := store.ChatDepartmentMappingOf(ctx, s.DB, link.OrgID, link.ID, departmentID)
	if errors.Is(err, store.ErrNotFound) {
		if _, rerr := s.refreshDepartments(ctx, link); rerr != nil {
			return store.ChatDepartmentMapping{}, rerr
		}
		m, err = store.ChatDepartmentMappingOf(ctx, s.DB, link.OrgID, link.ID, departmentID)
		if errors.Is(err, store.ErrNotFound) {
			return none, nil
		}
	}
	return m, err
}

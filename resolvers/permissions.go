package resolvers

import (
	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
)

func profileModel(rp auth.RoleProfile) *model.PermissionProfile {
	p := rp.Profile
	level := func(a auth.Area) model.AccessLevel {
		if l := p.Access[a]; l != "" {
			return model.AccessLevel(l)
		}
		return model.AccessLevelNone
	}
	return &model.PermissionProfile{
		Role: roleModel(rp.Role), CrmPanels: p.CRMPanels, PanelRecord: model.CrmPanelRecord(p.PanelRecord),
		ContactInfo: level(auth.AreaContactInfo), Deals: level(auth.AreaDeals), Notes: level(auth.AreaNotes),
		Calls: level(auth.AreaCalls), Events: level(auth.AreaEvents), Tasks: level(auth.AreaTasks),
		CrmTickets: p.CRMTickets, TicketActions: p.TicketActions, Customized: rp.Customized, UpdatedAt: rp.UpdatedAt,
	}
}

func profileFromInput(in model.PermissionProfileInput) auth.Profile {
	return auth.Profile{CRMPanels: in.CrmPanels, PanelRecord: string(in.PanelRecord), CRMTickets: in.CrmTickets,
		TicketActions: in.TicketActions, Access: map[auth.Area]auth.Access{
			auth.AreaContactInfo: auth.Access(in.ContactInfo), auth.AreaDeals: auth.Access(in.Deals),
			auth.AreaNotes: auth.Access(in.Notes), auth.AreaCalls: auth.Access(in.Calls),
			auth.AreaEvents: auth.Access(in.Events), auth.AreaTasks: auth.Access(in.Tasks),
		}}
}

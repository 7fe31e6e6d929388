package zoho

import (
	"fmt"

	"github.com/deskbridge/deskbridge/syncengine/connector"
)

// Register adds the factories of CRM, Bigin, Desk and SalesIQ to r. The
// composition root calls it once; each factory takes a Settings or a
// *Settings.
func Register(r *connector.Registry) {
	r.Register(connector.CRM, Factory(connector.CRM))
	r.Register(connector.Bigin, Factory(connector.Bigin))
	r.Register(connector.Desk, Factory(connector.Desk))
	r.Register(connector.SalesIQ, Factory(connector.SalesIQ))
}

// Factory returns the factory of one system; the settings' System is set
// to it.
func Factory(sys connector.System) connector.Factory {
	return func(settings any) (connector.Connector, error) {
		var s Settings
		switch v := settings.(type) {
		case Settings:
			s = v
		case *Settings:
			if v == nil {
				return nil, fmt.Errorf("building %s connector: nil settings", sys)
			}
			s = *v
		default:
			return nil, fmt.Errorf("building %s connector: settings are %T, want zoho.Settings", sys, settings)
		}
		s.System = sys
		switch sys {
		case connector.CRM, connector.Bigin:
			return NewCRM(s)
		case connector.Desk:
			return NewDesk(s)
		case connector.SalesIQ:
			return NewSalesIQ(s)
		}
		return nil, fmt.Errorf("building connector: %s is not a Zoho system", sys)
	}
}

// Compile-time checks of the capabilities each connector offers.
var (
	_ connector.Connector     = (*CRM)(nil)
	_ connector.Watcher       = (*CRM)(nil)
	_ connector.RelatedLister = (*CRM)(nil)
	_ connector.OrgLister     = (*CRM)(nil)
	_ connector.Identifier    = (*CRM)(nil)
	_ connector.Connector     = (*Desk)(nil)
	_ connector.Watcher       = (*Desk)(nil)
	_ connector.RelatedLister = (*Desk)(nil)
	_ connector.OrgLister     = (*Desk)(nil)
	_ connector.TicketDesk    = (*Desk)(nil)
	_ connector.Connector     = (*SalesIQ)(nil)
	_ connector.Watcher       = (*SalesIQ)(nil)
	_ connector.OrgLister     = (*SalesIQ)(nil)
)

package resolvers

import (
	"context"
	"errors"
	"strings"

	"github.com/deskbridge/deskbridge/auth"
	"github.com/deskbridge/deskbridge/graph/model"
	"github.com/deskbridge/deskbridge/store"
	"github.com/deskbridge/deskbridge/syncengine"
	"github.com/deskbridge/deskbridge/syncengine/connector"
)

func connectionModel(c store.Connection) *model.Connection {
	out := &model.Connection{
		ID: globalID("Connection", c.ID), CrmSystem: model.CrmSystem(strings.ToUpper(c.CRMSystem)),
		Status: model.ConnectionStatus(c.Status), AuthMethod: model.ConnectionAuthMethod(c.AuthMethod),
		CrmDataCenter: model.DataCenter(strings.ToUpper(c.CRMDC)), DeskDataCenter: model.DataCenter(strings.ToUpper(c.DeskDC)),
		DeskOrgID: c.DeskOrgID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if c.CRMOrgID != nil {
		out.CrmOrg = &model.CrmOrg{ID: *c.CRMOrgID}
		if c.CRMOrgName != nil {
			out.CrmOrg.Name = *c.CRMOrgName
		}
	}
	out.DeskPortal, out.Language, out.TimeZone, out.ServiceKeyAdminEmail = c.DeskPortal, c.Language, c.TimeZone, c.ServiceKeyEmail
	if c.AuthMethod == syncengine.ConnectionAuthOtherUser && c.ApproverEmail != nil && c.RequestedAt != nil {
		out.AccessRequest = &model.CrmAccessRequest{CrmAdminEmail: *c.ApproverEmail, RequestedAt: *c.RequestedAt,
			SentCount: c.RequestSentCount, ExpiresAt: c.RequestExpiresAt, Approved: c.Status != store.ConnectionPendingApproval}
	}
	return out
}

func (r *Resolver) accessRequestModel(req syncengine.AccessRequest) *model.CrmAccessRequestPayload {
	return &model.CrmAccessRequestPayload{Connection: connectionModel(req.Connection), ApprovalCode: req.Code,
		ApprovalURL: r.ApprovalURL(req.Code), ExpiresAt: req.ExpiresAt}
}

func serviceKeyOf(in *model.ServiceKeyInput) syncengine.ServiceKey {
	if in == nil {
		return syncengine.ServiceKey{}
	}
	return syncengine.ServiceKey{AdminEmail: in.AdminEmail, Key: in.Key}
}

// nonEmpty is nil for "", for optional output fields.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref is "" for an absent optional argument.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func deskPortalModel(p connector.Org) *model.DeskPortal {
	return &model.DeskPortal{ID: p.ID, Name: p.Name, TimeZone: nonEmpty(p.TimeZone)}
}

func crmOrgModels(orgs []connector.Org) []*model.CrmOrg {
	return mapAll(orgs, func(o connector.Org) *model.CrmOrg { return &model.CrmOrg{ID: o.ID, Name: o.Name} })
}

// crmSystemOf maps the GraphQL enum to the connector's system.
func crmSystemOf(s model.CrmSystem) connector.System {
	return connector.System(strings.ToLower(string(s)))
}

// dataCenterOf maps the GraphQL enum to the data-center key ("us").
func dataCenterOf(dc model.DataCenter) string { return strings.ToLower(string(dc)) }

func credentialsOf(in *model.ZohoCredentialsInput) syncengine.ConnectionCredentials {
	var c syncengine.ConnectionCredentials
	if in == nil {
		return c
	}
	if in.RefreshToken != nil {
		c.RefreshToken = *in.RefreshToken
	}
	if in.AuthorizationCode != nil {
		c.AuthorizationCode = *in.AuthorizationCode
	}
	if in.RedirectURI != nil {
		c.RedirectURI = *in.RedirectURI
	}
	return c
}

// connectionInput turns the service's input errors into InputErrors whose
// argument is the GraphQL path: prefix + field, or rename[field] when the
// field has another name in this operation.
func connectionInput(err error, prefix string, rename map[string]string) error {
	var ie *syncengine.ConnectionInputError
	if !errors.As(err, &ie) {
		return err
	}
	arg, ok := rename[ie.Field]
	if !ok {
		arg = prefix + ie.Field
	}
	return &InputError{Argument: arg, Reason: ie.Reason}
}

// setConnectionStatus is the shared body of the status mutations.
func (r *Resolver) setConnectionStatus(ctx context.Context, id string, action syncengine.ConnectionAction) (*model.Connection, error) {
	v, err := auth.Require(ctx, auth.PermManageConnections)
	if err != nil {
		return nil, err
	}
	rowID, err := rowIDOf("id", "Connection", id)
	if err != nil {
		return nil, err
	}
	c, err := r.ConnectionService.SetStatus(ctx, v, rowID, action)
	if err != nil {
		return nil, err
	}
	return connectionModel(c), nil
}

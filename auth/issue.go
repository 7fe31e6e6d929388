package auth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/deskbridge/deskbridge/store"
)

// Event types written by this package. They match the GraphQL EventType
// enum values, so the stream needs no translation table.
const (
	EventTokenCreated = "TOKEN_CREATED"
	EventTokenRevoked = "TOKEN_REVOKED"
)

// IssueRequest describes a token to create for a user of an org.
type IssueRequest struct {
	OrgID     int64
	UserName  string
	UserEmail *string
	Name      string
	Role      Role
	ExpiresAt *time.Time
	// ActorTokenID is the token that asked for this one (0 from the CLI),
	// recorded in the event for audit.
	ActorTokenID int64
}

// Issued is a new token and its secret, which exists nowhere else.
type Issued struct {
	Token  store.APIToken
	User   store.User
	Secret string
}

// tokenEventPayload is the JSON of TOKEN_CREATED / TOKEN_REVOKED events. It
// never contains the secret or its hash.
type tokenEventPayload struct {
	TokenID      int64  `json:"tokenId"`
	Name         string `json:"name"`
	Role         Role   `json:"role"`
	UserID       int64  `json:"userId"`
	ActorTokenID int64  `json:"actorTokenId,omitempty"`
}

// IssueToken creates the user if new, then the token and its TOKEN_CREATED
// event, all in one transaction.
func IssueToken(ctx context.Context, db *sqlx.DB, req IssueRequest) (Issued, error) {
	secret, hash, prefix, err := NewSecret()
	if err != nil {
		return Issued{}, err
	}
	var out Issued
	err = store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		user, err := store.EnsureUser(ctx, tx, req.OrgID, req.UserName, req.UserEmail)
		if err != nil {
			return err
		}
		tok, err := store.InsertAPIToken(ctx, tx, store.NewAPIToken{
			OrgID: req.OrgID, UserID: user.ID, Name: req.Name, Role: string(req.Role),
			SecretHash: hash, Prefix: prefix, ExpiresAt: req.ExpiresAt,
		})
		if err != nil {
			return err
		}
		_, err = store.InsertEvent(ctx, tx, store.NewEvent{
			OrgID: req.OrgID, Type: EventTokenCreated, Permission: string(PermManageTokens),
			SubjectID: tokenSubject(tok.ID),
			Payload:   tokenEventPayload{TokenID: tok.ID, Name: tok.Name, Role: req.Role, UserID: user.ID, ActorTokenID: req.ActorTokenID},
		})
		out = Issued{Token: tok, User: user, Secret: secret}
		return err
	})
	if err != nil {
		return Issued{}, fmt.Errorf("issuing token: %w", err)
	}
	return out, nil
}

// RevokeToken revokes a token of the org and records TOKEN_REVOKED, once:
// revoking an already revoked token changes nothing and emits nothing.
func RevokeToken(ctx context.Context, db *sqlx.DB, orgID, tokenID, actorTokenID int64) (store.APIToken, error) {
	var out store.APIToken
	err := store.InTx(ctx, db, func(tx *sqlx.Tx) error {
		tok, changed, err := store.RevokeAPIToken(ctx, tx, orgID, tokenID)
		if err != nil || !changed {
			out = tok
			return err
		}
		out = tok
		_, err = store.InsertEvent(ctx, tx, store.NewEvent{
			OrgID: orgID, Type: EventTokenRevoked, Permission: string(PermManageTokens),
			SubjectID: tokenSubject(tok.ID),
			Payload:   tokenEventPayload{TokenID: tok.ID, Name: tok.Name, Role: Role(tok.Role), UserID: tok.UserID, ActorTokenID: actorTokenID},
		})
		return err
	})
	if err != nil {
		return store.APIToken{}, fmt.Errorf("revoking token: %w", err)
	}
	return out, nil
}

// tokenSubject is the event subject of a token: its numeric id, which the
// GraphQL layer turns into a global id.
func tokenSubject(id int64) *string {
	s := "ApiToken:" + strconv.FormatInt(id, 10)
	return &s
}

package wstransport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Message types of both protocols. Where the names coincide the meaning does
// too, except "error": in both it carries errors for one operation id.
const (
	msgConnectionInit      = "connection_init"
	msgConnectionAck       = "connection_ack"
	msgPing                = "ping"
	msgPong                = "pong"
	msgSubscribe           = "subscribe"
	msgNext                = "next"
	msgError               = "error"
	msgComplete            = "complete"
	msgStart               = "start"
	msgStop                = "stop"
	msgData                = "data"
	msgKeepAlive           = "ka"
	msgConnectionError     = "connection_error"
	msgConnectionTerminate = "connection_terminate"
)

// protocol is the negotiated subprotocol of one connection.
type protocol int

const (
	protocolNone protocol = iota
	protocolTransportWS
	protocolLegacy
)

func protocolFor(subprotocol string) protocol {
	switch subprotocol {
	case SubprotocolGraphQLTransportWS:
		return protocolTransportWS
	case SubprotocolGraphQLWS:
		return protocolLegacy
	default:
		return protocolNone
	}
}

// clientMessage is a decoded client→server envelope. Fields are checked for
// presence and JSON type by hand: encoding/json into a struct would accept
// "Type" for "type", a null type, or a number id, and graphql-ws requires a
// 4400 for all of those.
type clientMessage struct {
	Type    string
	ID      string
	HasID   bool
	Payload json.RawMessage // nil when absent or null
}

// parseClientMessage decodes the envelope. The error text becomes the close
// reason, so it names the problem without echoing client data.
func parseClientMessage(data []byte) (clientMessage, error) {
	if !json.Valid(data) {
		return clientMessage{}, errors.New("invalid JSON")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return clientMessage{}, errors.New("message must be a JSON object")
	}

	var m clientMessage
	rawType, ok := fields["type"]
	if !ok || isNull(rawType) {
		return clientMessage{}, errors.New("missing 'type' property")
	}
	if err := json.Unmarshal(rawType, &m.Type); err != nil {
		return clientMessage{}, errors.New("'type' property must be a string")
	}
	if rawID, ok := fields["id"]; ok && !isNull(rawID) {
		if err := json.Unmarshal(rawID, &m.ID); err != nil {
			return clientMessage{}, errors.New("'id' property must be a string")
		}
		m.HasID = true
	}
	if p, ok := fields["payload"]; ok && !isNull(p) {
		m.Payload = p
	}
	return m, nil
}

// requireID enforces graphql-ws's "id must be a non-empty string" for the
// messages that address an operation.
func (m clientMessage) requireID() error {
	if !m.HasID || m.ID == "" {
		return fmt.Errorf("'%s' message requires a non-empty string 'id'", m.Type)
	}
	return nil
}

// requireObjectPayload enforces "payload is an object or absent" for
// connection_init, ping and pong.
func (m clientMessage) requireObjectPayload() error {
	if m.Payload != nil && !isObject(m.Payload) {
		return fmt.Errorf("'%s' payload must be an object", m.Type)
	}
	return nil
}

// parseOperationPayload turns a subscribe/start payload into gqlgen's
// RawParams. Numbers are decoded as json.Number, like gqlgen's HTTP
// transports, so Int and Float coercion behave identically across transports.
func parseOperationPayload(m clientMessage) (*graphql.RawParams, error) {
	if m.Payload == nil || !isObject(m.Payload) {
		return nil, fmt.Errorf("'%s' payload must be an object", m.Type)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m.Payload, &fields); err != nil {
		return nil, fmt.Errorf("decode '%s' payload: %w", m.Type, err)
	}

	params := &graphql.RawParams{}
	rawQuery, ok := fields["query"]
	if !ok || json.Unmarshal(rawQuery, &params.Query) != nil || isNull(rawQuery) {
		return nil, errors.New("'query' must be a string")
	}
	if raw, ok := fields["operationName"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &params.OperationName) != nil {
			return nil, errors.New("'operationName' must be a string or null")
		}
	}
	if raw, ok := fields["variables"]; ok && !isNull(raw) {
		vars, err := decodeObject(raw)
		if err != nil {
			return nil, errors.New("'variables' must be an object or null")
		}
		params.Variables = vars
	}
	if raw, ok := fields["extensions"]; ok && !isNull(raw) {
		ext, err := decodeObject(raw)
		if err != nil {
			return nil, errors.New("'extensions' must be an object or null")
		}
		params.Extensions = ext
	}
	return params, nil
}

func decodeObject(raw json.RawMessage) (map[string]any, error) {
	if !isObject(raw) {
		return nil, errors.New("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// serverMessage is the server→client envelope. Payload is omitted when nil,
// which is how connection_ack goes out: deskbridge never puts anything in it,
// so an auth token from connection_init can never be reflected back.
type serverMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func encodeMessage(typ, id string, payload json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(serverMessage{Type: typ, ID: id, Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("marshal %s message: %w", typ, err)
	}
	return b, nil
}

// envelope is the start of the messages of type typ for operation id, up to
// and including `"payload":`, byte for byte what encodeMessage would write:
// an operation builds it once and appends each result to it.
func envelope(typ, id string) []byte {
	b := mustEncode(typ, id, json.RawMessage("0"))
	return b[:len(b)-len("0}")]
}

// appendResult returns the message for one result: envelope, the response,
// and the closing brace.
func appendResult(envelope []byte, resp *graphql.Response) ([]byte, error) {
	payload, err := appendPayload(nil, resp)
	if err != nil {
		return nil, err
	}
	return appendMessage(envelope, payload), nil
}

// appendMessage returns envelope, payload and the closing brace in a new
// slice.
func appendMessage(envelope, payload []byte) []byte {
	b := make([]byte, 0, len(envelope)+len(payload)+1)
	b = append(b, envelope...)
	b = append(b, payload...)
	return append(b, '}')
}

// appendPayload appends the JSON of a response to dst. The common result
// (data, nothing else) is assembled from bytes instead of marshalled:
// encoding/json would validate and copy the data twice (once for the
// response, once for the message around it). The data is still validated
// once, so invalid raw JSON from a resolver is an error here as it is for
// json.Marshal.
func appendPayload(dst []byte, resp *graphql.Response) ([]byte, error) {
	if resp.Data != nil && len(resp.Errors) == 0 && resp.Label == "" && resp.Path == nil && resp.HasNext == nil &&
		len(resp.Extensions) == 0 {
		if !json.Valid(resp.Data) {
			return nil, errors.New("marshal graphql response: data is not valid JSON")
		}
		dst = append(dst, `{"data":`...)
		dst = append(dst, resp.Data...)
		return append(dst, '}'), nil
	}
	payload, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("marshal graphql response: %w", err)
	}
	return append(dst, payload...), nil
}

// mustEncode is for messages built only from constants and values this
// package produced, where a marshal error is a programming error.
func mustEncode(typ, id string, payload json.RawMessage) []byte {
	b, err := encodeMessage(typ, id, payload)
	if err != nil {
		panic(err)
	}
	return b
}

func encodeErrors(errs gqlerror.List) json.RawMessage {
	if errs == nil {
		errs = gqlerror.List{}
	}
	b, err := json.Marshal(errs)
	if err != nil {
		// gqlerror.Error.Extensions is map[string]any and may hold anything a
		// presenter put there; fall back to the bare messages.
		plain := make([]map[string]string, 0, len(errs))
		for _, e := range errs {
			plain = append(plain, map[string]string{"message": e.Message})
		}
		b, _ = json.Marshal(plain)
	}
	return b
}

func errorPayload(message string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"message": message})
	return b
}

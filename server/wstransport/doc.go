// Package wstransport is deskbridge's GraphQL-over-WebSocket transport for
// gqlgen, built on gorilla/websocket.
//
// It exists because gqlgen's stock transport.Websocket closes connections with
// codes that make clients misbehave: an InitFunc error closes with 1000, which
// graphql-ws clients retry forever while they have subscriptions; init timeout,
// a second connection_init and subscribe-before-ack close with 1002 instead of
// 4408, 4429 and 4401; unknown messages close with 1000 instead of 4400; and a
// duplicate subscription id is accepted instead of closing with 4409.
//
// The package has two layers:
//
//   - Gorilla, an implementation of gqlgen's transport.WebsocketImplementation
//     on gorilla/websocket (origin allow-list, subprotocol negotiation,
//     handshake timeout, no compression). It also plugs into the stock
//     transport.Websocket.
//   - Transport, a graphql.Transport that speaks both GraphQL WebSocket
//     subprotocols itself: graphql-transport-ws (npm graphql-ws,
//     https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md) and the
//     legacy graphql-ws (npm subscriptions-transport-ws).
//
// # Close codes
//
// For graphql-transport-ws the codes are the ones PROTOCOL.md defines: 4400 for
// any malformed or unexpected message, 4401 for subscribe before
// connection_ack, 4403 when InitFunc rejects the connection, 4406 when the
// client offered no supported subprotocol, 4408 when connection_init does not
// arrive in time, 4409 for a duplicate operation id, 4429 for a second
// connection_init and 4500 when handling a message panicked. On top of that the transport closes with 1001 when the
// server shuts down or a peer stops answering pings (both make graphql-ws
// clients reconnect), 1009 when a message exceeds the read limit and 1013 when
// a client does not read fast enough to keep its send queue bounded. The legacy
// protocol uses the same codes and sends a connection_error message before
// closing, because subscriptions-transport-ws clients only surface that
// message and ignore close codes.
//
// # Subprotocol negotiation
//
// A client that offers neither subprotocol still completes the WebSocket
// handshake and is then closed with 4406 "Subprotocol not acceptable". This is
// what the graphql-ws reference server does, and unlike an HTTP 400 it gives
// browser clients, which cannot read handshake responses, a code to report.
package wstransport

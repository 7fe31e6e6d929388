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
// connection_init and 4500 when handling a message panicked. On top of that
// the transport closes with 1001 when the server shuts down or a peer stops
// answering pings (both make graphql-ws clients reconnect), 1009 when a
// message exceeds the read limit and 1013 when a client does not read fast
// enough (see Slow consumers). The legacy protocol uses the same codes and
// sends a connection_error message before closing for client mistakes,
// because subscriptions-transport-ws clients only surface that message and
// ignore close codes.
//
// # Slow consumers
//
// Each connection has one writer at a time (whoever queues a message while
// nobody writes drains the queue; an idle connection has no writer
// goroutine) and a send queue bounded by Config.SendQueue messages and
// Config.SendQueueBytes bytes (256 and 1 MiB), which grows on demand.
// When the queue is full an operation waits for room before producing its
// next result. That wait is backpressure, not a failure: a client that reads
// slower than results arrive, such as one replaying a long events(after:)
// backlog, gets every message at its own pace. It never reaches other
// clients, because each connection has its own queue and writer, and the
// event bus never waits for a subscriber: a subscriber that does not take
// its events catches up from the database later.
//
// A write blocks only once the client stopped reading and the TCP buffers
// are full. When one write (a message or a ping) has blocked for
// Config.WriteTimeout (10s), the client is cut off: its operations are
// cancelled, queued messages are discarded, one Warn line is logged, and
// OnClose reports 1013. If the stalled write completes within a further 2s,
// the client then receives the close frame 1013 "Try Again Later" with
// SlowConsumerReason, "too slow: reconnect and resubscribe with after set to
// the id of the last event received". Otherwise the TCP connection is reset
// (a write that timed out may have left half a frame, so no close frame can
// follow it) and the client sees 1006. graphql-ws retries both codes;
// subscriptions-transport-ws reconnects on any close when its reconnect
// option is set. Nothing is lost either way: messages arrive in order and
// without gaps up to the cut, so events(after: <last id received>) resumes
// exactly. Both npm clients resubscribe with the payload they first sent,
// so the client application has to update variables.after as events arrive
// (or drop ids it has seen). A connection's memory is thus bounded by its
// send queue, and a stuck client holds its goroutines for at most
// WriteTimeout plus 2s.
//
// # Memory per connection
//
// Many subscribers mostly wait, so an open connection is kept small: Do
// returns once the socket is upgraded (net/http then frees what it held for
// the request), the reader is the connection's only goroutine while it
// waits, the read buffer is 512 bytes, write buffers come from a pool, and
// the send queue is allocated as messages arrive.
//
// # Shared results
//
// An event source can execute identical subscriptions once for all of them
// (see Shared): one detached execution renders each result, which is
// offered to every identical operation, whose own executions are held and
// give up their goroutines meanwhile. The source decides what is identical
// and when an operation must go back to executing itself; the transport
// only guarantees that an offer never waits and never cuts a client off.
//
// # Subprotocol negotiation
//
// A client that offers neither subprotocol still completes the WebSocket
// handshake and is then closed with 4406 "Subprotocol not acceptable". This is
// what the graphql-ws reference server does, and unlike an HTTP 400 it gives
// browser clients, which cannot read handshake responses, a code to report.
package wstransport

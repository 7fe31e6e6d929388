package eventbus

import "context"

// Frame is one rendered result of a shared subscription, opaque to the
// bus: the transport that rendered it offers it to its other operations.
type Frame any

// Sharer is a subscription operation's side of result sharing (see
// share.go), provided by the transport that runs the operation (the
// server's WebSocket transport) through WithSharer. The bus only decides
// who shares what; rendering and queueing are the transport's.
type Sharer interface {
	// Key identifies what the operation computes from a resolver value
	// (transport, document, operation name, variables, extensions).
	Key() string
	// Offer queues a frame as the operation's next result without
	// waiting; ok is false when there is no room, gone when the operation
	// has ended.
	Offer(f Frame) (ok, gone bool)
	// Hold and Release switch the operation's own execution off and on
	// while its results come through Offer.
	Hold()
	Release()
	// Render executes the operation once more, detached, delivering each
	// result as a Frame; done is called when it ends; stop cancels it.
	// ok is false when the transport is shutting down.
	Render(decorate func(context.Context) context.Context, deliver func(Frame), done func()) (stop func(), ok bool)
}

type sharerKey struct{}

// WithSharer marks ctx (an operation's) as able to share results.
func WithSharer(ctx context.Context, s Sharer) context.Context {
	return context.WithValue(ctx, sharerKey{}, s)
}

// SharerFrom returns the Sharer of the operation ctx belongs to.
func SharerFrom(ctx context.Context) (Sharer, bool) {
	s, ok := ctx.Value(sharerKey{}).(Sharer)
	return s, ok && s != nil
}

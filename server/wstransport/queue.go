package wstransport

// msgQueue is a FIFO of messages that grows on demand and gives its memory
// back when it empties after a burst, so that thousands of mostly idle
// connections do not each hold a full-size send buffer. Callers lock.
type msgQueue struct {
	items [][]byte
	head  int // items[:head] have been popped
}

// keepSlots is the capacity an empty queue keeps; a bigger backing array
// (left by a burst) is released when the queue empties.
const keepSlots = 4

func (q *msgQueue) len() int { return len(q.items) - q.head }

func (q *msgQueue) push(b []byte) {
	if len(q.items) == cap(q.items) && q.head > 0 {
		// Reuse the popped front before growing: a queue that never quite
		// empties must not grow without bound.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, b)
}

func (q *msgQueue) pop() ([]byte, bool) {
	if q.head == len(q.items) {
		return nil, false
	}
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		if cap(q.items) > keepSlots {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	}
	return b, true
}

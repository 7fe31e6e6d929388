package eventbus

// Groups returns how many members each shared subscription has.
func Groups(b *Bus) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []int
	for _, gs := range b.groups {
		for _, g := range gs {
			out = append(out, len(g.members))
		}
	}
	return out
}

// Dispatched returns how many subscriptions the dispatcher serves itself:
// solo ones and renderers.
func Dispatched(b *Bus) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, subs := range b.subs {
		n += len(subs)
	}
	return n
}

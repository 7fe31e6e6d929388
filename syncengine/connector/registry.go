package connector

import (
	"fmt"
	"sort"
	"sync"
)

// Factory builds a connector from its settings (credentials, data center,
// org). The settings' shape belongs to the factory.
type Factory func(settings any) (Connector, error)

// Registry maps systems to their factories. It is explicit, filled by the
// composition root, never by init() side effects.
type Registry struct {
	mu        sync.RWMutex
	factories map[System]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[System]Factory{}} }

// Register adds a factory; registering a system twice is a programming error.
func (r *Registry) Register(s System, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[s]; dup {
		panic(fmt.Sprintf("connector: %s registered twice", s))
	}
	r.factories[s] = f
}

// New builds a connector for system s.
func (r *Registry) New(s System, settings any) (Connector, error) {
	r.mu.RLock()
	f, ok := r.factories[s]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("building %s connector: no such system (known: %v)", s, r.Systems())
	}
	c, err := f(settings)
	if err != nil {
		return nil, fmt.Errorf("building %s connector: %w", s, err)
	}
	return c, nil
}

// Systems lists the registered systems.
func (r *Registry) Systems() []System {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]System, 0, len(r.factories))
	for s := range r.factories {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

package control

import (
	"sync"

	"github.com/calld/calld"
)

// Hub fans live events out to subscribers (the GET /v1/events streams).
// Publish never blocks: every subscriber has a buffered channel, and a
// subscriber whose buffer is full when an event arrives is dropped — its
// channel is closed (after the events already buffered) and its Dropped
// method reports true. The zero Hub is not usable; use NewHub.
type Hub struct {
	mu     sync.Mutex
	buffer int
	subs   map[*Subscription]struct{}
	closed bool
}

// DefaultHubBuffer is the per-subscriber buffer NewHub uses for a
// non-positive size.
const DefaultHubBuffer = 256

// NewHub returns a hub whose subscribers buffer up to buffer events.
func NewHub(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultHubBuffer
	}
	return &Hub{buffer: buffer, subs: make(map[*Subscription]struct{})}
}

// Subscription is one subscriber of a Hub. C delivers the events published
// after Subscribe returned, in Publish order; it is closed when the
// subscriber is dropped, closes itself, or the hub is closed.
type Subscription struct {
	C <-chan calld.Event

	c       chan calld.Event
	hub     *Hub
	dropped bool // guarded by hub.mu
	done    bool // guarded by hub.mu
}

// Subscribe adds a subscriber. On a closed hub the returned subscription's
// channel is already closed.
func (h *Hub) Subscribe() *Subscription {
	c := make(chan calld.Event, h.buffer)
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.done = true
		close(c)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Publish delivers ev to every subscriber without blocking; subscribers
// whose buffer is full are dropped.
func (h *Hub) Publish(ev calld.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped = true
			h.removeLocked(s)
		}
	}
}

// Len returns the number of current subscribers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close closes every subscription and makes later subscriptions start
// closed. Streams then end normally (not as dropped).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.removeLocked(s)
	}
}

func (h *Hub) removeLocked(s *Subscription) {
	if s.done {
		return
	}
	s.done = true
	delete(h.subs, s)
	close(s.c)
}

// Close unsubscribes; C is closed. It is safe to call more than once and
// concurrently with Publish.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s)
}

// Dropped reports whether the hub dropped this subscriber because its
// buffer was full. Meaningful once C is closed.
func (s *Subscription) Dropped() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

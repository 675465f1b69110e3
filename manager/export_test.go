package manager

// InMemoryCalls is how many calls the loop holds in memory (tests only).
func InMemoryCalls(m *Manager) int {
	ch := make(chan int, 1)
	if err := m.post(func() { ch <- len(m.calls) + len(m.requested) }); err != nil {
		return -1
	}
	return <-ch
}

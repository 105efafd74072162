package gateway

// ImportsRunning reports how many imports of org are in progress (tests
// wait on it instead of sleeping).
func ImportsRunning(org string) int {
	imports.mu.Lock()
	defer imports.mu.Unlock()
	return imports.running[org]
}

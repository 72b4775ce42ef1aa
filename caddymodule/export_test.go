package caddymodule

// LimitReplaySet lowers the bound of the replay set (maxUsedStates) to
// n for a test through a real Caddy, and returns what restores it.
func LimitReplaySet(n int) (restore func()) {
	saved := maxUsedStates
	maxUsedStates = n
	return func() { maxUsedStates = saved }
}

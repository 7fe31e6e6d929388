package crm

// SetTokenLimit lowers the 100,000-record reach of page tokens so a test
// can hit PAGINATION_LIMIT_EXCEEDED without a huge org.
func SetTokenLimit(s *Server, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLimit = n
}

package control

// Routes returns the registered route patterns ("GET /v1/status"), each
// with whether it needs an allowed uid.
func (s *Server) Routes() map[string]bool { return s.table }

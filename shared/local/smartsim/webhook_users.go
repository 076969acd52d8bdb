package smartsim

import (
	"slices"
	"strings"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Endpoint keys of the user directory, which lets a webhook receiver turn an
// event's userId into an email.
const (
	EndpointGetUser   = "getUser"
	EndpointListUsers = "listUsers"
)

// DirectoryUser is a user of the directory, as GET /users/{id} answers it.
type DirectoryUser struct {
	ID        int64  `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
}

func directoryUser(u smartsheet.User) DirectoryUser {
	first, last, _ := strings.Cut(u.Name, " ")
	return DirectoryUser{ID: userID(u.Email), Email: u.Email, Name: u.Name, FirstName: first, LastName: last}
}

// User returns the user with that id: a configured token user, the default
// and automation users, or anyone who made a recorded change.
func (s *Server) User(id int64) (DirectoryUser, bool) {
	s.wh.mu.Lock()
	u, ok := s.wh.users[id]
	s.wh.mu.Unlock()
	if ok {
		return directoryUser(u), true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := len(s.st.Events) - 1; i >= 0; i-- {
		if e := s.st.Events[i]; e.UserID == id && e.User.Email != "" {
			return directoryUser(e.User), true
		}
	}
	return DirectoryUser{}, false
}

// Users lists the directory, sorted by email.
func (s *Server) Users() []DirectoryUser {
	seen := map[int64]smartsheet.User{}
	s.mu.RLock()
	for _, e := range s.st.Events {
		if e.User.Email != "" {
			seen[e.UserID] = e.User
		}
	}
	s.mu.RUnlock()
	s.wh.mu.Lock()
	for id, u := range s.wh.users {
		seen[id] = u
	}
	s.wh.mu.Unlock()
	out := make([]DirectoryUser, 0, len(seen))
	for _, u := range seen {
		out = append(out, directoryUser(u))
	}
	slices.SortFunc(out, func(a, b DirectoryUser) int { return strings.Compare(a.Email, b.Email) })
	return out
}

func getUser(s *Server, q *request) (any, *apiError) {
	id, aerr := q.pathID("userId")
	if aerr != nil {
		return nil, aerr
	}
	u, ok := s.User(id)
	if !ok {
		return nil, errNotFound()
	}
	return u, nil
}

func listUsers(s *Server, q *request) (any, *apiError) {
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	return indexResult(p, s.Users()), nil
}

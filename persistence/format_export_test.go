// This file exposes to the tests what they need to compare decoded states.

package persistence

// Comparable returns a copy of s without the document it was decoded from,
// so that a decoded State compares with reflect.DeepEqual to one built in
// memory.
func Comparable(s *State) *State {
	if s == nil {
		return nil
	}
	c := *s
	c.src = nil
	return &c
}

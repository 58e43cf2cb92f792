// This file exposes test-only hooks of the package to its tests.

package persistence

import "os"

// SetSaveHook makes every following save of s call h before each of its
// steps ("create", "write", "sync", "close", "rename", "syncdir"), every
// journal append before "journal-write" and "journal-sync", and every
// journal trim before "journal-trim-truncate" (when no record follows the
// snapshot), "journal-trim-create", "journal-trim-sync",
// "journal-trim-rename" and "journal-trim-syncdir", and fail with the
// error h returns.
func SetSaveHook(s *Store, h func(step string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
	s.jmu.Lock()
	defer s.jmu.Unlock()
	s.jhook = h
}

// ReadJournal returns the records of the journal file at path, in order.
func ReadJournal(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, _, err := scanJournal(data)
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = r.Record
	}
	return out, err
}

// This file makes and parses IDs: monotonic ULIDs in their 26-character form.

package messages

import (
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// idMu guards the following.
var (
	idMu sync.Mutex
	// nowEntropy feeds NewID only, so its times never decrease and its IDs
	// strictly increase; atEntropy feeds NewIDAt.
	nowEntropy = ulid.Monotonic(rand.Reader, 0)
	atEntropy  = ulid.Monotonic(rand.Reader, 0)
	idLastMs   uint64 // time of the last ID made by NewID
)

// NewID returns a new ULID string, after every ID NewID returned before in
// this process, even when called concurrently or when the wall clock steps
// back.
func NewID() string {
	idMu.Lock()
	defer idMu.Unlock()
	ms := max(ulid.Timestamp(time.Now()), idLastMs)
	id := newIDLocked(ms, &nowEntropy)
	idLastMs = id.Time()
	return id.String()
}

// NewIDAt returns a new ULID string whose time is t (clamped to the range a
// ULID can hold); IDs made at the same millisecond one after another
// increase.
func NewIDAt(t time.Time) string {
	var ms uint64
	switch um := t.UnixMilli(); {
	case um < 0:
		ms = 0
	case uint64(um) > ulid.MaxTime():
		ms = ulid.MaxTime()
	default:
		ms = uint64(um)
	}
	idMu.Lock()
	defer idMu.Unlock()
	return newIDLocked(ms, &atEntropy).String()
}

// newIDLocked makes an ID at ms from *entropy, moving to the next
// millisecond in the (astronomically unlikely) case that the monotonic
// entropy overflows. idMu must be held.
func newIDLocked(ms uint64, entropy **ulid.MonotonicEntropy) ulid.ULID {
	for {
		id, err := ulid.New(ms, *entropy)
		if err == nil {
			return id
		}
		if ms >= ulid.MaxTime() {
			// No later time exists; start fresh entropy at the same time.
			*entropy = ulid.Monotonic(rand.Reader, 0)
			continue
		}
		ms++
	}
}

// ParseID checks that s is a ULID and returns it in canonical upper case.
func ParseID(s string) (string, error) {
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a ULID: %w", s, err)
	}
	return id.String(), nil
}

// IsID reports whether s parses as a ULID.
func IsID(s string) bool {
	_, err := ulid.ParseStrict(s)
	return err == nil
}

// IDTime returns the creation time encoded in a ULID.
func IDTime(s string) (time.Time, error) {
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a ULID: %w", s, err)
	}
	return ulid.Time(id.Time()), nil
}

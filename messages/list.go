package messages

import (
	"fmt"
	"strings"
)

// ListQuery selects a page of a list ordered by ID (creation order): at
// most Limit entries (0 = all) whose ID comes after After ("" = from the
// start) and whose label begins with LabelPrefix.
type ListQuery struct {
	Limit       int    `json:"limit,omitempty"`
	After       string `json:"after,omitempty"`
	LabelPrefix string `json:"label_prefix,omitempty"`
}

// Validate checks the query: Limit ≥ 0 and After, if set, an ID.
func (q ListQuery) Validate() error {
	if q.Limit < 0 {
		return &FieldError{Field: "limit", Message: fmt.Sprintf("must be >= 0, got %d", q.Limit)}
	}
	if q.After != "" && !IsID(q.After) {
		return &FieldError{Field: "after", Message: fmt.Sprintf("%q is not an ID (a cursor is the last ID of the previous page)", q.After)}
	}
	return nil
}

// Select returns the IDs of ids (sorted, ascending) that the query keeps,
// with label(i) the label of ids[i], and the cursor of the next page: the
// last ID returned when more match after it, else "".
func (q ListQuery) Select(n int, id func(int) string, label func(int) string) (keep []int, next string) {
	after := strings.ToUpper(q.After)
	for i := range n {
		if after != "" && id(i) <= after {
			continue
		}
		if q.LabelPrefix != "" && !strings.HasPrefix(label(i), q.LabelPrefix) {
			continue
		}
		if q.Limit > 0 && len(keep) == q.Limit {
			return keep, id(keep[len(keep)-1])
		}
		keep = append(keep, i)
	}
	return keep, ""
}

package messages

import (
	"slices"
	"strings"
	"testing"
)

func TestListQueryValidate(t *testing.T) {
	for _, tt := range []struct {
		q    ListQuery
		want string
	}{
		{ListQuery{}, ""},
		{ListQuery{Limit: 100, After: "01J9ZB3V4Q8C6R3X1W7M5N2K0A", LabelPrefix: "web-"}, ""},
		{ListQuery{After: "01j9zb3v4q8c6r3x1w7m5n2k0a"}, ""},
		{ListQuery{Limit: -1}, "limit: must be >= 0, got -1"},
		{ListQuery{After: "web"}, `after: "web" is not an ID`},
	} {
		err := tt.q.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tt.q, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.q, err, tt.want)
		}
	}
}

func TestListQuerySelect(t *testing.T) {
	ids := []string{"01A", "01B", "01C", "01D", "01E"}
	labels := []string{"web-1", "db", "web-2", "web-3", "job"}
	pick := func(q ListQuery) ([]string, string) {
		keep, next := q.Select(len(ids), func(i int) string { return ids[i] }, func(i int) string { return labels[i] })
		var out []string
		for _, i := range keep {
			out = append(out, ids[i])
		}
		return out, next
	}
	for _, tt := range []struct {
		q    ListQuery
		want []string
		next string
	}{
		{ListQuery{}, ids, ""},
		{ListQuery{Limit: 2}, []string{"01A", "01B"}, "01B"},
		{ListQuery{Limit: 2, After: "01B"}, []string{"01C", "01D"}, "01D"},
		{ListQuery{Limit: 2, After: "01D"}, []string{"01E"}, ""},
		{ListQuery{Limit: 5}, ids, ""},
		{ListQuery{LabelPrefix: "web-"}, []string{"01A", "01C", "01D"}, ""},
		{ListQuery{LabelPrefix: "web-", Limit: 2}, []string{"01A", "01C"}, "01C"},
		{ListQuery{LabelPrefix: "web-", Limit: 2, After: "01C"}, []string{"01D"}, ""},
		{ListQuery{After: "01E"}, nil, ""},
		{ListQuery{LabelPrefix: "nope"}, nil, ""},
	} {
		got, next := pick(tt.q)
		if !slices.Equal(got, tt.want) || next != tt.next {
			t.Errorf("%+v: %v next %q; want %v next %q", tt.q, got, next, tt.want, tt.next)
		}
	}
}

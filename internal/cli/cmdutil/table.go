// This file owns the tables list commands print.

package cmdutil

import (
	"io"
	"strings"
	"text/tabwriter"
)

// Table prints aligned columns.
type Table struct {
	tw *tabwriter.Writer
}

// NewTable returns a table writing to w with the given header.
func NewTable(w io.Writer, header ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.Row(header...)
	}
	return t
}

// Row adds a row; empty cells print as "-".
func (t *Table) Row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(cells[i])
	}
	io.WriteString(t.tw, strings.Join(cells, "\t")+"\n")
}

// Flush writes the table out.
func (t *Table) Flush() error { return t.tw.Flush() }

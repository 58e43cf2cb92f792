// This file owns how the dashboard is drawn: the header and status line,
// the workspace list with its sparklines and memory bars, the workspace
// and pipeline cards (DAG, flow channels), the log pane and the key line.
// Every line is cut to the terminal's width and the whole to its height.

package top

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/cli/pipe"
	"github.com/shipote/shipote/internal/cli/ws"
	"github.com/shipote/shipote/messages"
)

// flashFor is how long a status message stays.
const flashFor = 5 * time.Second

// cursorMark starts the selected row, so that the selection shows even
// without colors (NO_COLOR drops every attribute).
const cursorMark = "▸ "

// styles are the dashboard's styles, from one renderer.
type styles struct {
	title, head, sel, dim, ok, warn, err, banner, prompt lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	s := r.NewStyle()
	return styles{
		title:  s.Bold(true),
		head:   s.Bold(true).Foreground(lipgloss.Color("6")),
		sel:    s.Reverse(true),
		dim:    s.Faint(true),
		ok:     s.Foreground(lipgloss.Color("2")),
		warn:   s.Foreground(lipgloss.Color("3")),
		err:    s.Foreground(lipgloss.Color("1")),
		banner: s.Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("1")),
		prompt: s.Bold(true).Foreground(lipgloss.Color("0")).Background(lipgloss.Color("3")),
	}
}

// View implements tea.Model.
func (m *Model) View() string {
	w, h := m.width, m.height
	now := m.cfg.Now()
	lines := []string{m.headerLine(now), m.statusLine(now)}
	avail := h - 3
	var body []string
	switch m.top() {
	case viewList:
		body = m.listView(now, avail)
	case viewWorkspace:
		body = m.workspaceView(now, avail)
	case viewPipeline:
		body = m.pipelineView(now, avail)
	case viewLogs:
		body = m.logsView(avail)
	}
	if len(body) > avail {
		body = body[:avail]
	}
	lines = append(lines, body...)
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	lines = append(lines, m.footerLine())
	for i, l := range lines {
		lines[i] = fit(l, w)
	}
	return strings.Join(lines, "\n")
}

// fit cuts a line to w cells.
func fit(s string, w int) string {
	if lipgloss.Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// pad cuts or pads s to exactly w cells.
func pad(s string, w int) string {
	s = fit(s, w)
	if n := lipgloss.Width(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// padLeft right-aligns s in w cells.
func padLeft(s string, w int) string {
	s = fit(s, w)
	if n := lipgloss.Width(s); n < w {
		s = strings.Repeat(" ", w-n) + s
	}
	return s
}

// spark draws the last w values as a sparkline, right-aligned in w cells.
func spark(values []float64, w int) string {
	if w <= 0 {
		return ""
	}
	if len(values) > w {
		values = values[len(values)-w:]
	}
	return padLeft(cmdutil.Sparkline(values), w)
}

// bar draws used/limit as a w-cell bar followed by the percentage.
func (m *Model) bar(used uint64, limit int64, w int) string {
	if limit <= 0 {
		return pad("-", w+5)
	}
	ratio := float64(used) / float64(limit)
	n := int(math.Round(min(ratio, 1) * float64(w)))
	st := m.st.ok
	switch {
	case ratio >= 0.9:
		st = m.st.err
	case ratio >= 0.7:
		st = m.st.warn
	}
	return st.Render(strings.Repeat("█", n)) + m.st.dim.Render(strings.Repeat("░", w-n)) +
		padLeft(strconv.Itoa(int(math.Round(ratio*100)))+"%", 5)
}

// plural prints n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// shortID is the first 8 characters of an ID.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func (m *Model) headerLine(now time.Time) string {
	left := m.st.title.Render("shipote top") + fmt.Sprintf("  %s  %s  sort %s",
		plural(len(m.data.workspaces), "workspace"), plural(len(m.data.pipelines), "pipeline"), m.sort)
	if f := m.filter.Value(); f != "" && !m.filtering {
		left += fmt.Sprintf("  filter %q", f)
	}
	var right string
	switch {
	case m.down:
		right = m.st.err.Render("○ down " + cmdutil.FormatDuration(now.Sub(m.downSince)))
	case m.connected:
		right = m.st.ok.Render("● live")
	default:
		right = m.st.dim.Render("○ connecting")
	}
	right += " " + now.Format("15:04:05")
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return fit(left, m.width-lipgloss.Width(right)-1) + " " + right
	}
	return left + strings.Repeat(" ", gap) + right
}

// statusLine is the daemon-gone banner, or the last status message.
func (m *Model) statusLine(now time.Time) string {
	if m.down {
		sock := m.cfg.Socket
		text := func(s string) string { return " daemon not reachable at " + s + " — retrying " }
		if extra := lipgloss.Width(text(sock)) - m.width; extra > 0 && len(sock) > extra+1 {
			sock = "…" + sock[extra+1:]
		}
		line := m.st.banner.Render(text(sock))
		if suffix := "  data from " + m.data.updated.Format("15:04:05"); !m.data.updated.IsZero() &&
			lipgloss.Width(line)+len(suffix) <= m.width {
			line += m.st.dim.Render(suffix)
		}
		return line
	}
	if m.flash != "" && now.Sub(m.flashAt) < flashFor {
		return m.st.warn.Render(m.flash)
	}
	if n := len(m.data.events); n > 0 {
		e := m.data.events[n-1]
		return m.st.dim.Render("last event " + eventLine(e))
	}
	return ""
}

func eventLine(e messages.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Local().Format("15:04:05") + " " + string(e.Kind))
	who := e.Label
	if who == "" {
		who = shortID(e.Workspace)
	}
	if e.Pipeline != "" {
		who += "/" + shortID(e.Pipeline)
	}
	if e.Node != "" {
		who += "/" + e.Node
	}
	if e.Command != "" {
		who += "/" + shortID(e.Command)
	}
	b.WriteString(" " + who)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func (m *Model) footerLine() string {
	switch {
	case m.confirm != nil:
		return m.st.prompt.Render(" " + m.confirm.prompt() + " ")
	case m.sigPick != nil:
		return m.st.prompt.Render(" Signal " + m.sigPick.label + ": " + signalChoices + " ")
	case m.filtering:
		return m.filter.View() + m.st.dim.Render("  enter keep · esc clear")
	}
	var keys string
	switch m.top() {
	case viewList:
		keys = "↑↓/jk move · enter open · / filter · s sort · x remove · q quit"
	case viewWorkspace:
		keys = "↑↓ enter · l logs · S stop · R restart · K signal · x stop/rm · esc · q quit"
	case viewPipeline:
		keys = "↑↓ node · l logs · x stop · esc back · q quit"
	case viewLogs:
		keys = "↑↓ scroll · G follow · l reopen · esc back · q quit"
	}
	return m.st.dim.Render(keys)
}

// listCols are the widths of the workspace list's columns.
type listCols struct {
	label, node, id, cmds, rss, rssSpark, cpu, cpuSpark, ttl, bar, quota int
}

// columns spreads width over the list's columns: fixed at 80, the
// sparklines, label and bar grow beyond.
func columns(width, node int) listCols {
	c := listCols{label: 10, id: 8, cmds: 5, rss: 6, rssSpark: 7, cpu: 5, cpuSpark: 7, ttl: 6, bar: 5, quota: 5}
	if node > 0 {
		// In a cluster a NODE column follows LABEL, at most 12 wide.
		c.node = min(node, 12)
		width -= c.node + 1
	}
	// 2 (cursor) + columns + 5 (percentage) + 9 separators.
	used := 2 + c.label + c.id + c.cmds + c.rss + c.rssSpark + c.cpu + c.cpuSpark + c.ttl + c.bar + 5 + c.quota + 9
	extra := width - used
	if extra < 0 && c.node > 0 {
		// The node column's room comes from the sparklines first.
		take := min(-extra, 8)
		c.rssSpark -= take / 2
		c.cpuSpark -= take - take/2
		extra += take
	}
	if extra <= 0 {
		return c
	}
	grow := min(extra/5, 14)
	c.label += grow
	extra -= grow
	barGrow := min(extra/5, 15)
	c.bar += barGrow
	extra -= barGrow
	c.rssSpark += min(extra/2, 52)
	c.cpuSpark += min(extra-extra/2, 52)
	return c
}

// nodeWidth is the width of the NODE column: the longest member name of
// rows, or 0 when no workspace has one (a lone daemon).
func nodeWidth(rows []messages.WorkspaceInfo) int {
	w := 0
	for _, r := range rows {
		if r.Node != "" {
			w = max(w, len("NODE"), lipgloss.Width(r.Node))
		}
	}
	return w
}

func (m *Model) listView(now time.Time, avail int) []string {
	rows := m.data.rows(m.filter.Value(), m.sort)
	c := columns(m.width, nodeWidth(m.data.workspaces))
	cols := []string{pad("LABEL", c.label)}
	if c.node > 0 {
		cols = append(cols, pad("NODE", c.node))
	}
	head := "  " + strings.Join(append(cols,
		pad("ID", c.id), padLeft("CMDS", c.cmds), padLeft("RSS", c.rss), pad("", c.rssSpark),
		padLeft("CPU%", c.cpu), pad("", c.cpuSpark), padLeft("TTL", c.ttl), pad("MEMORY", c.bar+5), "QUOTA",
	), " ")
	out := []string{m.st.head.Render(head)}
	if len(rows) == 0 {
		switch {
		case !m.connected && m.data.updated.IsZero():
			out = append(out, m.st.dim.Render("  waiting for the daemon…"))
		case m.filter.Value() != "":
			out = append(out, m.st.dim.Render(fmt.Sprintf("  no workspace matches %q", m.filter.Value())))
		default:
			out = append(out, m.st.dim.Render("  no workspaces"))
		}
		return append(out, m.eventLines(avail-len(out))...)
	}
	sel := indexOf(rows, m.selWS)
	if sel < 0 {
		sel = min(m.listIdx, len(rows)-1)
	}
	first, last := window(len(rows), sel, avail-1)
	for i := first; i < last; i++ {
		w := rows[i]
		hist := m.data.stats[w.ID]
		rssV := make([]float64, len(hist))
		cpuV := make([]float64, len(hist))
		for j, s := range hist {
			rssV[j], cpuV[j] = float64(s.RSSBytes), s.CPUPercent
		}
		rss, cpu := "-", "-"
		var used uint64
		if l := m.data.latest(w); l != nil {
			used = l.RSSBytes
			rss = cmdutil.FormatBytes(l.RSSBytes)
			cpu = strconv.FormatFloat(l.CPUPercent, 'f', 1, 64)
		}
		cells := []string{pad(w.Spec.Label, c.label)}
		if c.node > 0 {
			cells = append(cells, pad(cmp.Or(w.Node, "-"), c.node))
		}
		line := strings.Join(append(cells,
			pad(shortID(w.ID), c.id),
			padLeft(fmt.Sprintf("%d/%d", w.CommandsAlive, w.CommandsTotal), c.cmds),
			padLeft(rss, c.rss), m.st.ok.Render(spark(rssV, c.rssSpark)),
			padLeft(cpu, c.cpu), m.st.warn.Render(spark(cpuV, c.cpuSpark)),
			padLeft(ws.TTLLeft(w, now), c.ttl), m.bar(used, w.Spec.Soma.MemoryMaxBytes, c.bar),
			m.quotaCell(w),
		), " ")
		if i == sel {
			line = m.st.sel.Render(cursorMark + ansi.Strip(line))
		} else {
			line = "  " + line
		}
		out = append(out, line)
	}
	return append(out, m.eventLines(avail-len(out))...)
}

// eventLines shows the latest events under the list when there is room.
func (m *Model) eventLines(room int) []string {
	if room < 4 || len(m.data.events) == 0 {
		return nil
	}
	n := min(room-2, len(m.data.events), 10)
	out := []string{"", m.st.head.Render("RECENT EVENTS")}
	for _, e := range m.data.events[len(m.data.events)-n:] {
		line := "  " + eventLine(e)
		if e.Kind == messages.EventQuota || e.Kind == messages.EventFailed || e.Kind == messages.EventGaveUp {
			line = m.st.err.Render(line)
		}
		out = append(out, line)
	}
	return out
}

// window returns the rows [first, last) to show of n rows so that sel is
// visible in room rows.
func window(n, sel, room int) (first, last int) {
	room = max(room, 1)
	if n <= room {
		return 0, n
	}
	first = min(max(sel-room/2, 0), n-room)
	return first, first + room
}

// quotaCell is the quota state of a workspace: off, ok, over or kill.
func (m *Model) quotaCell(w messages.WorkspaceInfo) string {
	if w.Spec.QuotaEnforce == messages.QuotaOff {
		return m.st.dim.Render("off")
	}
	q, ok := m.data.quota[w.ID]
	switch {
	case !ok:
		return m.st.ok.Render("ok")
	case q.killed:
		return m.st.err.Render("kill")
	default:
		return m.st.warn.Render("over")
	}
}

// crop keeps room lines of body around line focus.
func crop(body []string, focus, room int) []string {
	first, last := window(len(body), focus, room)
	return body[first:last]
}

func (m *Model) workspaceView(now time.Time, avail int) []string {
	w, ok := m.data.workspace(m.selWS)
	if !ok {
		return []string{"workspace " + m.selWS + " is gone"}
	}
	var out []string
	title := m.st.title.Render("workspace "+w.Spec.Label) + "  " + w.ID
	if w.Node != "" {
		title += "  on " + w.Node
	}
	title +=
		fmt.Sprintf("  %d/%d alive", w.CommandsAlive, w.CommandsTotal)
	if !w.Deadline.IsZero() {
		title += "  TTL " + ws.TTLLeft(w, now)
	}
	limits := cmdutil.FormatSoma(w.Spec.Soma, " · ")
	if w.LimitsBackend != "" {
		limits += " (" + w.LimitsBackend + ")"
	}
	qmode := string(w.Spec.QuotaEnforce)
	if qmode == "" {
		qmode = string(messages.QuotaWarn)
	}
	quota := "quota " + qmode + ": " + m.quotaCell(w)
	if q, ok := m.data.quota[w.ID]; ok {
		quota += " " + q.msg + " (" + cmdutil.Age(now, q.at) + ")"
	}
	out = append(out, title, "created "+cmdutil.Age(now, w.CreatedAt)+"  limits "+limits, quota)
	hist := m.data.stats[w.ID]
	sw := max(m.width-34, 8)
	rssV := make([]float64, len(hist))
	cpuV := make([]float64, len(hist))
	var peak uint64
	var maxCPU float64
	for j, s := range hist {
		rssV[j], cpuV[j] = float64(s.RSSBytes), s.CPUPercent
		peak = max(peak, s.RSSPeakBytes, s.RSSBytes)
		maxCPU = max(maxCPU, s.CPUPercent)
	}
	var used uint64
	var cpuNow float64
	if l := m.data.latest(w); l != nil {
		used, cpuNow = l.RSSBytes, l.CPUPercent
	}
	out = append(out,
		fmt.Sprintf("RSS %6s  peak %6s  ", cmdutil.FormatBytes(used), cmdutil.FormatBytes(peak))+m.st.ok.Render(spark(rssV, sw)),
		fmt.Sprintf("CPU %5.1f%%   max %5.1f%%  ", cpuNow, maxCPU)+m.st.warn.Render(spark(cpuV, sw)))
	if lim := w.Spec.Soma.MemoryMaxBytes; lim > 0 {
		out = append(out, "MEM "+m.bar(used, lim, max(m.width-30, 10))+" of "+cmdutil.FormatBytes(uint64(lim)))
	}
	focus := 0
	row := 0
	line := func(i int, s string) string {
		if i == m.wsIdx {
			focus = len(out)
			return m.st.sel.Render(cursorMark + ansi.Strip(s))
		}
		return "  " + s
	}
	cmds := m.data.commandsOf(w.ID)
	out = append(out, "", m.st.head.Render(fmt.Sprintf("COMMANDS (%d)", len(cmds))))
	if len(cmds) > 0 {
		out = append(out, m.st.head.Render("  "+pad("LABEL", 16)+" "+pad("STATE", 9)+" "+padLeft("PID", 7)+" "+
			padLeft("RESTARTS", 8)+" "+padLeft("UPTIME", 7)+"  ID"))
	}
	for _, c := range cmds {
		pid := "-"
		if c.Pid > 0 {
			pid = strconv.Itoa(c.Pid)
		}
		up := "-"
		if c.Alive() {
			up = cmdutil.FormatDuration(c.Uptime(now))
		}
		s := pad(c.Label, 16) + " " + m.stateStyle(string(c.State)).Render(pad(string(c.State), 9)) + " " +
			padLeft(pid, 7) + " " + padLeft(strconv.Itoa(c.Restarts), 8) + " " + padLeft(up, 7) + "  " + shortID(c.ID)
		out = append(out, line(row, s))
		row++
	}
	pipes := m.data.pipelinesOf(w.ID)
	out = append(out, "", m.st.head.Render(fmt.Sprintf("PIPELINES (%d)", len(pipes))))
	if len(pipes) > 0 {
		out = append(out, m.st.head.Render("  "+pad("LABEL", 16)+" "+pad("STATE", 9)+" "+padLeft("NODES", 7)+" "+
			padLeft("RESTARTS", 8)+" "+padLeft("FLOW", 9)+"  RUN"))
	}
	for _, p := range pipes {
		alive := 0
		for _, n := range p.Nodes {
			if !n.State.Ended() {
				alive++
			}
		}
		var rate uint64
		for _, sp := range p.Splitters {
			for _, ch := range sp.Channels {
				if !ch.Tap {
					rate += ch.BytesPerSec
				}
			}
		}
		flow := cmdutil.FormatRate(rate)
		if p.State.Ended() {
			flow = "-"
		}
		s := pad(p.Label, 16) + " " + m.stateStyle(string(p.State)).Render(pad(string(p.State), 9)) + " " +
			padLeft(fmt.Sprintf("%d/%d", alive, len(p.Nodes)), 7) + " " + padLeft(strconv.Itoa(p.Restarts), 8) + " " +
			padLeft(flow, 9) + "  " + shortID(p.ID)
		out = append(out, line(row, s))
		row++
	}
	return crop(out, focus, avail)
}

// stateStyle colors a command or pipeline state.
func (m *Model) stateStyle(state string) lipgloss.Style {
	switch state {
	case "running", "ready", "succeeded", "exited":
		return m.st.ok
	case "starting", "backoff", "stopped":
		return m.st.warn
	default:
		return m.st.err
	}
}

func (m *Model) pipelineView(now time.Time, avail int) []string {
	p, ok := m.data.pipeline(m.pipeID)
	if !ok {
		return []string{"pipeline " + m.pipeID + " is gone"}
	}
	var out []string
	title := m.st.title.Render("pipeline "+p.WorkspaceLabel+"/"+p.Label) + "  " + p.ID + "  " +
		m.stateStyle(string(p.State)).Render(string(p.State))
	if !p.StartedAt.IsZero() {
		end := now
		if !p.EndedAt.IsZero() {
			end = p.EndedAt
		}
		title += "  up " + cmdutil.FormatDuration(end.Sub(p.StartedAt))
	}
	out = append(out, title, "supervisor "+supervisorLine(p, now))
	if p.Error != "" {
		out = append(out, m.st.err.Render("error "+p.Error))
	}
	out = append(out, "", m.st.head.Render("DAG"))
	focus := 0
	sel := ""
	if m.nodeIdx < len(p.Nodes) {
		sel = p.Nodes[m.nodeIdx].Label
	}
	dag := dagLines(p)
	labelW := 0
	for _, d := range dag {
		labelW = max(labelW, lipgloss.Width(d.prefix+d.node))
	}
	for _, d := range dag {
		s := pad(d.prefix+d.node, labelW)
		if n, ok := nodeInfo(p, d.node); ok {
			s += "  " + m.stateStyle(string(n.State)).Render(string(n.State))
			if n.Pid > 0 {
				s += fmt.Sprintf("  pid %d", n.Pid)
			}
			if x := pipe.NodeExit(n); x != "" {
				s += "  exit " + x
			}
		}
		if d.repeat {
			s += m.st.dim.Render("  (see above)")
		}
		if d.node == sel && !d.repeat && focus == 0 {
			focus = len(out)
			out = append(out, m.st.sel.Render(cursorMark+ansi.Strip(s)))
			continue
		}
		out = append(out, "  "+s)
	}
	out = append(out, "", m.st.head.Render("FLOW CHANNELS"))
	chW, byW, rateW, dropW := 18, 7, 9, 7
	sw := max(m.width-2-chW-byW-rateW-dropW-5, 6)
	out = append(out, m.st.head.Render("  "+pad("CHANNEL", chW)+" "+padLeft("BYTES", byW)+" "+padLeft("BYTES/S", rateW)+" "+
		pad("THROUGHPUT", sw)+" "+padLeft("DROPPED", dropW)))
	if len(p.Splitters) == 0 {
		out = append(out, m.st.dim.Render("  no flow channels"))
	}
	for _, sp := range p.Splitters {
		for _, ch := range sp.Channels {
			to := ch.To
			if ch.Tap {
				to = "tap:" + to
			}
			rate := cmdutil.FormatRate(ch.BytesPerSec)
			if p.State.Ended() {
				rate = "-"
			}
			drop := cmdutil.FormatBytes(ch.DroppedBytes)
			if ch.DroppedBytes > 0 {
				drop = m.st.err.Render(padLeft(drop, dropW))
			}
			out = append(out, "  "+pad(ch.From+" → "+to, chW)+" "+padLeft(cmdutil.FormatBytes(ch.BytesTotal), byW)+" "+
				padLeft(rate, rateW)+" "+m.st.ok.Render(spark(m.data.rates[chanKey{p.ID, ch.From, ch.To, ch.Tap}], sw))+" "+
				padLeft(drop, dropW))
		}
		t := m.data.throttles[splitKey{p.ID, sp.Node}]
		thr := m.st.dim.Render("not throttled")
		switch {
		case t.growth > 0 && !p.State.Ended():
			thr = m.st.warn.Render(fmt.Sprintf("THROTTLED +%dms", t.growth))
		case sp.ThrottledMs > 0:
			thr = m.st.dim.Render("not throttled now")
		}
		out = append(out, fmt.Sprintf("  %s: in %s · throttled %s total · ", sp.Node, cmdutil.FormatBytes(sp.BytesIn),
			cmdutil.FormatDuration(time.Duration(sp.ThrottledMs)*time.Millisecond))+thr)
	}
	return crop(out, focus, avail)
}

// supervisorLine says whether a run is supervised, its restarts and when
// the next restart is due.
func supervisorLine(p messages.PipelineInfo, now time.Time) string {
	if !p.Supervised {
		s := "none (restart_on_failure off)"
		if p.Restarts > 0 {
			s += fmt.Sprintf(" · restarts %d", p.Restarts)
		}
		return s
	}
	s := fmt.Sprintf("%s · restarts %d", p.State, p.Restarts)
	if max := p.Spec.RestartMax; max > 0 {
		s += fmt.Sprintf("/%d", max)
	}
	switch {
	case !p.NextStartAt.IsZero() && !p.State.Ended():
		s += " · next restart in " + cmdutil.FormatDuration(p.NextStartAt.Sub(now))
	case p.State == messages.PipelineRunning:
		s += " · restarts on failure"
	case p.State.Ended():
		s += " · no restart (" + string(p.State) + ")"
	}
	return s
}

func nodeInfo(p messages.PipelineInfo, label string) (messages.NodeInfo, bool) {
	for _, n := range p.Nodes {
		if n.Label == label {
			return n, true
		}
	}
	return messages.NodeInfo{}, false
}

// dagLine is one line of a drawn DAG.
type dagLine struct {
	prefix string
	node   string
	repeat bool // drawn before (a consumer of several producers)
}

// dagLines draws a pipeline's DAG as a tree from its sources: each
// producer is followed by its consumers ("├─▶ count").
func dagLines(p messages.PipelineInfo) []dagLine {
	var order []string
	seen := make(map[string]bool)
	addNode := func(n string) {
		if !seen[n] {
			seen[n] = true
			order = append(order, n)
		}
	}
	for _, n := range p.Nodes {
		addNode(n.Label)
	}
	for _, n := range p.Spec.Nodes {
		addNode(n.Label)
	}
	children := make(map[string][]string)
	hasParent := make(map[string]bool)
	edge := make(map[[2]string]bool)
	addEdge := func(from, to string) {
		if edge[[2]string{from, to}] {
			return
		}
		edge[[2]string{from, to}] = true
		addNode(from)
		addNode(to)
		children[from] = append(children[from], to)
		hasParent[to] = true
	}
	for _, e := range p.Spec.Edges {
		addEdge(e.From, e.To)
	}
	for _, sp := range p.Splitters {
		for _, ch := range sp.Channels {
			if !ch.Tap {
				addEdge(ch.From, ch.To)
			}
		}
	}
	var out []dagLine
	drawn := make(map[string]bool)
	var walk func(node, prefix, childPrefix string)
	walk = func(node, prefix, childPrefix string) {
		if drawn[node] {
			out = append(out, dagLine{prefix: prefix, node: node, repeat: len(children[node]) > 0})
			return
		}
		drawn[node] = true
		out = append(out, dagLine{prefix: prefix, node: node})
		kids := children[node]
		for i, k := range kids {
			if i == len(kids)-1 {
				walk(k, childPrefix+"└─▶ ", childPrefix+"    ")
			} else {
				walk(k, childPrefix+"├─▶ ", childPrefix+"│   ")
			}
		}
	}
	for _, n := range order {
		if !hasParent[n] {
			walk(n, "", "")
		}
	}
	for _, n := range order { // cycles have no source
		if !drawn[n] {
			walk(n, "", "")
		}
	}
	return out
}

func (m *Model) logsView(avail int) []string {
	state := "following"
	switch {
	case m.logEnded != "":
		state = "ended"
	case !m.logFollow:
		state = "paused (G to follow)"
	}
	title := m.st.title.Render("logs "+m.logTitle) + "  " + m.st.dim.Render(fmt.Sprintf("%s · %d lines", state, len(m.logLines)))
	if m.logPane.Height != avail-1 {
		m.logPane.Height = max(avail-1, 1)
		m.logPane.Width = m.width
		if m.logFollow {
			m.logPane.GotoBottom()
		}
	}
	body := m.logPane.View()
	if len(m.logLines) == 0 && m.logEnded == "" {
		body = m.st.dim.Render("(no output yet)")
	}
	return append([]string{title}, strings.Split(body, "\n")...)
}

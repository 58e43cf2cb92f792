// This file owns the interactive dashboard's model: its views (workspace
// list, workspace card, pipeline card, log pane), the keys, and how the
// poll, event, log and action messages change it. Update never waits on
// the daemon: every call runs in a tea.Cmd (fetch.go).

package top

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/shipote/shipote/messages"
)

// view is one screen of the dashboard.
type view int

const (
	viewList view = iota
	viewWorkspace
	viewPipeline
	viewLogs
)

// Defaults of the model.
const (
	// defaultWidth and defaultHeight are used until the terminal's size is
	// known.
	defaultWidth, defaultHeight = 80, 24
	// retryEvery bounds the time between two polls while the daemon is
	// not reachable.
	retryEvery = time.Second
	// logKeep is how many lines a log pane keeps.
	logKeep = 2000
)

// Config sets up a model.
type Config struct {
	// Socket is shown when the daemon is not reachable.
	Socket string
	// Interval is the time between two polls.
	Interval time.Duration
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Renderer styles the output; nil = lipgloss's default (which follows
	// NO_COLOR).
	Renderer *lipgloss.Renderer
}

// Model is the bubbletea model of `shipote top`.
type Model struct {
	cfg    Config
	run    *runner
	st     styles
	width  int
	height int
	data   state

	// Connection.
	connected bool // a poll has answered since the last failure
	down      bool // the last poll failed to reach the daemon
	downErr   error
	downSince time.Time
	polling   bool // a poll is in flight
	pollAgain bool // poll again when it answers
	fullStats bool // the next poll fetches every stats history
	tickSeq   int
	events    *feed[messages.Event]
	eventsAt  time.Time // when the event feed was last started

	// Navigation.
	stack   []view
	selWS   string // selected workspace ID in the list
	listIdx int
	wsIdx   int // selected row of the workspace card
	pipeID  string
	nodeIdx int

	filtering bool
	filter    textinput.Model
	sort      sortKey
	confirm   *action
	// sigPick is the command whose signal is being chosen (K).
	sigPick *action
	flash   string
	flashAt time.Time

	// Log pane.
	logs      *feed[messages.LogLine]
	logTitle  string
	logRef    [2]string // workspace, command reference
	logLines  []string
	logEnded  string
	logPane   viewport.Model
	logFollow bool
}

// NewModel returns the dashboard's model; r makes its Cmds (nil in tests
// that do not run them).
func NewModel(cfg Config, r *runner) *Model {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Renderer == nil {
		cfg.Renderer = lipgloss.DefaultRenderer()
	}
	ti := textinput.New()
	ti.Prompt = "/"
	ti.Placeholder = "label or ID"
	ti.CharLimit = 64
	m := &Model{
		cfg:       cfg,
		run:       r,
		st:        newStyles(cfg.Renderer),
		width:     defaultWidth,
		height:    defaultHeight,
		data:      newState(),
		stack:     []view{viewList},
		filter:    ti,
		fullStats: true,
		logPane:   viewport.New(defaultWidth, defaultHeight-4),
	}
	return m
}

// tickMsg asks for the next poll; seq drops the ticks of an old chain.
type tickMsg struct{ seq int }

// Init starts the first poll, the event feed and the tick chain.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.startPoll(), m.startEvents(), m.tick(m.cfg.Interval))
}

func (m *Model) tick(d time.Duration) tea.Cmd {
	m.tickSeq++
	seq := m.tickSeq
	return tea.Tick(d, func(time.Time) tea.Msg { return tickMsg{seq: seq} })
}

// pollEvery is the time to the next poll: the interval, or retryEvery
// when the daemon is gone.
func (m *Model) pollEvery() time.Duration {
	if m.down {
		return min(m.cfg.Interval, retryEvery)
	}
	return m.cfg.Interval
}

// startPoll starts a poll unless one is in flight (then it is queued).
func (m *Model) startPoll() tea.Cmd {
	if m.polling {
		m.pollAgain = true
		return nil
	}
	m.polling = true
	req := pollRequest{allHistory: m.fullStats, history: make(map[string]bool)}
	m.fullStats = false
	for _, w := range m.data.workspaces {
		if _, ok := m.data.stats[w.ID]; !ok {
			req.history[w.ID] = true
		}
	}
	if m.top() == viewWorkspace || m.top() == viewPipeline {
		req.history[m.selWS] = true
	}
	return m.run.poll(req)
}

// startEvents starts following the daemon's events, at most once per
// retryEvery (a daemon that ends the stream at once is not hammered).
func (m *Model) startEvents() tea.Cmd {
	if m.events != nil || m.run == nil || time.Since(m.eventsAt) < retryEvery {
		return nil
	}
	m.eventsAt = time.Now()
	m.events = m.run.eventFeed()
	return next(m.run, m.events)
}

func (m *Model) top() view { return m.stack[len(m.stack)-1] }

func (m *Model) push(v view) { m.stack = append(m.stack, v) }

func (m *Model) pop() {
	if len(m.stack) > 1 {
		m.truncate(len(m.stack) - 1)
	}
}

// truncate keeps the first n views, closing the log pane if it goes.
func (m *Model) truncate(n int) {
	if n < len(m.stack) && m.top() == viewLogs {
		m.closeLogs()
	}
	m.stack = m.stack[:n]
}

func (m *Model) setFlash(format string, args ...any) {
	m.flash = fmt.Sprintf(format, args...)
	m.flashAt = m.cfg.Now()
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 20), max(msg.Height, 8)
		m.resizeLogs()
		return m, nil
	case tickMsg:
		if msg.seq != m.tickSeq {
			return m, nil
		}
		return m, tea.Batch(m.tick(m.pollEvery()), m.startPoll())
	case snapshotMsg:
		return m, m.onSnapshot(msg)
	case feedMsg[messages.Event]:
		if msg.feed != m.events {
			return m, nil
		}
		cmds := []tea.Cmd{next(m.run, m.events)}
		if m.data.addEvents(msg.items) {
			cmds = append(cmds, m.startPoll())
		}
		return m, tea.Batch(cmds...)
	case feedEndedMsg[messages.Event]:
		if msg.feed != m.events {
			return m, nil
		}
		m.events = nil
		// The daemon may be gone: find out now rather than at the next tick.
		return m, m.startPoll()
	case feedMsg[messages.LogLine]:
		if msg.feed != m.logs {
			return m, nil
		}
		m.addLogLines(msg.items)
		return m, next(m.run, m.logs)
	case feedEndedMsg[messages.LogLine]:
		if msg.feed != m.logs {
			return m, nil
		}
		m.logs = nil
		if msg.err != nil {
			m.logEnded = "log stream ended: " + msg.err.Error() + " (l to reopen)"
		} else {
			m.logEnded = "log stream ended (l to reopen)"
		}
		m.refreshLogs()
		return m, nil
	case actionDoneMsg:
		switch {
		case msg.err != nil:
			m.setFlash("%s: %v", strings.TrimSuffix(msg.act.prompt(), "? y/n"), msg.err)
		case msg.act.kind == actStopPipeline:
			m.setFlash("stopped pipeline %s", msg.act.label)
		case msg.act.kind == actStopCommand:
			m.setFlash("%s: %s", msg.act.label, msg.cmd.StopResult)
		case msg.act.kind == actRestartCommand:
			m.setFlash("restarted %s: pid %d", msg.act.label, msg.cmd.Pid)
		case msg.act.kind == actSignalCommand:
			m.setFlash("sent SIG%s to %s", msg.act.sig, msg.act.label)
		default:
			m.setFlash("removed workspace %s", msg.act.label)
		}
		return m, m.startPoll()
	case tea.KeyMsg:
		return m, m.onKey(msg)
	}
	if m.filtering {
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		return m, cmd
	}
	return m, nil
}

// onSnapshot takes in a poll's answer.
func (m *Model) onSnapshot(msg snapshotMsg) tea.Cmd {
	m.polling = false
	var cmds []tea.Cmd
	if msg.err != nil && !reachable(msg.err) {
		if !m.down {
			m.down = true
			m.downSince = m.cfg.Now()
			cmds = append(cmds, m.tick(m.pollEvery())) // retry sooner than a long interval
		}
		m.connected = false
		m.downErr = msg.err
		if m.events != nil {
			m.events.Stop()
			m.events = nil
		}
		m.pollAgain = false
		return tea.Batch(cmds...)
	}
	// The daemon answered, if only with an error.
	wasDown := m.down
	m.down, m.downErr = false, nil
	if wasDown {
		m.fullStats = true // it may have restarted: fetch the histories again
		cmds = append(cmds, m.tick(m.pollEvery()))
	}
	if msg.err != nil {
		m.setFlash("daemon: %v", msg.err)
	} else {
		m.connected = true
		if wasDown {
			m.setFlash("daemon is back")
		}
		m.data.apply(msg, m.cfg.Interval/2)
		m.clampSelection()
		if m.top() == viewLogs && m.logs == nil && wasDown {
			cmds = append(cmds, m.reopenLogs())
		}
	}
	cmds = append(cmds, m.startEvents())
	if m.pollAgain {
		m.pollAgain = false
		cmds = append(cmds, m.startPoll())
	}
	return tea.Batch(cmds...)
}

// clampSelection keeps the selections on existing rows after a refresh.
func (m *Model) clampSelection() {
	rows := m.data.rows(m.filter.Value(), m.sort)
	if i := indexOf(rows, m.selWS); i >= 0 {
		m.listIdx = i
	} else if len(rows) > 0 {
		m.listIdx = min(max(m.listIdx, 0), len(rows)-1)
		if m.top() == viewList {
			m.selWS = rows[m.listIdx].ID
		}
	}
	for _, v := range m.stack[1:] {
		switch v {
		case viewWorkspace:
			if _, ok := m.data.workspace(m.selWS); !ok {
				m.setFlash("workspace %s is gone", shortID(m.selWS))
				m.truncate(1)
				return
			}
		case viewPipeline:
			if _, ok := m.data.pipeline(m.pipeID); !ok {
				m.setFlash("pipeline %s is gone", shortID(m.pipeID))
				m.truncate(2)
				return
			}
		}
	}
	m.wsIdx = min(max(m.wsIdx, 0), max(m.wsRowCount()-1, 0))
	if p, ok := m.data.pipeline(m.pipeID); ok {
		m.nodeIdx = min(max(m.nodeIdx, 0), max(len(p.Nodes)-1, 0))
	}
}

func indexOf(rows []messages.WorkspaceInfo, id string) int {
	for i, w := range rows {
		if w.ID == id {
			return i
		}
	}
	return -1
}

func (m *Model) wsRowCount() int {
	return len(m.data.commandsOf(m.selWS)) + len(m.data.pipelinesOf(m.selWS))
}

// wsRow returns the selected row of the workspace card: a command or a
// pipeline.
func (m *Model) wsRow() (*messages.CommandInfo, *messages.PipelineInfo) {
	cmds := m.data.commandsOf(m.selWS)
	if m.wsIdx < len(cmds) {
		return &cmds[m.wsIdx], nil
	}
	pipes := m.data.pipelinesOf(m.selWS)
	if i := m.wsIdx - len(cmds); i >= 0 && i < len(pipes) {
		return nil, &pipes[i]
	}
	return nil, nil
}

// onKey handles a key press.
func (m *Model) onKey(k tea.KeyMsg) tea.Cmd {
	if k.Type == tea.KeyRunes && len(k.Runes) > 1 && !k.Paste && !m.filtering {
		// Keys typed faster than they are read come as one message.
		var cmds []tea.Cmd
		for _, r := range k.Runes {
			cmds = append(cmds, m.onKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: k.Alt}))
		}
		return tea.Batch(cmds...)
	}
	key := k.String()
	if key == "ctrl+c" {
		return m.quit()
	}
	if m.confirm != nil {
		switch key {
		case "y", "Y":
			a := *m.confirm
			m.confirm = nil
			m.setFlash("%s…", strings.TrimSuffix(a.prompt(), "? y/n"))
			return m.run.do(a)
		case "n", "N", "esc", "q":
			m.confirm = nil
			m.setFlash("cancelled")
		}
		return nil
	}
	if m.sigPick != nil {
		a := *m.sigPick
		m.sigPick = nil
		if sig, ok := signalKeys[key]; ok {
			a.sig = sig
			m.confirm = &a
		} else {
			m.setFlash("cancelled")
		}
		return nil
	}
	if m.filtering {
		switch key {
		case "enter":
			m.filtering = false
			m.filter.Blur()
			m.clampSelection()
			return nil
		case "esc":
			m.filtering = false
			m.filter.Blur()
			m.filter.SetValue("")
			m.clampSelection()
			return nil
		}
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(k)
		m.listIdx = 0
		if rows := m.data.rows(m.filter.Value(), m.sort); len(rows) > 0 {
			m.selWS = rows[0].ID
		}
		return cmd
	}
	if m.top() == viewLogs {
		return m.onLogKey(key, k)
	}
	switch key {
	case "q":
		return m.quit()
	case "esc":
		if m.top() == viewList && m.filter.Value() != "" {
			m.filter.SetValue("")
			m.clampSelection()
			return nil
		}
		m.pop()
		return nil
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "pgup":
		m.move(-10)
	case "pgdown":
		m.move(10)
	case "home", "g":
		m.move(-1 << 20)
	case "end", "G":
		m.move(1 << 20)
	case "enter":
		return m.open()
	case "/":
		m.truncate(1)
		m.filtering = true
		return m.filter.Focus()
	case "s":
		m.sort = (m.sort + 1) % sortKeys
		if rows := m.data.rows(m.filter.Value(), m.sort); len(rows) > 0 {
			m.listIdx = max(indexOf(rows, m.selWS), 0)
		}
		m.setFlash("sorted by %s", m.sort)
	case "x":
		m.askAction()
	case "S", "R", "K":
		m.askCommandAction(key)
	case "l":
		return m.openLogs()
	case "r":
		return m.startPoll()
	}
	return nil
}

func (m *Model) quit() tea.Cmd {
	m.closeLogs()
	if m.events != nil {
		m.events.Stop()
		m.events = nil
	}
	return tea.Quit
}

// move moves the cursor of the current view by d rows.
func (m *Model) move(d int) {
	clamp := func(i, n int) int { return min(max(i, 0), max(n-1, 0)) }
	switch m.top() {
	case viewList:
		rows := m.data.rows(m.filter.Value(), m.sort)
		if len(rows) == 0 {
			return
		}
		if i := indexOf(rows, m.selWS); i >= 0 {
			m.listIdx = i
		}
		m.listIdx = clamp(m.listIdx+d, len(rows))
		m.selWS = rows[m.listIdx].ID
	case viewWorkspace:
		m.wsIdx = clamp(m.wsIdx+d, m.wsRowCount())
	case viewPipeline:
		if p, ok := m.data.pipeline(m.pipeID); ok {
			m.nodeIdx = clamp(m.nodeIdx+d, len(p.Nodes))
		}
	}
}

// open opens the card of the selected row.
func (m *Model) open() tea.Cmd {
	switch m.top() {
	case viewList:
		rows := m.data.rows(m.filter.Value(), m.sort)
		if len(rows) == 0 {
			return nil
		}
		if indexOf(rows, m.selWS) < 0 {
			m.selWS = rows[min(m.listIdx, len(rows)-1)].ID
		}
		m.wsIdx = 0
		m.push(viewWorkspace)
		return m.startPoll() // the card shows the full stats history
	case viewWorkspace:
		c, p := m.wsRow()
		switch {
		case p != nil:
			m.pipeID = p.ID
			m.nodeIdx = 0
			m.push(viewPipeline)
		case c != nil:
			return m.openLogs()
		}
	}
	return nil
}

// signalKeys are the keys that choose a signal after K.
var signalKeys = map[string]string{
	"t": "TERM", "h": "HUP", "i": "INT", "k": "KILL", "1": "USR1", "2": "USR2", "q": "QUIT",
}

// signalChoices is the prompt of K.
const signalChoices = "t TERM · h HUP · i INT · k KILL · 1 USR1 · 2 USR2 · q QUIT · other keys cancel"

// askCommandAction asks to confirm a stop (S), restart (R) or signal (K,
// after choosing the signal) of the command selected in the workspace
// card.
func (m *Model) askCommandAction(key string) {
	var c *messages.CommandInfo
	if m.top() == viewWorkspace {
		c, _ = m.wsRow()
	}
	if c == nil {
		m.setFlash("open a workspace (enter) and select a command to stop, restart or signal it")
		return
	}
	a := action{id: c.ID, ws: c.Workspace, label: c.Label}
	if w, ok := m.data.workspace(c.Workspace); ok {
		a.label = w.Spec.Label + "/" + c.Label
	}
	switch key {
	case "S":
		if c.State.Ended() {
			m.setFlash("command %s is not running (%s)", c.Label, c.State)
			return
		}
		a.kind = actStopCommand
		m.confirm = &a
	case "R":
		a.kind = actRestartCommand
		m.confirm = &a
	case "K":
		if !c.Alive() {
			m.setFlash("command %s is not running (%s)", c.Label, c.State)
			return
		}
		a.kind = actSignalCommand
		m.sigPick = &a
	}
}

// askAction asks to confirm what x does in the current view.
func (m *Model) askAction() {
	stop := func(p messages.PipelineInfo) {
		if p.State.Ended() {
			m.setFlash("pipeline %s already ended (%s)", p.Label, p.State)
			return
		}
		m.confirm = &action{kind: actStopPipeline, id: p.ID, label: p.WorkspaceLabel + "/" + p.Label}
	}
	remove := func(id string) {
		if w, ok := m.data.workspace(id); ok {
			m.confirm = &action{kind: actRemoveWorkspace, id: w.ID, label: w.Spec.Label}
		}
	}
	switch m.top() {
	case viewList:
		rows := m.data.rows(m.filter.Value(), m.sort)
		if indexOf(rows, m.selWS) >= 0 {
			remove(m.selWS)
		}
	case viewWorkspace:
		if _, p := m.wsRow(); p != nil {
			stop(*p)
			return
		}
		remove(m.selWS)
	case viewPipeline:
		if p, ok := m.data.pipeline(m.pipeID); ok {
			stop(p)
		}
	}
}

// openLogs opens the log pane of the selected command or pipeline node.
func (m *Model) openLogs() tea.Cmd {
	var ws, ref, title string
	switch m.top() {
	case viewWorkspace:
		c, _ := m.wsRow()
		if c == nil {
			m.setFlash("select a command to follow its log")
			return nil
		}
		ws, ref, title = c.Workspace, c.ID, c.Label
	case viewPipeline:
		p, ok := m.data.pipeline(m.pipeID)
		if !ok || m.nodeIdx >= len(p.Nodes) {
			return nil
		}
		node := p.Nodes[m.nodeIdx].Label
		ws, ref, title = p.Workspace, p.ID+"/"+node, p.Label+"/"+node
	default:
		m.setFlash("open a workspace (enter) and select a command to follow its log")
		return nil
	}
	label := shortID(ws)
	if w, ok := m.data.workspace(ws); ok {
		label = w.Spec.Label
	}
	m.closeLogs()
	m.logTitle = label + "/" + title
	m.logRef = [2]string{ws, ref}
	m.logLines = nil
	m.logEnded = ""
	m.logFollow = true
	m.push(viewLogs)
	m.resizeLogs()
	return m.reopenLogs()
}

// reopenLogs (re)starts the log feed of the open pane.
func (m *Model) reopenLogs() tea.Cmd {
	if m.run == nil {
		return nil
	}
	if m.logs != nil {
		m.logs.Stop()
	}
	m.logLines = nil
	m.logEnded = ""
	m.logs = m.run.logFeed(m.logRef[0], m.logRef[1])
	m.refreshLogs()
	return next(m.run, m.logs)
}

func (m *Model) closeLogs() {
	if m.logs != nil {
		m.logs.Stop()
		m.logs = nil
	}
}

func (m *Model) onLogKey(key string, k tea.KeyMsg) tea.Cmd {
	switch key {
	case "q":
		return m.quit()
	case "esc":
		m.pop()
		return nil
	case "l":
		if m.logs == nil {
			return m.reopenLogs()
		}
		return nil
	case "G", "end":
		m.logFollow = true
		m.logPane.GotoBottom()
		return nil
	case "g", "home":
		m.logFollow = false
		m.logPane.GotoTop()
		return nil
	}
	var cmd tea.Cmd
	m.logPane, cmd = m.logPane.Update(k)
	m.logFollow = m.logPane.AtBottom()
	return cmd
}

func (m *Model) addLogLines(lines []messages.LogLine) {
	for _, l := range lines {
		s := l.Line
		if l.Stream == messages.Stderr {
			s = m.st.err.Render("err") + " " + s
		}
		m.logLines = append(m.logLines, s)
	}
	m.logLines = keepLast(m.logLines, logKeep)
	m.refreshLogs()
}

func (m *Model) refreshLogs() {
	lines := make([]string, len(m.logLines))
	for i, l := range m.logLines {
		lines[i] = fit(l, m.width) // the pane does not wrap
	}
	content := strings.Join(lines, "\n")
	if m.logEnded != "" {
		content += "\n" + m.st.dim.Render("— "+m.logEnded+" —")
	}
	m.logPane.SetContent(content)
	if m.logFollow {
		m.logPane.GotoBottom()
	}
}

func (m *Model) resizeLogs() {
	m.logPane.Width = m.width
	m.logPane.Height = max(m.height-4, 1)
	m.refreshLogs()
}

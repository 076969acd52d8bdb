package smartsim

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// state is everything the simulator knows. Fields are exported for JSON only.
type state struct {
	Seed        uint64                   `json:"seed"`
	Counter     uint64                   `json:"counter"`
	RefCounter  uint64                   `json:"refCounter"`
	ClockOffset time.Duration            `json:"clockOffset"`
	FrozenAt    *time.Time               `json:"frozenAt,omitempty"`
	Sheets      map[int64]*sheetRec      `json:"sheets"`
	Folders     map[int64]*folderRec     `json:"folders"`
	Workspaces  map[int64]*workspaceRec  `json:"workspaces"`
	Attachments map[int64]*attachmentRec `json:"attachments"`
	Webhooks    map[int64]*webhookRec    `json:"webhooks"`
	Events      []ChangeEvent            `json:"events"`
}

type sheetRec struct {
	ID          int64               `json:"id"`
	Name        string              `json:"name"`
	Version     int64               `json:"version"`
	CreatedAt   time.Time           `json:"createdAt"`
	ModifiedAt  time.Time           `json:"modifiedAt"`
	FolderID    int64               `json:"folderId,omitempty"`
	WorkspaceID int64               `json:"workspaceId,omitempty"`
	Columns     []smartsheet.Column `json:"columns"`
	Rows        []*rowRec           `json:"rows"`
	Attachments []int64             `json:"attachments,omitempty"`
	// Summary holds the sheet summary fields in index order.
	Summary []*summaryRec `json:"summary,omitempty"`

	rowIndex map[int64]*rowRec
}

type rowRec struct {
	ID         int64              `json:"id"`
	ParentID   int64              `json:"parentId,omitempty"`
	CreatedAt  time.Time          `json:"createdAt"`
	ModifiedAt time.Time          `json:"modifiedAt"`
	CreatedBy  smartsheet.User    `json:"createdBy"`
	ModifiedBy smartsheet.User    `json:"modifiedBy"`
	Cells      map[int64]*cellRec `json:"cells"`
}

type cellRec struct {
	Value          smartsheet.Value      `json:"value,omitzero"`
	DisplayValue   string                `json:"displayValue,omitempty"`
	Formula        string                `json:"formula,omitempty"`
	Hyperlink      *smartsheet.Hyperlink `json:"hyperlink,omitempty"`
	LinkInFromCell json.RawMessage       `json:"linkInFromCell,omitempty"`
	Format         string                `json:"format,omitempty"`
	History        []histRec             `json:"history,omitempty"`
}

type histRec struct {
	Value        smartsheet.Value `json:"value,omitzero"`
	DisplayValue string           `json:"displayValue,omitempty"`
	At           time.Time        `json:"at"`
	By           smartsheet.User  `json:"by"`
	ChangeAgent  string           `json:"changeAgent,omitempty"`
}

type folderRec struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	ParentID    int64  `json:"parentId,omitempty"`
	WorkspaceID int64  `json:"workspaceId,omitempty"`
}

type workspaceRec struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func newState(seed uint64) *state {
	return &state{
		Seed:        seed,
		Sheets:      map[int64]*sheetRec{},
		Folders:     map[int64]*folderRec{},
		Workspaces:  map[int64]*workspaceRec{},
		Attachments: map[int64]*attachmentRec{},
		Webhooks:    map[int64]*webhookRec{},
	}
}

// nextID returns a large, random-looking, deterministic id below 2^53 (safe
// in JavaScript, like Smartsheet's ids).
func (st *state) nextID() int64 {
	for {
		st.Counter++
		z := st.Seed + st.Counter*0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		id := int64(z & (1<<53 - 1))
		if id >= 1<<50 && !st.idTaken(id) {
			return id
		}
	}
}

func (st *state) idTaken(id int64) bool {
	if _, ok := st.Sheets[id]; ok {
		return true
	}
	if _, ok := st.Folders[id]; ok {
		return true
	}
	_, ok := st.Attachments[id]
	return ok
}

func (sh *sheetRec) reindex() {
	sh.rowIndex = make(map[int64]*rowRec, len(sh.Rows))
	for _, r := range sh.Rows {
		sh.rowIndex[r.ID] = r
	}
}

func (sh *sheetRec) row(id int64) *rowRec { return sh.rowIndex[id] }

func (sh *sheetRec) column(id int64) *smartsheet.Column {
	for i := range sh.Columns {
		if sh.Columns[i].ID == id {
			return &sh.Columns[i]
		}
	}
	return nil
}

func (sh *sheetRec) rowPos(id int64) int {
	for i, r := range sh.Rows {
		if r.ID == id {
			return i
		}
	}
	return -1
}

// Save writes the whole state (sheets, history, attachments, webhooks, events
// and the clock offset) as JSON.
func (s *Server) Save(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := *s.st
	snap.ClockOffset, snap.FrozenAt = s.clk.snapshot()
	if err := json.NewEncoder(w).Encode(&snap); err != nil {
		return fmt.Errorf("smartsim save: %w", err)
	}
	return nil
}

// Load replaces the state with one written by Save.
func (s *Server) Load(r io.Reader) error {
	st := newState(s.opts.Seed)
	if err := json.NewDecoder(r).Decode(st); err != nil {
		return fmt.Errorf("smartsim load: %w", err)
	}
	for _, sh := range st.Sheets {
		sh.reindex()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
	s.clk.restore(st.ClockOffset, st.FrozenAt)
	return nil
}

// SaveFile writes the state to path atomically (temporary file, then rename).
func (s *Server) SaveFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".smartsim-*.json")
	if err != nil {
		return fmt.Errorf("smartsim save %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := s.Save(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("smartsim save %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("smartsim save %s: %w", path, err)
	}
	return nil
}

// LoadFile reads a state file written by SaveFile.
func (s *Server) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("smartsim load %s: %w", path, err)
	}
	defer f.Close()
	return s.Load(f)
}

// clock is the simulator's time: a base source plus an offset, optionally frozen.
type clock struct {
	mu     sync.Mutex
	base   func() time.Time
	offset time.Duration
	frozen *time.Time
}

// exact is the current simulated time, not truncated (for rate limits).
func (c *clock) exact() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.base()
	if c.frozen != nil {
		t = *c.frozen
	}
	return t.Add(c.offset).UTC()
}

// now is the simulated time as Smartsheet records it: UTC, whole seconds.
func (c *clock) now() time.Time { return c.exact().Truncate(time.Second) }

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t = t.UTC()
	c.frozen, c.offset = &t, 0
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func (c *clock) snapshot() (time.Duration, *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.frozen
}

func (c *clock) restore(off time.Duration, frozen *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset, c.frozen = off, frozen
}

// Now returns the simulated time (UTC, whole seconds).
func (s *Server) Now() time.Time { return s.clk.now() }

// SetClock freezes the simulated clock at t; AdvanceClock moves it on.
func (s *Server) SetClock(t time.Time) { s.clk.set(t) }

// AdvanceClock moves the simulated clock forward by d (frozen or not).
func (s *Server) AdvanceClock(d time.Duration) { s.clk.advance(d) }
